"""Validation of ``GET /api/campaigns`` query parameters, re-read from the vendor docs.

Rules: ``filter[from]``/``filter[to]`` are ``yyyy-mm-dd hh:mm:ss`` in the API timezone
(and/or ISO 8601 with an offset, per :class:`~.readings.Readings`) and select one
timestamp field with each bound inclusive or exclusive; ``to`` defaults to now, ``from``
to ``to`` minus the longest span; the span may be at most 3 calendar months (end-of-month
clamped, compared on the wall clock) or 90 days; ``to`` may be at most 30 days (30 x 24 h)
after now; ``page[limit]`` is 30..500 (default 50); ``page[offset]`` >= 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from .dataset import LIST_TYPES
from .readings import Readings
from .timeutil import (
    MAX_US,
    MIN_US,
    US,
    format_wall,
    parse_api_datetime,
    parse_iso_filter,
    sub_months,
    us_to_wall,
    wall_to_us,
)

SORT_KEYS = ("id", "sender", "type", "date", "status")
SORT_WAYS = ("asc", "desc")
MIN_LIMIT, MAX_LIMIT, DEFAULT_LIMIT = 30, 500, 50
MAX_SPAN_MONTHS = 3
MAX_SPAN_DAYS = 90
MAX_FUTURE = timedelta(days=30)
# ASCII digits only, and few enough that int() is cheap (Python refuses over 4300 digits).
_INTEGER = re.compile(r"\A[+-]?[0-9]{1,18}\Z")
_LONG_INTEGER = re.compile(r"\A[+-]?[0-9]+\Z")
_FORMAT_NAMES = {
    ("plain",): "the format Y-m-d H:i:s",
    ("iso",): "an ISO 8601 date-time with a UTC offset",
    ("plain", "iso"): "the format Y-m-d H:i:s or an ISO 8601 date-time with a UTC offset",
}


@dataclass(frozen=True)
class ListQuery:
    """A validated list request.

    :param message_type: the ``filter[type]``.
    :param lo: first filter-field epoch microsecond included.
    :param hi: last filter-field epoch microsecond included.
    :param offset: ``page[offset]``.
    :param limit: ``page[limit]``.
    :param sort: sort key.
    :param way: asc or desc.
    """

    message_type: str
    lo: int
    hi: int
    offset: int
    limit: int
    sort: str
    way: str


def _integer(params: Mapping[str, str], name: str, default: int, errors: dict[str, list[str]]) -> int | None:
    raw = params.get(name)
    if raw is None:
        return default
    if not _INTEGER.match(raw):
        too_long = _LONG_INTEGER.match(raw) is not None
        errors[name] = [f"The {name} must be {'at most 18 digits long' if too_long else 'an integer'}."]
        return None
    return int(raw)


def _choice(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], errors: dict[str, list[str]]
) -> str:
    value = params.get(name, allowed[0])
    if value not in allowed:
        errors[name] = [f"The selected {name} is invalid."]
    return value


def _date(
    params: Mapping[str, str], name: str, tz: tzinfo, formats: tuple[str, ...], errors: dict[str, list[str]]
) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    micros = None
    if "plain" in formats:
        wall = parse_api_datetime(raw)
        if wall is not None:
            micros = wall_to_us(wall, tz)
    if micros is None and "iso" in formats:
        micros = parse_iso_filter(raw)
    if micros is None:
        errors[name] = [f"The {name} does not match {_FORMAT_NAMES[formats]} or is not a valid date."]
        return None
    if not MIN_US <= micros <= MAX_US:
        errors[name] = [f"The {name} must be a date between 1000-01-02 and 9999-12-30."]
        return None
    return micros


def earliest_from(to_us: int, tz: tzinfo, readings: Readings) -> int:
    """The earliest ``filter[from]`` (epoch microseconds) the span rule allows for a ``filter[to]``.

    :param to_us: ``filter[to]`` in epoch microseconds.
    :param tz: the API timezone (calendar months are counted on its wall clock).
    :param readings: the span rule.
    """
    if readings.span_rule == "90d":
        return to_us - MAX_SPAN_DAYS * 86400 * US
    return wall_to_us(sub_months(us_to_wall(to_us, tz), MAX_SPAN_MONTHS), tz)


def parse_list_query(
    params: Mapping[str, str], now: datetime, tz: tzinfo, readings: Readings
) -> tuple[ListQuery | None, dict[str, list[str]]]:
    """Validate list parameters the way the API does.

    :param params: query parameters (last value of each).
    :param now: the API's current instant (aware).
    :param tz: the API timezone the plain filter dates are read in.
    :param readings: the unstated rules to apply.
    :return: the query, or None and the 422 ``errors`` mapping (field -> messages).
    """
    errors: dict[str, list[str]] = {}
    message_type = _choice(params, "filter[type]", LIST_TYPES, errors)
    sort = _choice(params, "sort", SORT_KEYS, errors)
    way = _choice(params, "way", SORT_WAYS, errors)
    limit = _integer(params, "page[limit]", DEFAULT_LIMIT, errors)
    if limit is not None and not MIN_LIMIT <= limit <= MAX_LIMIT:
        errors["page[limit]"] = [f"The page[limit] must be between {MIN_LIMIT} and {MAX_LIMIT}."]
    offset = _integer(params, "page[offset]", 0, errors)
    if offset is not None and offset < 0:
        errors["page[offset]"] = ["The page[offset] must be at least 0."]

    # The API reads "now" in whole seconds, as a plain filter names them.
    now_us = wall_to_us(now.astimezone(tz).replace(tzinfo=None, microsecond=0), tz)
    formats = readings.filter_formats
    from_us = _date(params, "filter[from]", tz, formats, errors)
    to_us = _date(params, "filter[to]", tz, formats, errors)
    if "filter[to]" not in errors:
        if to_us is None:
            to_us = now_us
        elif to_us > now_us + int(MAX_FUTURE.total_seconds()) * US:
            latest = format_wall((now + MAX_FUTURE).astimezone(tz))
            errors["filter[to]"] = [f"The filter[to] must be a date before or equal to {latest}."]
        if "filter[from]" not in errors:
            earliest = earliest_from(to_us, tz, readings)
            if from_us is None:
                from_us = earliest
            elif from_us > to_us:
                errors["filter[from]"] = ["The filter[from] must be a date before or equal to filter[to]."]
            elif from_us < earliest:
                days = readings.span_rule == "90d"
                period = f"{MAX_SPAN_DAYS} days" if days else f"{MAX_SPAN_MONTHS} months"
                first = format_wall(us_to_wall(earliest, tz))
                errors["filter[from]"] = [
                    f"The filter[from] must be a date after or equal to {first}: "
                    f"the period may not exceed {period}."
                ]
    if errors:
        return None, errors
    assert from_us is not None and to_us is not None and limit is not None and offset is not None
    # Keys are integers, so an exclusive bound is the inclusive one a microsecond further in.
    lo = from_us + (1 if readings.from_bound == "exclusive" else 0)
    hi = to_us - (1 if readings.to_bound == "exclusive" else 0)
    query = ListQuery(message_type=message_type, lo=lo, hi=hi, offset=offset, limit=limit, sort=sort, way=way)
    return query, errors


def default_window(now: datetime, tz: tzinfo, readings: Readings) -> tuple[int, int]:
    """The window of a list request without dates, in inclusive epoch microseconds.

    :param now: the API's current instant (aware).
    :param tz: the API timezone.
    :param readings: the span rule.
    """
    to_us = wall_to_us(now.astimezone(tz).replace(tzinfo=None, microsecond=0), tz)
    return earliest_from(to_us, tz, readings), to_us
