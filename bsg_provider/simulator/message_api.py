"""``GET /api/messages`` and ``GET /api/campaigns/{id}/detail``, and their ground truth.

The messages endpoint follows the campaigns' window rules (the DESIGN's assumption): its
``filter[from]``/``filter[to]`` and ``page[offset]``/``way`` go through the campaigns' own
validation, so every reading of the vendor's rules (bounds, precision, span rule, filter
formats, ``meta.page.offset``) applies to both resources through the same settings. The
filters select on the message's ``created_at`` whatever ``filter_field`` says (a message has
no ``start_at``). What differs is checked here: ``page[limit]`` 15..500 (default 50), ``sort``
``id``/``phone``/``delivered`` (``delivered_at``, NULLs first), ``filter[id]``,
``filter[campaign_id]``, ``filter[reference_id]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .endpoints import INVALID_DATA, Response, json_response, message
from .listing import default_window, parse_list_query
from .messages import Block, MessageStore, State, decimal_text
from .timeutil import floor_us, parse_iso, require_aware

if TYPE_CHECKING:
    from .server import BsgSimulator

SORT_KEYS = ("id", "phone", "delivered")
MIN_LIMIT, MAX_LIMIT, DEFAULT_LIMIT = 15, 500, 50
# The parameters the campaigns' validation reads the same way for messages.
_SHARED = ("filter[from]", "filter[to]", "page[offset]", "way")
_ID = re.compile(r"\A[0-9]{1,18}\Z")


@dataclass(frozen=True)
class MessageQuery:
    """A validated messages request.

    :param lo: first ``created_at`` epoch microsecond included.
    :param hi: last ``created_at`` epoch microsecond included.
    :param offset: ``page[offset]``.
    :param limit: ``page[limit]``.
    :param sort: id, phone or delivered.
    :param way: asc or desc.
    :param message_id: ``filter[id]``.
    :param campaign_id: ``filter[campaign_id]``.
    :param reference_id: ``filter[reference_id]``.
    """

    lo: int
    hi: int
    offset: int
    limit: int
    sort: str
    way: str
    message_id: int | None
    campaign_id: int | None
    reference_id: str | None


def _positive_id(params: Mapping[str, str], name: str, errors: dict[str, list[str]]) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    if not _ID.match(raw) or int(raw) < 1:
        errors[name] = [f"The {name} must be a positive integer of at most 18 digits."]
        return None
    return int(raw)


def parse_message_query(sim: BsgSimulator, params: Mapping[str, str]) -> tuple[MessageQuery | None, dict]:
    """Validate messages parameters the way the API validates the campaigns'.

    :param sim: the simulator (clock, timezone, readings).
    :param params: query parameters.
    :return: the query, or None and the 422 ``errors`` mapping.
    """
    shared = {name: params[name] for name in _SHARED if name in params}
    window, errors = parse_list_query(shared, sim.now(), sim.tz, sim.readings)
    errors = dict(errors)
    sort = params.get("sort", "id")
    if sort not in SORT_KEYS:
        errors["sort"] = ["The selected sort is invalid."]
    limit = None
    raw_limit = params.get("page[limit]")
    if raw_limit is None:
        limit = DEFAULT_LIMIT
    elif not re.match(r"\A[+-]?[0-9]{1,18}\Z", raw_limit):
        errors["page[limit]"] = ["The page[limit] must be an integer."]
    elif not MIN_LIMIT <= int(raw_limit) <= MAX_LIMIT:
        errors["page[limit]"] = [f"The page[limit] must be between {MIN_LIMIT} and {MAX_LIMIT}."]
    else:
        limit = int(raw_limit)
    message_id = _positive_id(params, "filter[id]", errors)
    campaign_id = _positive_id(params, "filter[campaign_id]", errors)
    reference_id = params.get("filter[reference_id]")
    if reference_id is not None and len(reference_id) > 32:
        errors["filter[reference_id]"] = ["The filter[reference_id] may not be greater than 32 characters."]
    if errors or window is None or limit is None:
        return None, errors
    query = MessageQuery(
        lo=window.lo,
        hi=window.hi,
        offset=window.offset,
        limit=limit,
        sort=sort,
        way=window.way,
        message_id=message_id,
        campaign_id=campaign_id,
        reference_id=reference_id,
    )
    return query, errors


class MessageApi:
    """The two message endpoints on top of a simulator's :class:`MessageStore`.

    :param sim: the simulator.
    """

    def __init__(self, sim: BsgSimulator) -> None:
        self.sim = sim
        self.store: MessageStore = sim.messages

    def list(self, params: Mapping[str, str]) -> Response:
        """``GET /api/messages``.

        :param params: query parameters.
        """
        sim = self.sim
        query, errors = parse_message_query(sim, params)
        if query is None:
            return json_response(422, {"message": INVALID_DATA, "errors": errors})
        now = sim.epoch()
        store = self.store
        with store.lock:
            rows = self._page(query, now)
            total, page = rows
            states: dict[int, State] = {}
            memo: dict[tuple[int, int, bool], str] = {}
            rendered = []
            for block, index in page:
                state = states.get(block.campaign.id)
                if state is None:
                    state = states[block.campaign.id] = State(block, now)
                rendered.append(store.render(block, index, state, memo))
        q = query
        if sim.readings.page_offset_in_meta:
            meta = b'],"meta":{"page":{"total":%d,"limit":%d,"offset":%d}}}' % (total, q.limit, q.offset)
        else:
            meta = b'],"meta":{"page":{"total":%d,"limit":%d}}}' % (total, q.limit)
        return Response(200, b'{"data":[' + b",".join(rendered) + meta)

    def _page(self, q: MessageQuery, now: float) -> tuple[int, list[tuple[Block, int]]]:
        store = self.store
        wanted = q.message_id
        if q.reference_id is not None:
            named = store.id_of_reference(q.reference_id)
            if named is None or (wanted is not None and wanted != named):
                return 0, []
            wanted = named
        if wanted is not None:
            found = store.locate(wanted)
            if found is None:
                return 0, []
            block, index = found
            matches = (
                q.lo <= block.created_key(index) <= q.hi
                and (q.campaign_id is None or q.campaign_id == block.campaign.id)
                and (q.reference_id is None or block.source == "rest")
            )
            if not matches:
                return 0, []
            return 1, [found][q.offset : q.offset + q.limit]
        segments, ends = store.segments(q.lo, q.hi, q.campaign_id)
        total = ends[-1] if ends else 0
        if q.offset >= total:
            return total, []
        if q.sort == "id":
            if q.way == "asc":
                return total, list(store.iter_range(segments, ends, q.offset, min(total, q.offset + q.limit)))
            top = total - q.offset
            page = list(store.iter_range(segments, ends, max(0, top - q.limit), top))
            page.reverse()
            return total, page
        order = store.order(segments, ends, q.sort, now, (q.lo, q.hi, q.campaign_id))
        if q.way == "asc":
            positions = order[q.offset : q.offset + q.limit]
        else:
            top = total - q.offset
            positions = order[max(0, top - q.limit) : top][::-1]
        return total, [store.at(segments, ends, position) for position in positions]

    def detail(self, campaign_id: int) -> Response:
        """``GET /api/campaigns/{id}/detail``: the campaign with its messages' statistics.

        :param campaign_id: the id.
        """
        sim = self.sim
        now = sim.epoch()
        with self.store.lock:
            campaign = sim.dataset.get(campaign_id)
            summary = self.store.summary(campaign_id, now)
            if campaign is None or summary is None:
                return message(404, "Campaign not found")
            shown = sim.dataset.to_dict(campaign, now)
        data = {
            "id": shown["id"],
            "name": shown["name"],
            "sender": shown["sender"],
            "status": shown["status"],
            "type": shown["message_type"],
            "started_at": shown["start_at"],
            "actual_start_at": shown["real_start_at"],
            "finished_at": shown["finished_at"],
            "created_at": shown["created_at"],
            "statistics": summary["statistics"],
            "total_messages": summary["total_messages"],
            "total_phones": summary["total_phones"],
            "total_price": decimal_text(summary["total_price"]),
            "currency": summary["currency"],
            "alternative_channels": shown.get("alternative_channels"),
        }
        return json_response(200, {"data": data})

    def drift(self, kind: str, params: Mapping[str, str], count: int) -> None:
        """Apply an insert/delete fault to the messages of a request's window (or the default one).

        :param kind: insert or delete.
        :param params: the messages request's query parameters.
        :param count: messages to add or remove.
        """
        sim = self.sim
        query, _ = parse_message_query(sim, params)
        if query is not None:
            lo, hi, campaign_id = query.lo, query.hi, query.campaign_id
        else:
            (lo, hi), campaign_id = default_window(sim.now(), sim.tz, sim.readings), None
        if kind == "insert":
            self.store.insert_random(lo, hi, campaign_id, count)
        else:
            self.store.delete_lowest(lo, hi, campaign_id, count)


class MessagesGroundTruth:
    """The messages' ground truth on :class:`BsgSimulator` (mixed in)."""

    messages: MessageStore

    def epoch(self) -> float:  # pragma: no cover - provided by BsgSimulator
        raise NotImplementedError

    def message_ground_truth_ids(
        self, start: datetime, end: datetime, campaign_id: int | None = None
    ) -> list[int]:
        """Ids of the messages with ``start <= created_at < end`` (full precision), ascending.

        :param start: aware start, included.
        :param end: aware end, excluded.
        :param campaign_id: only this campaign's messages, if given.
        """
        lo = floor_us(require_aware(start, "start"))
        hi = floor_us(require_aware(end, "end"))
        return self.messages.ground_truth(lo, hi, campaign_id)

    def message_counts(self, campaign_id: int) -> dict[str, Any]:
        """A campaign's messages now: ``statistics`` by status, ``total_messages``, ``total_phones``,
        ``total_price`` (exact decimal text) and ``currency``; KeyError when unknown.

        :param campaign_id: the campaign id.
        """
        summary = self.messages.summary(campaign_id, self.epoch())
        if summary is None:
            raise KeyError(campaign_id)
        return {**summary, "total_price": decimal_text(summary["total_price"])}

    def message_total(self) -> int:
        """How many messages the simulator serves in all."""
        return self.messages.total()


