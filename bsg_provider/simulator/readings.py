"""The readings of the vendor's list rules where its documents are silent or disagree.

The vendor's page says ``filter[from]``/``filter[to]`` are ``yyyy-mm-dd hh:mm:ss`` and the
period may be at most "3 months"; the OpenAPI spec types both filters as ``date-time`` and
shows timestamps like ``2000-01-23T04:56:07.000+00:00``; neither says whether a bound
includes a campaign created exactly at it, or which timestamp the filter selects on. The
simulator serves any combination, so tests can prove a client exact under each. The
defaults are the plainest reading of the vendor's page (both bounds inclusive, whole
seconds, calendar months, ``created_at``, the page's own format).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

BOUNDS = ("inclusive", "exclusive")
PRECISIONS = ("second", "subsecond")
SPAN_RULES = ("calendar", "90d")
FILTER_FIELDS = ("created_at", "start_at")
FILTER_FORMATS = ("plain", "iso")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return value


@dataclass(frozen=True)
class Readings:
    """One reading of the list endpoint's unstated rules.

    :param from_bound: whether ``filter[from]`` includes a campaign whose filter field equals it.
    :param to_bound: the same for ``filter[to]``.
    :param created_precision: ``second`` stores whole seconds; ``subsecond`` stores milliseconds
        (rendered truncated in the plain format, with the fraction in the iso one) and filters
        compare the full value.
    :param span_rule: the longest ``to - from``: 3 calendar months (wall clock, end-of-month
        clamped) or 90 days.
    :param filter_field: the campaign timestamp ``filter[from]``/``filter[to]`` select on.
    :param filter_formats: the filter date formats accepted: ``plain`` (``yyyy-mm-dd hh:mm:ss``
        in the account timezone) and/or ``iso`` (ISO 8601 with a UTC offset).
    :param page_offset_in_meta: whether list answers carry ``meta.page.offset``.
    """

    from_bound: str = "inclusive"
    to_bound: str = "inclusive"
    created_precision: str = "second"
    span_rule: str = "calendar"
    filter_field: str = "created_at"
    filter_formats: tuple[str, ...] = ("plain",)
    page_offset_in_meta: bool = True

    def __post_init__(self) -> None:
        _one_of("from_bound", self.from_bound, BOUNDS)
        _one_of("to_bound", self.to_bound, BOUNDS)
        _one_of("created_precision", self.created_precision, PRECISIONS)
        _one_of("span_rule", self.span_rule, SPAN_RULES)
        _one_of("filter_field", self.filter_field, FILTER_FIELDS)
        formats = parse_formats(self.filter_formats)
        object.__setattr__(self, "filter_formats", formats)
        object.__setattr__(self, "page_offset_in_meta", bool(self.page_offset_in_meta))

    @property
    def subsecond(self) -> bool:
        """Whether timestamps are stored with a millisecond fraction."""
        return self.created_precision == "subsecond"

    def describe(self) -> dict[str, Any]:
        """The readings as JSON-ready data."""
        data = asdict(self)
        data["filter_formats"] = list(self.filter_formats)
        return data


def parse_formats(value: str | Iterable[str]) -> tuple[str, ...]:
    """Filter formats from ``"plain,iso"`` or an iterable of names, in canonical order.

    :param value: comma-separated text or names.
    """
    names = [part.strip() for part in value.split(",")] if isinstance(value, str) else list(value)
    if not names or not all(isinstance(name, str) for name in names):
        raise ValueError(f"filter_formats must name at least one of {', '.join(FILTER_FORMATS)}")
    for name in names:
        _one_of("filter_formats", name, FILTER_FORMATS)
    return tuple(name for name in FILTER_FORMATS if name in names)
