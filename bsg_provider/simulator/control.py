"""Control endpoints under ``/_simulator/`` for a simulator running in another process.

Not part of the vendor API and need no token:

- ``POST /_simulator/faults``: JSON with :meth:`BsgSimulator.inject`'s fields (``kind`` required) -> 201
- ``GET /_simulator/faults``: faults not used up yet; ``DELETE /_simulator/faults``: drop all
- ``POST /_simulator/campaigns``: JSON ``{"created_at": ISO with offset, "final_status",
  "status_step_seconds", "message_type", ...other add_campaign fields}`` -> 201 with the campaign
- ``DELETE /_simulator/campaigns/{id}``; ``POST /_simulator/campaigns/{id}/status`` with ``{"status": ...}``
- ``GET /_simulator/stats``: ``{"requests": {endpoint: count}, "total": n, "campaigns": n,
  "max_in_flight": n}`` (the most API requests being answered at once since the log was cleared)
- ``DELETE /_simulator/requests``: clear the request log
- ``GET /_simulator/ground-truth?start=ISO&end=ISO&type=sms``: ``{"ids": [...], "count": n}`` for the
  half-open ``[start, end)``
- ``GET /_simulator/now``: ``{"now": ISO}``, the simulator's clock
- ``GET /_simulator/config``: the timezone, timestamp format and readings of the vendor's rules
  in force (``from_bound``, ``to_bound``, ``created_precision``, ``span_rule``, ``filter_field``,
  ``filter_formats``, ``page_offset_in_meta``)
- ``GET /_simulator/campaigns/{id}/created-at``: ``{"created_at": ISO}`` at full precision
- ``GET /_simulator/messages/...``: the messages' ground truth (see :mod:`.message_api`)
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .endpoints import Response, json_response, message, method_not_allowed
from .message_api import handle_message_control
from .timeutil import parse_iso

if TYPE_CHECKING:
    from .server import BsgSimulator

_CAMPAIGN = re.compile(r"\A/_simulator/campaigns/([0-9]{1,18})(/status|/created-at)?\Z")
_METHODS = {
    "/_simulator/faults": "GET, POST, DELETE",
    "/_simulator/campaigns": "POST",
    "/_simulator/stats": "GET",
    "/_simulator/requests": "DELETE",
    "/_simulator/ground-truth": "GET",
    "/_simulator/now": "GET",
    "/_simulator/config": "GET",
    "/_simulator/messages/ground-truth": "GET",
    "/_simulator/messages/counts": "GET",
    "/_simulator/messages/total": "GET",
}
_CAMPAIGN_METHODS = {None: "DELETE", "/status": "POST", "/created-at": "GET"}


def _param(params: dict[str, str], name: str) -> str:
    if name not in params:
        raise ValueError(f"missing query parameter {name!r}")
    return params[name]


def _body(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body or b"{}")
    except RecursionError:
        raise ValueError("the JSON body is nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def handle_control(
    sim: BsgSimulator, method: str, path: str, params: dict[str, str], body: bytes
) -> Response:
    """Answer a control request.

    :param sim: the simulator.
    :param method: HTTP method.
    :param path: URL path.
    :param params: query parameters.
    :param body: request body.
    """
    try:
        return _dispatch(sim, method, path.rstrip("/"), params, body)
    except KeyError as exc:
        return message(404, f"Unknown campaign {exc}")
    except (TypeError, ValueError, OverflowError) as exc:  # OverflowError: dates past year 1 or 9999
        return message(400, str(exc))


def _dispatch(sim: BsgSimulator, method: str, path: str, params: dict[str, str], body: bytes) -> Response:
    if path == "/_simulator/faults":
        if method == "POST":
            options = _body(body)
            if "kind" not in options:
                raise ValueError("a fault needs a kind")
            kind = options.pop("kind")
            return json_response(201, {"fault": sim.inject(kind, **options).describe()})
        if method == "DELETE":
            return json_response(200, {"cleared": sim.clear_faults()})
        if method == "GET":
            return json_response(200, {"faults": [fault.describe() for fault in sim.faults.pending()]})
    elif path == "/_simulator/campaigns" and method == "POST":
        options = _body(body)
        if "created_at" not in options:
            raise ValueError("a campaign needs created_at")
        created_at = parse_iso(str(options.pop("created_at")))
        if isinstance(options.get("start_at"), str):
            options["start_at"] = parse_iso(options["start_at"])
        return json_response(201, sim.add_campaign(created_at, **options))
    elif path == "/_simulator/stats" and method == "GET":
        counts = sim.log.counts()
        return json_response(
            200,
            {
                "requests": counts,
                "total": sum(counts.values()),
                "campaigns": len(sim.dataset.ids()),
                "max_in_flight": sim.max_in_flight,
            },
        )
    elif path == "/_simulator/requests" and method == "DELETE":
        sim.clear_requests()
        return json_response(200, {"cleared": True})
    elif path == "/_simulator/ground-truth" and method == "GET":
        start, end = parse_iso(_param(params, "start")), parse_iso(_param(params, "end"))
        ids = sorted(sim.ground_truth_ids(start, end, params.get("type", "sms")))
        return json_response(200, {"ids": ids, "count": len(ids)})
    elif path == "/_simulator/now" and method == "GET":
        return json_response(200, {"now": sim.now().isoformat()})
    elif path == "/_simulator/config" and method == "GET":
        return json_response(200, sim.config())
    elif path.startswith("/_simulator/messages/") and method == "GET":
        return handle_message_control(sim, method, path, params)
    else:
        match = _CAMPAIGN.match(path)
        if match is not None and match.group(2) == "/created-at" and method == "GET":
            return json_response(200, {"created_at": sim.created_at(int(match.group(1))).isoformat()})
        if match is not None and match.group(2) == "/status" and method == "POST":
            sim.set_status(int(match.group(1)), str(_body(body).get("status")))
            return json_response(200, sim.campaign(int(match.group(1))))
        if match is not None and not match.group(2) and method == "DELETE":
            sim.delete_campaign(int(match.group(1)))
            return json_response(200, {"deleted": int(match.group(1))})
    match = _CAMPAIGN.match(path)
    allow = _CAMPAIGN_METHODS[match.group(2)] if match is not None else _METHODS.get(path)
    if allow is not None:
        return method_not_allowed(allow)
    return message(404, "Unknown simulator control endpoint")
