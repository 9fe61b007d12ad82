"""
Which records of a page belong to a window: checked against what was asked, cut to ``[start, end)``.

The requests ask for a little more than each window (:mod:`bsg_provider.extraction.windows`), so
the cut here is what makes the extraction exact: a record is kept iff its ``created_at``
lies in the window's half-open ``[start, end)``. Before that, every record is checked
against the request: one whose ``created_at`` lies outside the requested bounds under
every reading of them means the API filters on another field than ``created_at``, and one
that contradicts a filter sent (a campaign of another ``message_type`` for ``filter[type]``,
a message of another ``campaign_id`` for ``filter[campaign_id]``: the query's ``expect``)
means it ignored that filter. Both raise
:class:`~bsg_provider.errors.BsgAssumptionError` before anything is written.

Pure and on the hot path: a plain ``yyyy-mm-dd hh:mm:ss`` in a window without a DST change
is compared as text, which orders like the instants it names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bsg_provider.client.connection import api_zone
from bsg_provider.client.resources import ListQuery, campaigns_query
from bsg_provider.client.usual_page import as_dicts, field_values
from bsg_provider.errors import BsgAssumptionError
from bsg_provider.extraction.windows import (
    API_TIME_FORMAT,
    RESOLUTION,
    Window,
    offset_changes,
    utc_offset,
    wall_readings,
    wall_time,
)

#: The command docs/api-assumptions.md tells users to run when an assumption fails.
CHECK_API_COMMAND = "python -m bsg_provider.check_api --conn-id {conn_id}"
_UTC = timezone.utc
#: ``yyyy-mm-dd hh:mm:ss`` once every digit is 0: the plain timestamp compared as text.
_PLAIN_SHAPE = b"0000-00-00 00:00:00\n"
_TO_SHAPE = bytes.maketrans(b"0123456789", b"0000000000")


@dataclass(frozen=True)
class _Bounds:
    """One window's cut points and requested bounds, in every form the check compares."""

    window: Window
    api_from: datetime
    api_to: datetime
    # Text forms of the four walls, when a plain timestamp can be compared as text.
    text: tuple[str, ...] | None
    # The repeated wall times (from, to excluded) near the window, whose text names two instants.
    repeated: tuple[str, str] | None
    from_earliest: datetime
    to_latest: datetime


