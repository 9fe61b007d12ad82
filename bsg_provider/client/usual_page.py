"""
The usual page of campaigns, decoded straight into structs: the extraction's fast path.

Almost every page of ``GET /api/campaigns`` holds campaigns with exactly the documented fields
(``SearchCampaignResource``), ``statistics`` with exactly ``delivered`` and ``sent``, an integer
id and timestamps that are text or null. msgspec decodes such a body into the structs below in
C, about twice as fast as into dicts, and the structs are checked as they are built: a page
that is anything else (a field missing or added, another type) fails that decode, and is
decoded into dicts and read as before. So a page's records are either all
:class:`UsualCampaign` (a *typed* page) or all dicts, and the values are the same either way:
:func:`as_dicts` turns a typed page into the dicts the other decode gives, for the code that
reads records one by one (the rare path, and the errors it raises).

The structs are not tracked by Python's garbage collector (``gc=False``): decoded JSON holds no
reference cycles, and tracked, every page of them brought the next collection closer
(docs/performance.md measures it).
"""

from __future__ import annotations

import operator
from itertools import repeat
from typing import Any

import msgspec


class UsualStatistics(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """``statistics`` as the list endpoint documents it (``StatisticsShort``), in output order."""

    delivered: Any
    sent: Any


class UsualCampaign(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    """One campaign with exactly the documented fields, in output order (``records.CAMPAIGN_COLUMNS``)."""

    id: int
    name: Any
    sender: Any
    status: Any
    message_type: Any
    start_at: str | None
    real_start_at: str | None
    finished_at: str | None
    created_at: str | None
    statistics: UsualStatistics
    calculated_price: Any
    currency: Any
    alternative_channels: Any


class UsualCampaignPage(msgspec.Struct):
    """A list answer whose ``data`` are all usual campaigns; ``meta`` is checked as for any page."""

    data: list[UsualCampaign]
    meta: Any


#: Tried before the generic decode for the extraction's campaign pages.
USUAL_CAMPAIGN_PAGE = msgspec.json.Decoder(UsualCampaignPage)

_ID = operator.itemgetter("id")
_ATTRIBUTE_ID = operator.attrgetter("id")
_to_builtins = msgspec.to_builtins


def is_typed(records: list[Any]) -> bool:
    """
    Whether ``records`` is a typed page (all :class:`UsualCampaign`), not dicts.

    :param records: one page's records, or some of them: all of one kind.
    """
    return bool(records) and type(records[0]) is UsualCampaign


def record_ids(records: list[Any]) -> list[int]:
    """
    The records' ids, in order, from a typed page or from dicts.

    :param records: one page's records, or some of them.
    """
    return list(map(_ATTRIBUTE_ID if is_typed(records) else _ID, records))


def field_values(records: list[Any], name: str) -> list[Any]:
    """
    One field of every record, None where a dict lacks it.

    :param records: one page's records, or some of them.
    :param name: the field.
    """
    if is_typed(records):
        if name not in UsualCampaign.__struct_fields__:
            return [None] * len(records)
        return list(map(operator.attrgetter(name), records))
    return list(map(dict.get, records, repeat(name)))


def as_dicts(records: list[Any]) -> list[dict[str, Any]]:
    """
    The records as dicts: a typed page's campaigns as the generic decode gives them (documented
    order), dicts as they are.

    :param records: one page's records, or some of them.
    """
    return _to_builtins(records) if is_typed(records) else records
