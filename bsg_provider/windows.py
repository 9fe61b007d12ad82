"""
From a half-open interval to the windows the API accepts.

Airflow's data intervals are half-open, ``[start, end)``. The API filters on
``created_at`` with inclusive bounds at one-second resolution, in the account's
timezone, at most 3 calendar months per request and at most 30 days into the
future. Each of those facts lives here and only here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum

from bsg_provider.errors import BsgConfigError

#: The longest span one request may cover, in calendar months of the API timezone.
MAX_WINDOW_MONTHS = 3
#: How far past now ``filter[to]`` may reach.
MAX_FUTURE = timedelta(days=30)
#: Kept off the future limit so a server clock slightly behind ours still accepts ``filter[to]``.
FUTURE_SAFETY_MARGIN = timedelta(minutes=5)
#: Resolution of the API's filters (assumption documented in docs/api-assumptions.md).
RESOLUTION = timedelta(seconds=1)
#: Windows ending later than this before now count as live: covers clock skew and rows the
#: API makes visible a little after their created_at.
LIVE_MARGIN = timedelta(hours=1)
API_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Window:
    """
    One request's worth of the timeline: ``[start, end)``, whole seconds, UTC.

    :param start: first instant included.
    :param end: first instant excluded.
    """

    start: datetime
    end: datetime

    def is_live(self, now: datetime) -> bool:
        """
        Whether campaigns can still appear in this window while it is paged.

        A campaign's ``created_at`` is when it was created, so only a window reaching the
        present gains rows; older ones can only lose them (assumption, docs/api-assumptions.md).

        :param now: the current time.
        """
        return self.end > now - LIVE_MARGIN

    def api_bounds(self, tz: str) -> tuple[str, str]:
        """``filter[from]`` and ``filter[to]``: inclusive, in the API timezone."""
        return to_api_time(self.start, tz), to_api_time(self.end - RESOLUTION, tz)


@dataclass(frozen=True)
class WindowPlan:
    """
    The windows for one interval, and what was clipped on the way.

    :param requested_start: the interval's start as asked.
    :param requested_end: the interval's end as asked.
    :param start: the start actually covered (rounded up to a whole second).
    :param end: the end actually covered (rounded up to a whole second, clipped to the future limit).
    :param windows: consecutive windows partitioning ``[start, end)``.
    """

    requested_start: datetime
    requested_end: datetime
    start: datetime
    end: datetime
    windows: tuple[Window, ...]

    @property
    def clipped(self) -> bool:
        """Whether the end was pulled back to the API's future limit."""
        return self.end < ceil_to_second(self.requested_end)


def ceil_to_second(moment: datetime) -> datetime:
    """The first whole second at or after ``moment``."""
    if moment.microsecond == 0:
        return moment
    return moment.replace(microsecond=0) + RESOLUTION


def to_api_time(moment: datetime, tz: str) -> str:
    """Render an aware instant as the API's ``yyyy-mm-dd hh:mm:ss`` in timezone ``tz``."""
    return moment.astimezone(ZoneInfo(tz)).strftime(API_TIME_FORMAT)


def future_limit(now: datetime) -> datetime:
    """The latest exclusive end a window may have, given the current time."""
    return (now + MAX_FUTURE - FUTURE_SAFETY_MARGIN).replace(microsecond=0)


def plan_windows(
    start: datetime, end: datetime, *, tz: str = "UTC", now: datetime | None = None
) -> WindowPlan:
    """
    Split ``[start, end)`` into windows the API accepts.

    Bounds are rounded up to whole seconds, so consecutive intervals ``[a, b)`` and
    ``[b, c)`` get windows that neither overlap nor leave a gap, whatever ``b`` is.

    :param start: interval start, timezone-aware.
    :param end: interval end (excluded), timezone-aware, not before ``start``.
    :param tz: IANA name of the API timezone; month lengths follow its calendar.
    :param now: the current time; defaults to the real clock.
    :raises BsgConfigError: on naive datetimes, ``start`` after ``end`` or an unknown timezone.
    """
    for name, value in (("start", start), ("end", end)):
        if not isinstance(value, datetime):
            raise BsgConfigError(f"{name} must be a datetime, got {type(value).__name__}.")
        if value.tzinfo is None or value.utcoffset() is None:
            raise BsgConfigError(
                f"{name} {value.isoformat()} has no timezone; pass an aware datetime "
                f"(for example pendulum.datetime(..., tz='UTC'))."
            )
    if start > end:
        raise BsgConfigError(f"start {start.isoformat()} is after end {end.isoformat()}.")
    zone = api_zone(tz)

    now = now or datetime.now(timezone.utc)
    # Round in UTC: arithmetic on a zoned datetime runs on its wall clock, which a DST change skips.
    lo = ceil_to_second(start.astimezone(timezone.utc))
    hi = min(ceil_to_second(end.astimezone(timezone.utc)), future_limit(now).astimezone(timezone.utc))
    windows: list[Window] = []
    cursor = lo
    while cursor < hi:
        nxt = min(_months_later(cursor, zone), hi)
        windows.append(Window(cursor, nxt))
        cursor = nxt
    return WindowPlan(
        requested_start=start,
        requested_end=end,
        start=lo,
        end=max(hi, lo),
        windows=tuple(windows),
    )


def api_zone(tz: str) -> ZoneInfo:
    """The API timezone by IANA name; raises BsgConfigError naming the fix when it is unknown."""
    try:
        return ZoneInfo(tz)
    except (ValueError, TypeError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise BsgConfigError(
            f"Unknown API timezone {tz!r}: use an IANA name such as 'UTC' or 'Europe/Berlin'."
        ) from exc


def _months_later(moment: datetime, zone: ZoneInfo) -> datetime:
    """
    The instant ``MAX_WINDOW_MONTHS`` calendar months after ``moment`` on the API's wall clock.

    The API measures its limit on its own wall clock, so the arithmetic happens there. A
    wall time that a DST change skips or repeats maps to two instants: the earlier one
    keeps the window legal.
    """
    wall = moment.astimezone(zone)
    later = pendulum.naive(wall.year, wall.month, wall.day, wall.hour, wall.minute, wall.second).add(
        months=MAX_WINDOW_MONTHS
    )
    naive = datetime(later.year, later.month, later.day, later.hour, later.minute, later.second)
    return min(naive.replace(tzinfo=zone, fold=fold).astimezone(timezone.utc) for fold in (0, 1))
