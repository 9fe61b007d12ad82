"""
From a half-open interval to the windows the API accepts, and the filter bounds each one sends.

Airflow's data intervals are half-open, ``[start, end)``. The API filters with
``filter[from]``/``filter[to]``, wall-clock strings in the account's timezone whose
semantics the vendor leaves open: each bound may be inclusive or exclusive,
``created_at`` may be stored with sub-second precision although it is rendered in whole
seconds, "3 months" may be calendar months or 90 days, and a wall time that a DST
fall-back repeats may be read as either of its instants. The extraction is exact
whatever those mean, because it never relies on them:

1. **Whole-second cut points.** A window is ``[S, E)`` with ``S`` and ``E`` whole
   seconds (interval bounds are rounded up to a whole second, so consecutive intervals
   share their cut points).
2. **Ask for a little more** (:meth:`Window.api_bounds`). ``filter[from]`` names a
   wall time whose every reading is at or before ``S - 1 s``; ``filter[to]`` one whose
   every reading is at or after ``E``, and both lie outside the wall times of
   ``[S, E)`` (so a purely wall-clock comparison covers it too). A campaign created at
   ``c`` with ``S <= c < E`` then satisfies ``from < c`` and ``c < to`` under every
   reading: inclusive or exclusive, compared at full precision or on the truncated
   second (``floor(c) >= S > from``, ``c < E <= to``), either fold of a repeated hour.
3. **Cut exactly on the client** (:mod:`bsg_provider.extraction.window_filter`): keep a record iff
   its parsed ``created_at`` lies in ``[S, E)``. Truncation is harmless: for whole ``S``
   and ``E``, ``S <= c < E`` iff ``S <= floor(c) < E``. The cut is a function of the
   record and the cut points alone, so consecutive windows and consecutive intervals,
   which partition the timeline, keep every campaign exactly once. A timestamp without
   an offset inside a repeated hour names two instants; the cut keeps it where either
   lies, which loses nothing and may keep it in two adjacent intervals (the hook yields
   it once per extraction).
4. **Spans every rule accepts.** Windows are planned so the *request* (``from`` to
   ``to``) stays one second under 3 calendar months on the API's wall clock
   (:data:`CALENDAR_SPAN`). A 422 on a window's first page that names the filter bounds,
   for a request longer than 88 days, shortens the span to 88 wall-clock days
   (:meth:`SpanRule.shorter`), which any rule of at least 89 days accepts even when a DST
   change makes the elapsed time an hour longer, and the rest of the interval is planned
   again. A refusal of a shorter request is no span rule of at least 89 days: it is passed on.

``end`` is clipped to now + 30 days (less a margin). Each rule lives here and only here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum

from bsg_provider.client.connection import api_zone
from bsg_provider.errors import BsgConfigError

#: The longest span one request may cover, in calendar months of the API timezone (the vendor's words).
MAX_WINDOW_MONTHS = 3
#: How far past now ``filter[to]`` may reach.
MAX_FUTURE = timedelta(days=30)
#: Kept off the future limit so a server clock slightly behind ours still accepts ``filter[to]``.
FUTURE_SAFETY_MARGIN = timedelta(minutes=5)
#: Resolution of the filter strings we send, and of the cut points.
RESOLUTION = timedelta(seconds=1)
#: Windows ending later than this before now count as live: covers clock skew and rows the
#: API makes visible a little after their created_at.
LIVE_MARGIN = timedelta(hours=1)
#: The span tried after the API refused one: any rule of at least 89 days accepts 88 wall-clock
#: days, even when a DST change makes the elapsed time an hour longer.
FALLBACK_SPAN_DAYS = 88
API_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: Step at which the API timezone's offset is sampled to find DST changes in a window: no zone
#: changes its offset twice within a day.
_OFFSET_PROBE = timedelta(days=1)
_UTC = timezone.utc


def add_months(wall: datetime, months: int) -> datetime:
    """
    The same wall time ``months`` calendar months later (earlier when negative), on the month's
    last day when it is shorter (31 May - 3 months = 28 February). The one place months are counted.

    :param wall: a datetime, naive or aware; its time of day and tzinfo are kept.
    :param months: calendar months to move.
    """
    moved = pendulum.Date(wall.year, wall.month, wall.day).add(months=months)
    return wall.replace(year=moved.year, month=moved.month, day=moved.day)


@dataclass(frozen=True)
class SpanRule:
    """
    How long one request may be: ``months`` calendar months or else ``span``, on the API's wall clock.

    :param months: calendar months from ``filter[from]`` (0: use ``span``).
    :param span: wall-clock length from ``filter[from]`` to ``filter[to]`` when ``months`` is 0.
    """

    months: int = MAX_WINDOW_MONTHS
    span: timedelta = timedelta(0)

    def latest_to(self, api_from: datetime) -> datetime:
        """The latest ``filter[to]`` (naive wall time) to send with ``api_from``: a second under the limit."""
        if self.months:
            return add_months(api_from.replace(microsecond=0), self.months) - RESOLUTION
        return api_from + self.span

    def shorter(self, api_from: datetime, api_to: datetime) -> SpanRule | None:
        """
        The rule to plan by after the API refused ``api_from``..``api_to``; None if no span rule explains it.

        Only a request longer than :data:`FALLBACK_SPAN_DAYS` can break a rule of at least 89
        days, so only then does a shorter span help; any other refusal is passed on.

        :param api_from: the refused ``filter[from]``, naive wall time.
        :param api_to: the refused ``filter[to]``, naive wall time.
        """
        fallback = SpanRule(months=0, span=timedelta(days=FALLBACK_SPAN_DAYS))
        if self == fallback or api_to - api_from <= fallback.span:
            return None
        return fallback

    def describe(self) -> str:
        """Say the rule in words, for the log."""
        if self.months:
            return f"{self.months} calendar months"
        return _describe_span(self.span)


#: The vendor's words: at most 3 months, read as calendar months of the API's wall clock.
CALENDAR_SPAN = SpanRule()


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

    def api_walls(self, tz: str) -> tuple[datetime, datetime]:
        """
        ``filter[from]`` and ``filter[to]`` as naive wall times of the API timezone.

        ``from`` is read as at or before ``start - 1 s`` and ``to`` as at or after ``end``
        however the API reads a repeated wall time, and they enclose every wall time of
        the window: the module docstring's point 2.

        :param tz: IANA name of the API timezone.
        """
        return request_walls(self.start, self.end, api_zone(tz))

    def api_bounds(self, tz: str) -> tuple[str, str]:
        """``filter[from]`` and ``filter[to]`` as sent: ``yyyy-mm-dd hh:mm:ss`` in the API timezone."""
        api_from, api_to = self.api_walls(tz)
        return api_from.strftime(API_TIME_FORMAT), api_to.strftime(API_TIME_FORMAT)


@dataclass(frozen=True)
class WindowPlan:
    """
    The windows for one interval, and what was clipped on the way.

    :param requested_start: the interval's start as asked.
    :param requested_end: the interval's end as asked.
    :param start: the start actually covered (rounded up to a whole second).
    :param end: the end actually covered (rounded up to a whole second, clipped to the future limit).
    :param windows: consecutive windows partitioning ``[start, end)``.
    :param span: the rule the windows were planned by.
    :param tz: IANA name of the API timezone the windows were planned in.
    """

    requested_start: datetime
    requested_end: datetime
    start: datetime
    end: datetime
    windows: tuple[Window, ...]
    span: SpanRule = CALENDAR_SPAN
    tz: str = "UTC"

    @property
    def clipped(self) -> bool:
        """Whether the end was pulled back to the API's future limit."""
        return self.end < ceil_to_second(self.requested_end)

    def replanned(self, index: int, span: SpanRule) -> WindowPlan:
        """
        This plan with windows ``index`` onwards planned again by ``span``, after the API refused one.

        :param index: 0-based position of the first window to plan again.
        :param span: the shorter rule.
        """
        head = self.windows[:index]
        cursor = self.windows[index].start if index < len(self.windows) else self.end
        tail = _split(cursor, self.end, api_zone(self.tz), span)
        return replace(self, windows=(*head, *tail), span=span)


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
    start: datetime,
    end: datetime,
    *,
    tz: str = "UTC",
    now: datetime | None = None,
    span: SpanRule = CALENDAR_SPAN,
) -> WindowPlan:
    """
    Split ``[start, end)`` into windows whose requests the API accepts.

    Bounds are rounded up to whole seconds, so consecutive intervals ``[a, b)`` and
    ``[b, c)`` get windows that neither overlap nor leave a gap, whatever ``b`` is.

    :param start: interval start, timezone-aware.
    :param end: interval end (excluded), timezone-aware, not before ``start``.
    :param tz: IANA name of the API timezone; month lengths follow its calendar.
    :param now: the current time; defaults to the real clock.
    :param span: how long one request may be.
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

    now = now or datetime.now(_UTC)
    # Round in UTC: arithmetic on a zoned datetime runs on its wall clock, which a DST change skips.
    lo = ceil_to_second(_as_utc(start))
    hi = min(ceil_to_second(_as_utc(end)), _as_utc(future_limit(now)))
    return WindowPlan(
        requested_start=start,
        requested_end=end,
        start=lo,
        end=max(hi, lo),
        windows=_split(lo, hi, zone, span),
        span=span,
        tz=tz,
    )


def wall_readings(wall: datetime, zone: ZoneInfo) -> tuple[datetime, ...]:
    """
    The UTC instants a naive wall time of ``zone`` can mean: one, or two in a repeated hour.

    A wall time a DST change skips means no instant; both of zoneinfo's readings are returned then.

    :param wall: naive wall time.
    :param zone: the API timezone.
    """
    first = wall.replace(tzinfo=zone, fold=0).astimezone(_UTC)
    second = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    return (first,) if first == second else tuple(sorted((first, second)))


def request_walls(start: datetime, end: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """
    The filter bounds, as naive wall times, that cover ``[start, end)`` under every reading.

    ``from`` is at most the lowest wall time of ``[start - 1 s, end)``, and moved before a
    repeated hour when one of its readings would fall after ``start - 1 s``. ``to`` is at
    least one second past the highest wall time of ``[start, end)`` and at least
    ``end``'s, and moved past a repeated hour when one of its readings would fall before ``end``.

    :param start: window start, whole seconds, aware.
    :param end: window end (excluded), whole seconds, aware, after ``start``.
    :param zone: the API timezone.
    """
    first = start - RESOLUTION
    last = end - RESOLUTION
    changes = offset_changes(first, last, zone)
    lowest = min([wall_time(first, zone), *(wall_time(t, zone) for t in changes)])
    highest = max([wall_time(last, zone), *(wall_time(t - RESOLUTION, zone) for t in changes if t > start)])
    api_from = lowest
    while max(wall_readings(api_from, zone)) > first:
        # A repeated wall time: step back to the second before the repetition begins.
        api_from = _repeat_start(api_from, zone) - RESOLUTION
    api_to = max(highest + RESOLUTION, wall_time(end, zone))
    if len({*wall_readings(api_to, zone)}) == 2 and wall_time(wall_readings(api_to, zone)[0], zone) != api_to:
        api_to = wall_time(end, zone)  # a skipped wall time: end's own is the first real one after it
    while min(wall_readings(api_to, zone)) < end:
        api_to = _repeat_end(api_to, zone)
    return api_from, api_to


def _as_utc(moment: datetime) -> datetime:
    """A plain ``datetime`` in UTC: pendulum's subclass does its own thing with ``replace(tzinfo=)``."""
    u = moment.astimezone(_UTC)
    return datetime(u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond, tzinfo=_UTC)


