"""
From a campaign as the API sends it to an output record: fixed column order, UTC timestamps, flat CSV cells.

Pure and on the hot path (one call per campaign), so it avoids per-record allocation it
does not need. The columns are documented in docs/operator.md; change both together.
"""

from __future__ import annotations

import json
import operator
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import lru_cache
from itertools import repeat
from operator import itemgetter
from typing import Any

import msgspec

from bsg_provider.client.connection import api_zone
from bsg_provider.client.usual_page import is_typed
from bsg_provider.errors import BsgMalformedResponseError

#: The campaign fields the API documents, in output order.
CAMPAIGN_COLUMNS = (
    "id",
    "name",
    "sender",
    "status",
    "message_type",
    "start_at",
    "real_start_at",
    "finished_at",
    "created_at",
    "statistics",
    "calculated_price",
    "currency",
    "alternative_channels",
)
#: Fields holding a timestamp in the API timezone.
TIMESTAMP_COLUMNS = frozenset({"start_at", "real_start_at", "finished_at", "created_at"})
#: The keys of ``statistics`` the list endpoint documents (StatisticsShort), in output order.
STATISTICS_KEYS = ("delivered", "sent")
#: CSV's fixed header: ``statistics`` flattened, and one column for whatever the API adds.
_BEFORE_STATISTICS = CAMPAIGN_COLUMNS[: CAMPAIGN_COLUMNS.index("statistics")]
_AFTER_STATISTICS = CAMPAIGN_COLUMNS[CAMPAIGN_COLUMNS.index("statistics") + 1 :]
CSV_COLUMNS = (
    *_BEFORE_STATISTICS,
    *(f"statistics_{key}" for key in STATISTICS_KEYS),
    *_AFTER_STATISTICS,
    "extra_fields",
)

