"""The vendor API's endpoints, independent of HTTP plumbing: request data in, Response out."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .listing import default_window, parse_list_query

if TYPE_CHECKING:
    from .server import BsgSimulator

INVALID_DATA = "The given data was invalid."
_CAMPAIGN_PATH = re.compile(r"\A/api/campaigns/([^/]+)(/stop)?\Z")
_DIGITS = re.compile(r"\A[0-9]{1,18}\Z")


@dataclass(frozen=True)
class Response:
    """An HTTP answer.

    :param status: status code.
    :param body: body bytes.
    :param content_type: Content-Type header.
    :param headers: extra headers.
    """

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_response(status: int, data: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A JSON response.

    :param status: status code.
    :param data: JSON-serializable body.
    :param headers: extra headers.
    """
    return Response(status, json.dumps(data, separators=(",", ":")).encode(), headers=headers)


def message(status: int, text: str) -> Response:
    """A ``{"message": ...}`` response.

    :param status: status code.
    :param text: the message.
    """
    return json_response(status, {"message": text})


def allowed_methods(path: str) -> str | None:
    """The methods the vendor API defines on a path (an ``Allow`` header value), None if unknown.

    :param path: URL path.
    """
    if path in ("/api/auth/login", "/api/auth/refresh"):
        return "POST"
    if path == "/api/campaigns":
        return "GET"
    match = _CAMPAIGN_PATH.match(path)
    if match is not None:
        return "PATCH" if match.group(2) else "GET"
    return None


def route(method: str, path: str) -> tuple[str, str | None]:
    """The endpoint name for a request and its path argument (campaign id text).

    :param method: HTTP method.
    :param path: URL path.
    :return: (endpoint, argument); for ``other`` the argument is ``"404"`` or ``"405"``.
    """
    allow = allowed_methods(path)
    if allow is None:
        return "other", "404"
    if method != allow:
        return "other", "405"
    if path == "/api/auth/login":
        return "login", None
    if path == "/api/auth/refresh":
        return "refresh", None
    if path == "/api/campaigns":
        return "list", None
    match = _CAMPAIGN_PATH.match(path)
    assert match is not None
    return ("stop" if match.group(2) else "get"), match.group(1)


def method_not_allowed(allow: str) -> Response:
    """A JSON 405 naming the methods the path has.

    :param allow: the ``Allow`` header value.
    """
    return json_response(405, {"message": f"Method Not Allowed. Allowed: {allow}."}, (("Allow", allow),))


