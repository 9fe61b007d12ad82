"""Validation of ``GET /api/campaigns`` query parameters, re-read from the vendor docs.

Rules: ``filter[from]``/``filter[to]`` are exactly ``yyyy-mm-dd hh:mm:ss`` in the API
timezone and select ``created_at`` with both bounds inclusive; ``to`` defaults to now,
``from`` to ``to`` minus 3 calendar months; the span may be at most 3 calendar months
(end-of-month clamped, compared on the wall clock); ``to`` may be at most 30 days
(30 x 24 h) after now; ``page[limit]`` is 30..500 (default 50); ``page[offset]`` >= 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo

from .dataset import LIST_TYPES
from .timeutil import format_wall, parse_api_datetime, sub_months, wall_to_epoch

SORT_KEYS = ("id", "sender", "type", "date", "status")
SORT_WAYS = ("asc", "desc")
MIN_LIMIT, MAX_LIMIT, DEFAULT_LIMIT = 30, 500, 50
MAX_SPAN_MONTHS = 3
MAX_FUTURE = timedelta(days=30)
_INTEGER = re.compile(r"\A[+-]?\d+\Z")


@dataclass(frozen=True)
class ListQuery:
    """A validated list request.

    :param message_type: the ``filter[type]``.
    :param lo: first ``created_at`` epoch second included.
    :param hi: last ``created_at`` epoch second included.
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
        errors[name] = [f"The {name} must be an integer."]
        return None
    return int(raw)


def _choice(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], errors: dict[str, list[str]]
) -> str:
    value = params.get(name, allowed[0])
    if value not in allowed:
        errors[name] = [f"The selected {name} is invalid."]
    return value


def _date(params: Mapping[str, str], name: str, errors: dict[str, list[str]]) -> datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    wall = parse_api_datetime(raw)
    if wall is None:
        errors[name] = [f"The {name} does not match the format Y-m-d H:i:s."]
    return wall


def parse_list_query(
    params: Mapping[str, str], now: datetime, tz: tzinfo
) -> tuple[ListQuery | None, dict[str, list[str]]]:
    """Validate list parameters the way the API does.

    :param params: query parameters (last value of each).
    :param now: the API's current instant (aware).
    :param tz: the API timezone the filter dates are read in.
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

    now_wall = now.astimezone(tz).replace(tzinfo=None, microsecond=0)
    from_wall = _date(params, "filter[from]", errors)
    to_wall = _date(params, "filter[to]", errors)
    if "filter[to]" not in errors:
        if to_wall is None:
            to_wall = now_wall
        elif wall_to_epoch(to_wall, tz) > wall_to_epoch(now_wall, tz) + MAX_FUTURE.total_seconds():
            latest = format_wall((now + MAX_FUTURE).astimezone(tz))
            errors["filter[to]"] = [f"The filter[to] must be a date before or equal to {latest}."]
        if "filter[from]" not in errors:
            earliest = sub_months(to_wall, MAX_SPAN_MONTHS)
            if from_wall is None:
                from_wall = earliest
            elif from_wall > to_wall:
                errors["filter[from]"] = ["The filter[from] must be a date before or equal to filter[to]."]
            elif from_wall < earliest:
                errors["filter[from]"] = [
                    f"The filter[from] must be a date after or equal to {format_wall(earliest)}: "
                    f"the period may not exceed {MAX_SPAN_MONTHS} months."
                ]
    if errors:
        return None, errors
    assert from_wall is not None and to_wall is not None and limit is not None and offset is not None
    query = ListQuery(
        message_type=message_type,
        lo=wall_to_epoch(from_wall, tz),
        hi=wall_to_epoch(to_wall, tz),
        offset=offset,
        limit=limit,
        sort=sort,
        way=way,
    )
    return query, errors


def default_window(now: datetime, tz: tzinfo) -> tuple[int, int]:
    """The window of a list request without dates: ``[now - 3 months, now]`` inclusive.

    :param now: the API's current instant (aware).
    :param tz: the API timezone.
    """
    to_wall = now.astimezone(tz).replace(tzinfo=None, microsecond=0)
    return wall_to_epoch(sub_months(to_wall, MAX_SPAN_MONTHS), tz), wall_to_epoch(to_wall, tz)