_KNOWN = frozenset(CAMPAIGN_COLUMNS)
_ROW_BEFORE = itemgetter(*_BEFORE_STATISTICS)
_ROW_AFTER = itemgetter(*_AFTER_STATISTICS)
_STATISTICS_COUNTS = itemgetter(*STATISTICS_KEYS)
_ALL_FIELDS = itemgetter(*CAMPAIGN_COLUMNS)
_STATISTICS_AT = CAMPAIGN_COLUMNS.index("statistics")
_TIMESTAMP_AT = tuple(at for at, name in enumerate(CAMPAIGN_COLUMNS) if name in TIMESTAMP_COLUMNS)
_ALL_DICTS = frozenset({dict}).issuperset
_astuple = msgspec.structs.astuple
#: Types the csv module writes as they are (None as an empty cell); the rest goes through csv_cell().
_CSV_NATIVE = frozenset({str, int, float, type(None)})
_TIMESTAMP_ORDER = tuple(name for name in CAMPAIGN_COLUMNS if name in TIMESTAMP_COLUMNS)
_KNOWN_STATISTICS = frozenset(STATISTICS_KEYS)
#: Distinct timestamp strings remembered per converter: a campaign's start_at often equals its created_at.
_CONVERSION_CACHE_SIZE = 4096
#: The API's usual timestamp, ``yyyy-mm-dd hh:mm:ss`` (or with a T), once every digit is 0 and the
#: separator T: what a UTC account's fast path converts by string surgery.
_USUAL_SHAPE = b"0000-00-00T00:00:00\n"
_TO_SHAPE = bytes.maketrans(b"0123456789 ", b"0000000000T")
#: Timezone names that mean UTC itself.
_UTC_NAMES = frozenset({"UTC", "Etc/UTC", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu", "GMT", "Etc/GMT"})


def json_text(value: Any) -> str:
    """Compact JSON, non-ASCII kept as it is: how nested values go into a CSV cell."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class TimestampConverter:
    """
    Turn the API's timestamps into ISO 8601 in UTC with an explicit offset.

    ``2024-04-03 12:14:49`` (wall time in the API timezone) and ``2024-04-03 12:14:49+02:00``
    both become ``2024-04-03T10:14:49+00:00`` for an account in Europe/Berlin. A wall time
    that a DST change repeats is read as its first occurrence.

    :param api_timezone: IANA name of the account's timezone (the connection's ``api_timezone``).
    """

    def __init__(self, api_timezone: str) -> None:
        zone = api_zone(api_timezone)
        self._zone = timezone.utc if api_timezone in _UTC_NAMES else zone
        self._naive_is_utc = self._zone is timezone.utc
        # Converting through another zone is the slow part; repeated strings are common there.
        self._convert_zoned: Callable[[str], str] = lru_cache(maxsize=_CONVERSION_CACHE_SIZE)(self._to_utc)

    def __call__(self, value: Any) -> str | None:
        """
        Convert one value; None stays None.

        :param value: a timestamp string from the API.
        :raises ValueError: when it is not a timestamp.
        """
        holder = {"value": value}
        self.convert_fields(holder, ("value",))
        return holder["value"]

    def convert_fields(self, record: dict[str, Any], fields: Sequence[str]) -> None:
        """
        Convert some fields of ``record`` in place; None stays None. One call per record, not per field:
        this runs for every timestamp of every campaign.

        :param record: a campaign.
        :param fields: the names of its timestamp fields.
        :raises ValueError: whose only argument is the first field that holds no timestamp.
        """
        plain_is_utc = self._naive_is_utc
        parse = datetime.fromisoformat
        for name in fields:
            value = record[name]
            if value is None:
                continue
            try:
                if type(value) is not str:
                    raise ValueError(name)
                if (
                    plain_is_utc
                    and len(value) == 19
                    and value[10] in " T"
                    and value[4] == value[7] == "-"
                    and value[13] == value[16] == ":"
                ):
                    # The API's usual form in a UTC account: only the separator and the offset change.
                    parse(value)  # still refuse what is no real date and time
                    record[name] = value.replace(" ", "T") + "+00:00"
                else:
                    record[name] = self._convert_zoned(value)
            except ValueError:
                raise ValueError(name) from None

    def convert_column(self, values: Sequence[Any]) -> list[Any] | None:
        """
        Convert many values at once, None staying None, as :meth:`convert_fields` would; or None
        when any value is no timestamp, so the caller converts record by record and gets the
        error naming the first bad one.

        :param values: one timestamp field of a page of records.
        """
        if self._naive_is_utc:
            converted = self._usual_utc_column(values)
            if converted is not None:
                return converted
        try:
            # Another zone (each distinct value converted once, then cached) or another form.
            return list(map(self, values))
        except ValueError:
            return None

    @staticmethod
    def _usual_utc_column(values: Sequence[Any]) -> list[Any] | None:
        """The column converted by string surgery, when every value has the API's usual form; else None."""
        present = [value for value in values if value is not None] if None in values else values
        if not present:
            return list(values)
        try:
            # One C-level pass over the page's values instead of a dozen checks per value.
            joined = "\n".join(present)
            shape = (joined + "\n").encode("ascii").translate(_TO_SHAPE)
        except (TypeError, UnicodeEncodeError):
            return None
        if shape != _USUAL_SHAPE * len(present):
            return None
        try:
            deque(map(datetime.fromisoformat, present), maxlen=0)  # still refuse what is no real date
        except ValueError:
            return None
        # Only the separator can be a space here; every value gains the offset.
        converted = (joined.replace(" ", "T").replace("\n", "+00:00\n") + "+00:00").split("\n")
        if present is values:
            return converted
        remaining = iter(converted)
        return [None if value is None else next(remaining) for value in values]

    def convert_record(
        self, record: dict[str, Any], fields: Sequence[str], *, noun: str = "campaign", endpoint: str = "list"
    ) -> None:
        """
        :meth:`convert_fields` on a record of an API answer, with the error a bad timestamp there is.

        :param record: a campaign or message.
        :param fields: the names of its timestamp fields.
        :param noun: what the record is, for the error.
        :param endpoint: the endpoint it came from, for the error.
        :raises BsgMalformedResponseError: naming the record, the field and the way out.
        """
        try:
            self.convert_fields(record, fields)
        except ValueError as exc:
            name = exc.args[0]
            raise BsgMalformedResponseError(
                f"{noun.capitalize()} {record['id']} has {name} {record[name]!r}, which is not a timestamp "
                "(the API documents 'yyyy-mm-dd hh:mm:ss' or ISO 8601). To write the API's strings "
                "unchanged, set convert_timestamps=False.",
                status=200,
                reason="bad_timestamp",
                endpoint=endpoint,
            ) from None

    def _to_utc(self, value: str) -> str:
        text = value.strip()
        if text.endswith(("Z", "z")):
            # Python 3.10's fromisoformat does not read the Z suffix.
            text = text[:-1] + "+00:00"
        moment = datetime.fromisoformat(text)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self._zone)
        return moment.astimezone(timezone.utc).isoformat()