def handle_message_control(sim: BsgSimulator, method: str, path: str, params: Mapping[str, str]) -> Response:
    """``/_simulator/messages/...``: the messages' ground truth for a simulator in another process.

    - ``GET /_simulator/messages/ground-truth?start=ISO&end=ISO[&campaign_id=ID]``:
      ``{"ids": [...], "count": n}`` of the half-open ``[start, end)`` on ``created_at``
    - ``GET /_simulator/messages/counts?campaign_id=ID``: what :meth:`message_counts` returns
    - ``GET /_simulator/messages/total``: ``{"total": n}``

    :param sim: the simulator.
    :param method: HTTP method (GET; the control dispatcher answers the others 405).
    :param path: URL path without a trailing slash.
    :param params: query parameters.
    """
    campaign_raw = params.get("campaign_id")
    if campaign_raw is not None and not _ID.match(campaign_raw):
        raise ValueError("campaign_id must be an integer")
    campaign_id = None if campaign_raw is None else int(campaign_raw)
    if path == "/_simulator/messages/ground-truth":
        if "start" not in params or "end" not in params:
            raise ValueError("missing query parameter 'start' or 'end'")
        ids = sim.message_ground_truth_ids(parse_iso(params["start"]), parse_iso(params["end"]), campaign_id)
        return json_response(200, {"ids": ids, "count": len(ids)})
    if path == "/_simulator/messages/counts":
        if campaign_id is None:
            raise ValueError("missing query parameter 'campaign_id'")
        return json_response(200, sim.message_counts(campaign_id))
    if path == "/_simulator/messages/total":
        return json_response(200, {"total": sim.message_total()})
    return message(404, "Unknown simulator control endpoint")
