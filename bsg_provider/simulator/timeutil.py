"""Time helpers: the API's filter date formats, its timezone and calendar months.

The simulator works on integers internally: epoch seconds for status timelines and
epoch microseconds (:data:`US` per second) for the instants filters compare, so every
bound is exact whether ``created_at`` is stored in whole seconds or with a fraction.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime, timedelta, timezone, tzinfo

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_MICRO = timedelta(microseconds=1)
_NAIVE_EPOCH = datetime(1970, 1, 1)
#: Microseconds per second.
US = 1_000_000
# ASCII digits only: \d would also take Arabic-Indic and other Unicode digits.
_API_DATETIME = re.compile(r"\A([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\Z")
_ISO_DATETIME = re.compile(
    r"\A([0-9]{4})-([0-9]{2})-([0-9]{2})[T ]([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,6}))?"
    r"(Z|[+-][0-9]{2}:?[0-9]{2})\Z"
)
# Instants a filter may name: a day inside MySQL's DATETIME range (years 1000..9999), so offsets
# and spans stay computable; the listing refuses others with a 422.
MIN_US = (datetime(1000, 1, 2) - _NAIVE_EPOCH) // _MICRO
MAX_US = (datetime(9999, 12, 30) - _NAIVE_EPOCH) // _MICRO


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


def floor_us(instant: datetime) -> int:
    """Epoch microseconds of an aware instant (exact).

    :param instant: an aware datetime.
    """
    return (instant - EPOCH) // _MICRO


def us_to_datetime(micros: int) -> datetime:
    """The aware UTC instant of epoch microseconds.

    :param micros: epoch microseconds.
    """
    return EPOCH + timedelta(microseconds=micros)


def parse_iso_filter(text: str) -> int | None:
    """Epoch microseconds of an ISO 8601 date-time with a UTC offset.

    Accepts ``2026-11-24T19:43:44.000000+0000`` (the vendor SDK's form), ``+00:00``, ``Z``,
    a space instead of ``T`` and up to six fraction digits.

    :param text: the query parameter value.
    :return: epoch microseconds, or None when the text is not such a date-time.
    """
    match = _ISO_DATETIME.match(text)
    if match is None:
        return None
    *fields, fraction, zone = match.groups()
    try:
        wall = datetime(*(int(part) for part in fields), int((fraction or "0").ljust(6, "0")))
    except ValueError:
        return None
    offset = 0
    if zone != "Z":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            return None
        offset = (hours * 60 + minutes) * 60 * US * (-1 if zone[0] == "-" else 1)
    return (wall - _NAIVE_EPOCH) // _MICRO - offset


def wall_to_us(wall: datetime, tz: tzinfo) -> int:
    """Epoch microseconds of a naive wall-clock time read in ``tz`` (first occurrence when ambiguous).

    Computed without building the UTC datetime, which may not exist at the year 1000/9999 edges.

    :param wall: naive wall-clock datetime.
    :param tz: the API timezone.
    """
    offset = wall.replace(tzinfo=tz).utcoffset() or timedelta(0)
    return (wall - _NAIVE_EPOCH - offset) // _MICRO


def us_to_wall(micros: int, tz: tzinfo) -> datetime:
    """Naive wall-clock time in ``tz`` of epoch microseconds.

    :param micros: epoch microseconds.
    :param tz: the API timezone.
    """
    return us_to_datetime(micros).astimezone(tz).replace(tzinfo=None)


def parse_api_datetime(text: str) -> datetime | None:
    """Parse the API's ``yyyy-mm-dd hh:mm:ss`` into a naive wall-clock datetime.

    :param text: the query parameter value.
    :return: the naive datetime, or None when the text is not exactly that format.
    """
    match = _API_DATETIME.match(text)
    if match is None:
        return None
    try:
        wall = datetime(*(int(part) for part in match.groups()))
    except ValueError:
        return None
    return wall


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

    :param wall: naive wall-clock datetime (the result must be year 1 or later).
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


def parse_iso(text: str) -> datetime:
    """An aware datetime from ISO 8601 text with an offset (``Z`` allowed).

    :param text: the text; a ``+`` turned into a space by form decoding is restored.
    """
    candidates = [text.replace("Z", "+00:00")]
    if " " in text.strip():
        head, _, tail = text.strip().rpartition(" ")
        candidates.append(f"{head}+{tail}")
    for candidate in candidates:
        try:
            value = datetime.fromisoformat(candidate)
        except ValueError:
            continue
        if value.utcoffset() is not None:
            return value
    raise ValueError(f"expected an ISO 8601 datetime with offset, got {text!r}")