class RecordShaper:
    """
    Shape campaigns for output: JSON Lines objects or CSV rows, always in the same column order.

    Record by record (:meth:`json_record`, :meth:`csv_row`: any campaign, the reference) or a
    page at a time (:meth:`json_columns`, :meth:`csv_cell_columns`: usual pages, the same values).

    :param api_timezone: IANA name of the account's timezone, to read naive timestamps.
    :param convert_timestamps: convert timestamps to ISO 8601 UTC (True) or keep the API's strings.
    """

    #: The CSV header.
    csv_columns = CSV_COLUMNS
    #: The types a CSV cell keeps (the csv module writes them as they are); the rest go through csv_cell().
    csv_native_types = _CSV_NATIVE
    #: The keys of a usual campaign's JSON object, in order.
    json_fields = CAMPAIGN_COLUMNS

    def __init__(self, *, api_timezone: str = "UTC", convert_timestamps: bool = True) -> None:
        self.convert_timestamps = convert_timestamps
        self._timestamp = TimestampConverter(api_timezone)

    def json_record(self, campaign: dict[str, Any]) -> dict[str, Any]:
        """
        The JSON Lines object: the documented fields in :data:`CAMPAIGN_COLUMNS` order (null when
        the API left one out), then any other field the API sent, sorted by name.

        :param campaign: one campaign as the API sent it.
        :raises BsgMalformedResponseError: when a timestamp cannot be read.
        """
        if tuple(campaign) == CAMPAIGN_COLUMNS:
            # The API's own order and nothing more: the usual case, and the fast one.
            record = campaign.copy()
            unknown: list[str] = []
        else:
            record = {name: campaign.get(name) for name in CAMPAIGN_COLUMNS}
            unknown = sorted(campaign.keys() - _KNOWN)
        if self.convert_timestamps:
            self._convert_timestamps(record)
        statistics = record["statistics"]
        if isinstance(statistics, dict) and tuple(statistics) != STATISTICS_KEYS:
            record["statistics"] = _ordered_statistics(statistics)
        for name in unknown:
            record[name] = campaign[name]
        return record

    def json_columns(self, campaigns: list[Any]) -> list[Sequence[Any]] | None:
        """
        The values of a page of usual campaigns for JSON Lines, one sequence per field of
        :attr:`json_fields`: what :meth:`json_record` gives each, gathered and converted a column
        at a time in C-level loops. None for any other page (a field missing or added,
        ``statistics`` other than delivered and sent, a timestamp that is not one), which the
        caller then shapes campaign by campaign, so the values and the errors are the same either way.

        :param campaigns: one page of campaigns as the API sent them (dicts, or a typed page's
            :class:`~bsg_provider.client.usual_page.UsualCampaign` structs), left unchanged.
        """
        columns = _usual_columns(campaigns)
        if columns is None:
            return None
        if self.convert_timestamps:
            for at in _TIMESTAMP_AT:
                converted = self._timestamp.convert_column(columns[at])
                if converted is None:
                    return None
                columns[at] = converted
        return columns

    def csv_row(self, campaign: dict[str, Any]) -> list[str | int | float | None]:
        """
        The CSV cells, in :data:`CSV_COLUMNS` order, as values the :mod:`csv` module writes
        (text and numbers as they are, None as an empty cell).

        ``statistics`` becomes ``statistics_delivered`` and ``statistics_sent``; lists and objects
        (``alternative_channels``) are JSON text; fields the header does not know, and ``statistics``
        keys beyond delivered and sent, go to ``extra_fields`` as one JSON object, so nothing is lost.

        :param campaign: one campaign as the API sent it.
        :raises BsgMalformedResponseError: when a timestamp cannot be read.
        """
        known_only = tuple(campaign) == CAMPAIGN_COLUMNS
        record = campaign.copy() if known_only else {name: campaign.get(name) for name in CAMPAIGN_COLUMNS}
        if self.convert_timestamps:
            self._convert_timestamps(record)
        statistics = record["statistics"]
        if known_only and type(statistics) is dict and tuple(statistics) == STATISTICS_KEYS:
            # The usual campaign: documented fields only, so no extra_fields; C-level gathering.
            row = [*_ROW_BEFORE(record), *_STATISTICS_COUNTS(statistics), *_ROW_AFTER(record), None]
            if all(map(_CSV_NATIVE.__contains__, map(type, row))):
                return row
            return [value if type(value) in _CSV_NATIVE else csv_cell(value) for value in row]
        extra = {} if known_only else {name: campaign[name] for name in campaign.keys() - _KNOWN}
        if isinstance(statistics, dict):
            counts = [statistics.get(key) for key in STATISTICS_KEYS]
            unknown_statistics = statistics.keys() - _KNOWN_STATISTICS
            if unknown_statistics:
                extra["statistics"] = {key: statistics[key] for key in sorted(unknown_statistics)}
        else:
            counts = [None] * len(STATISTICS_KEYS)
            if statistics is not None:
                extra["statistics"] = statistics
        values = [record[name] for name in _BEFORE_STATISTICS]
        values += counts
        values += [record[name] for name in _AFTER_STATISTICS]
        values.append(json_text(dict(sorted(extra.items()))) if extra else None)
        return [value if type(value) in _CSV_NATIVE else csv_cell(value) for value in values]

    def csv_cell_columns(self, campaigns: list[Any]) -> list[Sequence[Any]] | None:
        """
        The cells of a page of usual campaigns, one sequence per column of :data:`CSV_COLUMNS`:
        what :meth:`csv_row` gives each, a column at a time. None for any other page, as
        :meth:`json_columns`.

        :param campaigns: one page of campaigns as the API sent them, left unchanged.
        """
        values = self.csv_value_columns(campaigns)
        return None if values is None else list(map(csv_native, values))

    def csv_value_columns(self, campaigns: list[Any]) -> list[Sequence[Any]] | None:
        """
        :meth:`csv_cell_columns` before :func:`csv_native`: lists and objects not yet JSON text,
        booleans not yet ``true``/``false`` (the cells of :data:`csv_native_types` are the same).

        :param campaigns: one page of campaigns as the API sent them, left unchanged.
        """
        columns = self.json_columns(campaigns)
        if columns is None:
            return None
        counts_of = _astuple if is_typed(campaigns) else _STATISTICS_COUNTS
        counts = list(zip(*map(counts_of, columns[_STATISTICS_AT]), strict=True))
        cells = [
            *columns[:_STATISTICS_AT],
            *counts,
            *columns[_STATISTICS_AT + 1 :],
            [None] * len(campaigns),  # extra_fields: a usual campaign has none
        ]
        return cells

    def _convert_timestamps(self, record: dict[str, Any]) -> None:
        self._timestamp.convert_record(record, _TIMESTAMP_ORDER)


