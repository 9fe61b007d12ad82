"""
From a campaign as the API sends it to an output record: fixed column order, UTC timestamps, flat CSV cells.

Pure and on the hot path (one call per campaign), so it avoids per-record allocation it
does not need. The columns are documented in docs/operator.md; change both together.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from bsg_provider.errors import BsgMalformedResponseError
from bsg_provider.windows import api_zone

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
CSV_COLUMNS = (
    *CAMPAIGN_COLUMNS[: CAMPAIGN_COLUMNS.index("statistics")],
    *(f"statistics_{key}" for key in STATISTICS_KEYS),
    *CAMPAIGN_COLUMNS[CAMPAIGN_COLUMNS.index("statistics") + 1 :],
    "extra_fields",
)

_KNOWN = frozenset(CAMPAIGN_COLUMNS)
_KNOWN_STATISTICS = frozenset(STATISTICS_KEYS)
#: Distinct timestamp strings remembered per converter: a campaign's start_at often equals its created_at.
_CONVERSION_CACHE_SIZE = 4096


def _dumps(value: Any) -> str:
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
        self._zone = timezone.utc if api_timezone in ("UTC", "Etc/UTC") else zone
        self._convert: Callable[[str], str] = lru_cache(maxsize=_CONVERSION_CACHE_SIZE)(self._to_utc)

    def __call__(self, value: Any) -> str | None:
        """
        Convert one value; None stays None.

        :param value: a timestamp string from the API.
        :raises ValueError: when it is not a timestamp.
        """
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is a {type(value).__name__}, not a timestamp string")
        return self._convert(value)

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

    :param api_timezone: IANA name of the account's timezone, to read naive timestamps.
    :param convert_timestamps: convert timestamps to ISO 8601 UTC (True) or keep the API's strings.
    """

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
        record = {name: campaign.get(name) for name in CAMPAIGN_COLUMNS}
        if self.convert_timestamps:
            self._convert_timestamps(record)
        record["statistics"] = _ordered_statistics(record["statistics"])
        unknown = campaign.keys() - _KNOWN
        if unknown:
            for name in sorted(unknown):
                record[name] = campaign[name]
        return record

    def csv_row(self, campaign: dict[str, Any]) -> list[str]:
        """
        The CSV cells, in :data:`CSV_COLUMNS` order.

        ``statistics`` becomes ``statistics_delivered`` and ``statistics_sent``; ``alternative_channels``
        is JSON text; null is an empty cell; fields the header does not know (and ``statistics`` keys
        beyond delivered and sent) go to ``extra_fields`` as one JSON object, so nothing is lost.

        :param campaign: one campaign as the API sent it.
        :raises BsgMalformedResponseError: when a timestamp cannot be read.
        """
        record = {name: campaign.get(name) for name in CAMPAIGN_COLUMNS}
        if self.convert_timestamps:
            self._convert_timestamps(record)
        unknown = campaign.keys() - _KNOWN
        extra = {name: campaign[name] for name in sorted(unknown)} if unknown else {}
        statistics = record["statistics"]
        if isinstance(statistics, dict):
            unknown_statistics = statistics.keys() - _KNOWN_STATISTICS
            if unknown_statistics:
                extra["statistics"] = {key: statistics[key] for key in sorted(unknown_statistics)}
        else:
            if statistics is not None:
                extra["statistics"] = statistics
            statistics = {}
        cells: list[str] = []
        for name in CAMPAIGN_COLUMNS:
            if name == "statistics":
                cells.extend(_cell(statistics.get(key)) for key in STATISTICS_KEYS)
            else:
                cells.append(_cell(record[name]))
        cells.append(_dumps(extra) if extra else "")
        return cells

    def _convert_timestamps(self, record: dict[str, Any]) -> None:
        for name in TIMESTAMP_COLUMNS:
            value = record[name]
            if value is None:
                continue
            try:
                record[name] = self._timestamp(value)
            except ValueError:
                raise BsgMalformedResponseError(
                    f"Campaign {record['id']} has {name} {value!r}, which is not a timestamp "
                    "(the API documents 'yyyy-mm-dd hh:mm:ss' or ISO 8601). To write the API's strings "
                    "unchanged, set convert_timestamps=False.",
                    status=200,
                    reason="bad_timestamp",
                    endpoint="list",
                ) from None


def _ordered_statistics(statistics: Any) -> Any:
    """``statistics`` with delivered and sent first, then any other key by name."""
    if not isinstance(statistics, dict):
        return statistics
    ordered = {key: statistics[key] for key in STATISTICS_KEYS if key in statistics}
    if len(ordered) < len(statistics):
        for key in sorted(statistics.keys() - _KNOWN_STATISTICS):
            ordered[key] = statistics[key]
    return ordered


def _cell(value: Any) -> str:
    """One CSV cell: null is empty, numbers as Python writes them, lists and objects as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return _dumps(value)