class VendorApi:
    """The BSG One API rules on top of a simulator's state.

    :param sim: the simulator whose dataset, tokens and clock to use.
    """

    def __init__(self, sim: BsgSimulator) -> None:
        self.sim = sim

    def handle(
        self,
        endpoint: str,
        arg: str | None,
        params: dict[str, str],
        authorization: str | None,
        body: bytes,
        path: str = "",
    ) -> Response:
        """Answer one routed request.

        :param endpoint: from :func:`route`.
        :param arg: from :func:`route`.
        :param path: the URL path (names the allowed methods of a 405).
        :param params: query parameters.
        :param authorization: the Authorization header, if any.
        :param body: request body.
        """
        if endpoint == "login":
            return self.login(body)
        if endpoint == "other":
            allow = allowed_methods(path)
            return method_not_allowed(allow) if arg == "405" and allow else message(404, "Not Found")
        problem = self._authenticate(authorization)
        if problem is not None:
            return message(401, problem)
        if endpoint == "refresh":
            return json_response(200, {"bearer": self.sim.auth.issue()})
        if endpoint == "list":
            return self.list(params)
        campaign_id = int(arg) if arg is not None and _DIGITS.match(arg) else None
        if campaign_id is None or self.sim.dataset.get(campaign_id) is None:
            return message(404, "Campaign not found")
        if endpoint == "stop":
            return self.stop(campaign_id)
        return self.get(campaign_id)

    def _authenticate(self, authorization: str | None) -> str | None:
        if not authorization:
            return "JWT Token not found"
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return "JWT Token not found"
        return self.sim.auth.check(token.strip())

    def login(self, body: bytes) -> Response:
        """``POST /api/auth/login``.

        :param body: JSON ``{"api_key": ...}``.
        """
        try:
            data = json.loads(body or b"null")
        except (ValueError, RecursionError):  # RecursionError: a deeply nested body
            data = None
        api_key = data.get("api_key") if isinstance(data, dict) else None
        if not isinstance(api_key, str) or not api_key:
            errors = {"api_key": ["This value should not be blank."]}
            return json_response(422, {"message": INVALID_DATA, "errors": errors})
        if api_key != self.sim.api_key:
            return message(401, "Invalid credentials.")
        return json_response(200, {"bearer": self.sim.auth.issue()})

    def list(self, params: dict[str, str]) -> Response:
        """``GET /api/campaigns``.

        :param params: query parameters.
        """
        sim = self.sim
        readings = sim.readings
        query, errors = parse_list_query(params, sim.now(), sim.tz, readings)
        if query is None:
            return json_response(422, {"message": INVALID_DATA, "errors": errors})
        q = query
        now = sim.epoch()
        total, page = sim.dataset.select(
            q.message_type, q.lo, q.hi, q.sort, q.way, q.offset, q.limit, now, readings.filter_field
        )
        if readings.page_offset_in_meta:
            meta = b'],"meta":{"page":{"total":%d,"limit":%d,"offset":%d}}}' % (total, q.limit, q.offset)
        else:
            meta = b'],"meta":{"page":{"total":%d,"limit":%d}}}' % (total, q.limit)
        return Response(200, b'{"data":[' + b",".join(page) + meta)

    def get(self, campaign_id: int) -> Response:
        """``GET /api/campaigns/{id}`` for a known id.

        :param campaign_id: the id.
        """
        campaign = self.sim.dataset.get(campaign_id)
        if campaign is None:
            return message(404, "Campaign not found")
        return Response(200, b'{"data":' + self.sim.dataset.to_json(campaign, self.sim.epoch()) + b"}")

    def stop(self, campaign_id: int) -> Response:
        """``PATCH /api/campaigns/{id}/stop`` for a known id.

        :param campaign_id: the id.
        """
        try:
            campaign = self.sim.dataset.stop(campaign_id, self.sim.epoch())
        except KeyError:
            return message(404, "Campaign not found")
        if campaign is None:
            return json_response(422, {"message": "Invalid campaign status", "errors": []})
        return self.get(campaign_id)

    def drift_window(self, endpoint: str, params: dict[str, str]) -> tuple[str, int, int]:
        """The (type, lo, hi) an insert/delete fault acts on: the list request's window or the default.

        ``lo`` and ``hi`` are inclusive epoch microseconds.

        :param endpoint: the request's endpoint.
        :param params: its query parameters.
        """
        sim = self.sim
        if endpoint == "list":
            query, _ = parse_list_query(params, sim.now(), sim.tz, sim.readings)
            if query is not None:
                return query.message_type, query.lo, query.hi
        lo, hi = default_window(sim.now(), sim.tz, sim.readings)
        return "sms", lo, hi


_FAULT_MESSAGES = {
    401: "JWT Token not found",
    403: "Forbidden",
    408: "Request Timeout",
    422: INVALID_DATA,
    429: "Too many duplicate request detected",
    500: "Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
MALFORMED_JSON = b'{"data":[{"id":53651994,"name":"SMS api campaign / 2024-04-03 12:14:49","sender":"tes'
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>"
    b"<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>\n"
)


def fault_status(status: int, retry_after: str | None) -> Response:
    """The answer of a ``status`` fault.

    :param status: status code.
    :param retry_after: Retry-After header value, or None.
    """
    headers = (("Retry-After", retry_after),) if retry_after is not None else ()
    return json_response(status, {"message": _FAULT_MESSAGES.get(status, "Simulated failure")}, headers)