class WindowFilter:
    """
    Check a window's records against the request and keep those created in the window.

    One per extraction: a timestamp without an offset inside a repeated hour may belong to
    two windows, and this passes it on once.

    :param tz: IANA name of the API timezone.
    :param campaign_type: the ``filter[type]`` sent, for campaigns (when ``query`` is None).
    :param conn_id: the connection, for the command the error messages suggest.
    :param query: the resource and filters the requests carry; what each record must match.
    """

    def __init__(
        self,
        *,
        tz: str,
        campaign_type: str = "sms",
        conn_id: str = "bsg_default",
        query: ListQuery | None = None,
    ) -> None:
        self.tz = tz
        self.zone = api_zone(tz)
        self.query = query if query is not None else campaigns_query(campaign_type)
        self.noun = self.query.resource.noun
        self._expect = self.query.expect
        self.conn_id = conn_id
        self.outside = 0
        self._twice: set[int] = set()
        self._bounds: _Bounds | None = None

    def window(self, window: Window) -> None:
        """
        Start checking the pages of ``window``.

        :param window: the window whose request the next pages answer.
        """
        zone = self.zone
        api_from, api_to = window.api_walls(self.tz)
        from_earliest = min(wall_readings(api_from, zone))
        to_latest = max(wall_readings(api_to, zone))
        text = repeated = None
        # Wall times that name one instant order like their instants, even across one setting
        # back of the clock (the repeated wall times lie between those before and after it), so
        # a plain timestamp outside the repeated stretch is compared as text.
        set_backs = [
            change
            for change in offset_changes(from_earliest, to_latest, zone)
            if utc_offset(change, zone) < utc_offset(change - RESOLUTION, zone)
        ]
        walls = (api_from, api_to, wall_time(window.start, zone), wall_time(window.end, zone))
        if len(set_backs) <= 1 and all(len(wall_readings(wall, zone)) == 1 for wall in walls):
            text = tuple(wall.strftime(API_TIME_FORMAT) for wall in walls)
            if set_backs:
                back = set_backs[0]
                repeated = (
                    wall_time(back, zone).strftime(API_TIME_FORMAT),
                    (wall_time(back - RESOLUTION, zone) + RESOLUTION).strftime(API_TIME_FORMAT),
                )
        self._bounds = _Bounds(window, api_from, api_to, text, repeated, from_earliest, to_latest)

    def keep(self, records: list[Any]) -> list[Any]:
        """
        Check every record of a page and return those created in the window.

        :param records: records the pager passed on for the current window (dicts, or a typed
            page's structs, which come back as dicts when the page needs the record-by-record path).
        :raises BsgAssumptionError: for a record outside the requested bounds or against a filter.
        """
        bounds = self._bounds
        if bounds is None:
            raise RuntimeError("WindowFilter.window() must be called before keep()")
        kept = self._keep_page(records, bounds)
        return kept if kept is not None else self._keep_each(as_dicts(records), bounds)

    def _keep_page(self, records: list[Any], bounds: _Bounds) -> list[Any] | None:
        """
        :meth:`keep` a column at a time, for a page whose filters all match and whose ``created_at``
        are all plain and within the requested bounds (outside any repeated hour); else None.
        """
        text = bounds.text
        if text is None or not records:
            return None
        try:
            for name, value in self._expect:
                if not {value, None}.issuperset(field_values(records, name)):
                    return None
        except TypeError:  # an unhashable value: no match, and _keep_each names it
            return None
        created = field_values(records, "created_at")
        try:
            # One C-level pass over the page's values instead of a dozen checks per value.
            shape = ("\n".join(created) + "\n").encode("ascii").translate(_TO_SHAPE)
        except (TypeError, UnicodeEncodeError):
            return None
        if shape != _PLAIN_SHAPE * len(created):
            return None
        earliest, latest = min(created), max(created)
        if earliest < text[0] or latest > text[1]:
            return None
        repeated = bounds.repeated
        if repeated is not None and any(repeated[0] <= value < repeated[1] for value in created):
            return None
        if text[2] <= earliest and latest < text[3]:
            return list(records)
        kept = [record for record, value in zip(records, created, strict=True) if text[2] <= value < text[3]]
        self.outside += len(records) - len(kept)
        return kept

    def _keep_each(self, records: list[dict[str, Any]], bounds: _Bounds) -> list[dict[str, Any]]:
        """:meth:`keep` record by record: any page, and the error names the first record at fault."""
        expect = self._expect
        text = bounds.text
        repeated = bounds.repeated
        kept: list[dict[str, Any]] = []
        for record in records:
            for name, value in expect:
                got = record.get(name)
                if got is not None and got != value:
                    raise self._against_filter(record, name, value)
            created = record.get("created_at")
            if (
                text is not None
                and type(created) is str
                and len(created) == 19
                and created[10] == " "
                and (repeated is None or not repeated[0] <= created < repeated[1])
            ):
                if not text[0] <= created <= text[1]:
                    raise self._outside(record)
                if text[2] <= created < text[3]:
                    kept.append(record)
                else:
                    self.outside += 1
            elif self._slow_keep(record, bounds):
                kept.append(record)
            else:
                self.outside += 1
        return kept

    def _slow_keep(self, record: dict[str, Any], bounds: _Bounds) -> bool:
        readings, wall = self._readings(record)
        # An API comparing on the whole second returns what lies less than a second past a
        # bound (``to`` inclusive, ``created_at`` 0.4 s after it): still what was asked for.
        wall_inside = bounds.api_from - RESOLUTION < wall < bounds.api_to + RESOLUTION
        instant_inside = any(
            bounds.from_earliest - RESOLUTION < r < bounds.to_latest + RESOLUTION for r in readings
        )
        if not (wall_inside or instant_inside):
            raise self._outside(record)
        window = bounds.window
        if not any(window.start <= r < window.end for r in readings):
            return False
        if len(readings) > 1:
            # A wall time without offset in a repeated hour: it may belong to the next window too.
            if record["id"] in self._twice:
                return False
            self._twice.add(record["id"])
        return True

    def _readings(self, record: dict[str, Any]) -> tuple[tuple[datetime, ...], datetime]:
        """The instants ``created_at`` can mean, and its naive wall time in the API timezone."""
        value = record.get("created_at")
        moment = _parse(value)
        if moment is None:
            raise BsgAssumptionError(
                f"{self.noun.capitalize()} {record.get('id')} has created_at {value!r}, which is not a "
                f"timestamp; the extraction keeps each {self.noun} by created_at (the API documents "
                "'yyyy-mm-dd hh:mm:ss' or ISO 8601). Nothing was written. Check the API's answers with "
                f"`{CHECK_API_COMMAND.format(conn_id=self.conn_id)}` and report the {self.noun} to BSG.",
                assumption="created_at",
            )
        if moment.tzinfo is None:
            return wall_readings(moment, self.zone), moment
        instant = moment.astimezone(_UTC)
        return (instant,), instant.astimezone(self.zone).replace(tzinfo=None)

    def _evidence(self, record: dict[str, Any]) -> str:
        fields = self.query.resource.evidence_fields
        return ", ".join(f"{name} {record.get(name)!r}" for name in fields if name in record)

    def _advice(self) -> str:
        return (
            "Nothing was written. Run "
            f"`{CHECK_API_COMMAND.format(conn_id=self.conn_id)}` to test the API's rules against "
            "your account (docs/api-assumptions.md), and report its output to BSG and to the provider."
        )

    def _outside(self, record: dict[str, Any]) -> BsgAssumptionError:
        bounds = self._bounds
        assert bounds is not None
        api_from, api_to = (bound.strftime(API_TIME_FORMAT) for bound in (bounds.api_from, bounds.api_to))
        return BsgAssumptionError(
            f"The API returned {self.noun} {record.get('id')} for filter[from]='{api_from}' "
            f"filter[to]='{api_to}' (API timezone {self.tz}), but its {self._evidence(record)} lies "
            "outside them. The provider assumes filter[from]/filter[to] select on created_at; this "
            "answer says the API filters on another field, so the file would hold the wrong "
            f"{self.query.resource.name}. " + self._advice(),
            assumption="filter_field",
        )

    def _against_filter(self, record: dict[str, Any], name: str, value: Any) -> BsgAssumptionError:
        bounds = self._bounds
        asked = ""
        if bounds is not None:
            asked = (
                f" filter[from]='{bounds.api_from.strftime(API_TIME_FORMAT)}' "
                f"filter[to]='{bounds.api_to.strftime(API_TIME_FORMAT)}'"
            )
        if name == "message_type":
            return BsgAssumptionError(
                f"The API returned campaign {record.get('id')} with message_type {record.get(name)!r} "
                f"for filter[type]={value}{asked} ({self._evidence(record)}). The provider "
                "assumes the list endpoint honours filter[type]; this answer says it does not, so the "
                "file would mix campaign types. " + self._advice(),
                assumption="filter_type",
            )
        return BsgAssumptionError(
            f"The API returned {self.noun} {record.get('id')} with {name} {record.get(name)!r} for "
            f"{self.query.describe_filters()}{asked} ({self._evidence(record)}). The provider assumes "
            f"{self.query.resource.path} honours that filter; this answer says it does not, so the "
            f"file would hold other {self.query.resource.name}. " + self._advice(),
            assumption=f"filter_{name}",
        )


def _parse(value: Any) -> datetime | None:
    """``created_at`` as the API sends it: a naive wall time, or an instant with an offset."""
    if type(value) is not str:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None