def wall_time(moment: datetime, zone: ZoneInfo) -> datetime:
    """``moment`` as a naive wall time of ``zone``."""
    w = moment.astimezone(zone)
    return datetime(w.year, w.month, w.day, w.hour, w.minute, w.second, w.microsecond)


def utc_offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    """``zone``'s UTC offset at ``moment``."""
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None
    return offset


def offset_changes(first: datetime, last: datetime, zone: ZoneInfo) -> list[datetime]:
    """
    Instants in ``(first, last]`` where ``zone``'s UTC offset changes, to the second.

    :param first: aware instant.
    :param last: aware instant, not before ``first``.
    :param zone: the API timezone.
    """
    if utc_offset(first, zone) == utc_offset(last, zone) and _fixed(zone):
        return []
    changes = []
    lo, lo_offset = first, utc_offset(first, zone)
    while lo < last:
        hi = min(lo + _OFFSET_PROBE, last)
        hi_offset = utc_offset(hi, zone)
        if hi_offset != lo_offset:
            a, b = lo, hi
            while b - a > RESOLUTION:
                mid = a + (b - a) // 2 // RESOLUTION * RESOLUTION
                if utc_offset(mid, zone) == lo_offset:
                    a = mid
                else:
                    b = mid
            changes.append(b)
        lo, lo_offset = hi, hi_offset
    return changes