def _usual_columns(campaigns: list[Any]) -> list[Sequence[Any]] | None:
    """
    A page of usual campaigns a field at a time, in :data:`CAMPAIGN_COLUMNS` order; None for
    any other page.

    :param campaigns: one page: a typed page's structs (usual by construction) or dicts.
    """
    if is_typed(campaigns):
        return list(zip(*map(_astuple, campaigns), strict=True))
    columns = field_columns(campaigns, _ALL_FIELDS, len(CAMPAIGN_COLUMNS))
    if columns is None:
        return None
    statistics = columns[_STATISTICS_AT]
    if not _ALL_DICTS(map(type, statistics)) or not all(
        map(operator.eq, map(tuple, statistics), repeat(STATISTICS_KEYS))
    ):
        return None
    return columns


def _ordered_statistics(statistics: Any) -> Any:
    """``statistics`` with delivered and sent first, then any other key by name."""
    if not isinstance(statistics, dict):
        return statistics
    ordered = {key: statistics[key] for key in STATISTICS_KEYS if key in statistics}
    if len(ordered) < len(statistics):
        for key in sorted(statistics.keys() - _KNOWN_STATISTICS):
            ordered[key] = statistics[key]
    return ordered


def csv_cell(value: Any) -> str:
    """A value the csv module would not write as JSON would (booleans, lists, objects), as text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, str)):
        return str(value)
    return json_text(value)


def csv_native(column: Sequence[Any], native: frozenset[type] = _CSV_NATIVE) -> Sequence[Any]:
    """
    A column of CSV cells, each value not of a ``native`` type turned by :func:`csv_cell`.

    :param column: the cells.
    :param native: the types written as they are.
    """
    if native.issuperset(map(type, column)):
        return column
    return [value if type(value) in native else csv_cell(value) for value in column]


def field_columns(
    records: list[dict[str, Any]], fields: Callable[[dict[str, Any]], tuple[Any, ...]], width: int
) -> list[Sequence[Any]] | None:
    """
    A page of records a field at a time, when every record has exactly ``width`` fields and
    ``fields`` finds them all (in any order); else None.

    :param records: one page.
    :param fields: an :func:`operator.itemgetter` of the fields, in output order.
    :param width: how many fields it gets.
    """
    if not records or not all(map(width.__eq__, map(len, records))):
        return None
    try:
        return list(zip(*map(fields, records), strict=True))
    except KeyError:
        return None
