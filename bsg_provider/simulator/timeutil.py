"""Time helpers: the API's wall-clock text format, its timezone and calendar months.

The simulator works on integer UTC epoch seconds internally: the API stores
``created_at`` at one-second resolution, so integers make every bound exact.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime, timedelta, timezone, tzinfo

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_API_DATETIME = re.compile(r"\A(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\Z")


def require_aware(value: datetime, name: str) -> datetime:
    """Return ``value`` or raise if it carries no UTC offset.

    :param value: the datetime to check.
    :param name: argument name for the error message.
    """
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def floor_epoch(instant: datetime) -> int:
    """Whole epoch seconds at or before an aware instant (exact, no float rounding).

    :param instant: an aware datetime.
    """
    return (instant - EPOCH) // _SECOND


def ceil_epoch(instant: datetime) -> int:
    """Whole epoch seconds at or after an aware instant.

    :param instant: an aware datetime.
    """
    seconds, rest = divmod(instant - EPOCH, _SECOND)
    return seconds + (1 if rest else 0)


def parse_api_datetime(text: str) -> datetime | None:
    """Parse the API's ``yyyy-mm-dd hh:mm:ss`` into a naive wall-clock datetime.

    :param text: the query parameter value.
    :return: the naive datetime, or None when the text is not exactly that format.
    """
    match = _API_DATETIME.match(text)
    if match is None:
        return None
    try:
        return datetime(*(int(part) for part in match.groups()))
    except ValueError:
        return None


def wall_to_epoch(wall: datetime, tz: tzinfo) -> int:
    """Epoch seconds of a naive wall-clock time read in ``tz``.

    An ambiguous wall time (DST fall-back) takes its first occurrence (fold=0).

    :param wall: naive wall-clock datetime.
    :param tz: the API timezone.
    """
    return floor_epoch(wall.replace(tzinfo=tz))


def epoch_to_wall(seconds: int, tz: tzinfo) -> datetime:
    """Naive wall-clock time in ``tz`` of whole epoch seconds.

    :param seconds: epoch seconds.
    :param tz: the API timezone.
    """
    return datetime.fromtimestamp(seconds, tz).replace(tzinfo=None)


def sub_months(wall: datetime, months: int) -> datetime:
    """Calendar-month subtraction clamped to the month's last day (May 31 - 3 months = Feb 29).

    :param wall: naive wall-clock datetime.
    :param months: number of months to go back.
    """
    index = wall.year * 12 + wall.month - 1 - months
    year, month0 = divmod(index, 12)
    day = min(wall.day, calendar.monthrange(year, month0 + 1)[1])
    return wall.replace(year=year, month=month0 + 1, day=day)


def format_wall(wall: datetime) -> str:
    """``yyyy-mm-dd hh:mm:ss`` of a datetime's wall-clock fields.

    :param wall: the datetime (its tzinfo, if any, is not shown).
    """
    return (
        f"{wall.year:04d}-{wall.month:02d}-{wall.day:02d} {wall.hour:02d}:{wall.minute:02d}:{wall.second:02d}"
    )


def format_offset(local: datetime) -> str:
    """``+hh:mm`` of an aware datetime's UTC offset.

    :param local: an aware datetime.
    """
    offset = local.utcoffset() or timedelta(0)
    minutes = offset // timedelta(minutes=1)
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}:{minutes:02d}"


class SimClock:
    """The simulator's clock: a fixed anchor that advances with real (monotonic) time.

    :param anchor: aware instant that "now" starts at; None means the real current time.
    """

    def __init__(self, anchor: datetime | None = None) -> None:
        if anchor is None:
            anchor = datetime.now(UTC)
        self.anchor = require_aware(anchor, "now").astimezone(UTC)
        self._anchor_epoch = (self.anchor - EPOCH).total_seconds()
        self._started = time.monotonic()

    def epoch(self) -> float:
        """Current simulated epoch seconds."""
        return self._anchor_epoch + (time.monotonic() - self._started)

    def now(self) -> datetime:
        """Current simulated instant, aware UTC."""
        return self.anchor + timedelta(seconds=time.monotonic() - self._started)