def _fixed(zone: ZoneInfo) -> bool:
    """Whether ``zone`` never changes offset (UTC and friends), so windows need no DST search."""
    probes = (datetime(2001, 1, 15, tzinfo=_UTC), datetime(2001, 7, 15, tzinfo=_UTC))
    return zone.key in ("UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Etc/Zulu") or (
        zone.key.startswith("Etc/") and len({utc_offset(p, zone) for p in probes}) == 1
    )


def _repeated(wall: datetime, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The two readings of a repeated wall time and the instant the clock was set back between them."""
    early, late = wall_readings(wall, zone)
    (change,) = offset_changes(early, late, zone) or (late,)
    return early, change


def _repeat_start(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first wall time of the repeated stretch holding ``wall``."""
    _, change = _repeated(wall, zone)
    return wall_time(change, zone)


def _repeat_end(wall: datetime, zone: ZoneInfo) -> datetime:
    """The first wall time after the repeated stretch holding ``wall``: it means one instant only."""
    _, change = _repeated(wall, zone)
    return wall_time(change - RESOLUTION, zone) + RESOLUTION


def _split(lo: datetime, hi: datetime, zone: ZoneInfo, span: SpanRule) -> tuple[Window, ...]:
    windows: list[Window] = []
    cursor = lo
    while cursor < hi:
        nxt = _latest_end(cursor, zone, span)
        nxt = hi if nxt >= hi else _day_start(cursor, nxt, zone, span)
        windows.append(Window(cursor, nxt))
        cursor = nxt
    return tuple(windows)


def _latest_end(start: datetime, zone: ZoneInfo, span: SpanRule) -> datetime:
    """
    The latest end of a window starting at ``start`` whose request ``span`` accepts.

    Start from the end whose ``filter[to]`` is the rule's limit for the plain ``filter[from]``;
    a DST change can widen the bounds (:func:`request_walls`), so shorten until they fit.
    """
    limit = span.latest_to(wall_time(start - RESOLUTION, zone))
    end = min(limit.replace(tzinfo=zone, fold=f).astimezone(_UTC) for f in (0, 1))
    end = max(end, start + RESOLUTION)
    while end - start > RESOLUTION:
        api_from, api_to = request_walls(start, end, zone)
        excess = api_to - span.latest_to(api_from)
        if excess <= timedelta(0):
            break
        end = max(end - excess, start + RESOLUTION)
    return end


def _day_start(start: datetime, end: datetime, zone: ZoneInfo, span: SpanRule) -> datetime:
    """
    ``end`` moved back to the start of its day on the API's wall clock, when that still leaves a day.

    Only for readable logs and round windows; the exactness does not depend on it.
    """
    wall = wall_time(end, zone)
    midnight = min(wall_readings(datetime(wall.year, wall.month, wall.day), zone))
    if midnight - start < timedelta(days=1) or midnight >= end:
        return end
    api_from, api_to = request_walls(start, midnight, zone)
    return midnight if api_to <= span.latest_to(api_from) else end


def _describe_span(span: timedelta) -> str:
    if span % timedelta(days=1) == timedelta(0):
        return f"{span // timedelta(days=1)} days"
    if span % timedelta(hours=1) == timedelta(0):
        return f"{span // timedelta(hours=1)} hours"
    return f"{span.total_seconds():g} seconds"
