"""
The BSG One API as data: the requests we send and how we read the answers.

Pure and free of Airflow and of any HTTP library, so the sync hook (requests) and
the async trigger (httpx) build the same requests and read the same answers.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import msgspec

from bsg_provider import __version__
from bsg_provider.client.redaction import Redacted
from bsg_provider.client.resources import (  # noqa: F401 -- CAMPAIGN_TYPES, check_campaign_type re-exported
    CAMPAIGN_TYPES,
    CAMPAIGNS,
    ListQuery,
    campaigns_query,
    check_campaign_type,
)
from bsg_provider.client.usual_page import USUAL_CAMPAIGN_PAGE, UsualCampaignPage
from bsg_provider.errors import (
    BsgApiError,
    BsgAuthError,
    BsgConfigError,
    BsgMalformedResponseError,
    BsgNotFoundError,
    BsgRateLimitError,
    BsgServerError,
    BsgTransportError,
    BsgValidationError,
)

DEFAULT_BASE_URL = "https://one-api.bsg.world"
USER_AGENT = f"airflow-provider-bsg/{__version__}"

CAMPAIGN_STATUSES = ("creation", "moderation", "scheduled", "sending", "paused", "stopped", "done", "spam")
MIN_PAGE_SIZE = CAMPAIGNS.min_page_size
MAX_PAGE_SIZE = CAMPAIGNS.max_page_size
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})

_fast_decode = msgspec.json.Decoder().decode
#: ``meta.page`` keys the spec lets the API leave out.
_OPTIONAL_PAGE_KEYS = frozenset({"offset"})
_ONLY_DICTS = frozenset({dict}).issuperset
_ONLY_INTS = frozenset({int}).issuperset
_ID = operator.itemgetter("id")


@dataclass(frozen=True)
class ApiRequest:
    """
    One call to the API, independent of the HTTP client that sends it.

    :param endpoint: short name for logs and metrics (``login``, ``refresh``, ``list``, ``get``).
    :param method: HTTP method.
    :param path: path below the base URL.
    :param params: query parameters.
    :param json: JSON body.
    :param authenticated: whether it needs ``Authorization: Bearer <token>``.
    :param usual_answer: a msgspec decoder of the answer's usual shape, tried before the generic
        decode (:mod:`~bsg_provider.client.usual_page`); None decodes into dicts only.
    """

    endpoint: str
    method: str
    path: str
    params: dict[str, str] | None = None
    # Kept out of repr: the login body holds the API key.
    json: dict[str, Any] | None = field(default=None, repr=False)
    authenticated: bool = True
    usual_answer: msgspec.json.Decoder[Any] | None = field(default=None, repr=False, compare=False)

    def describe(self) -> str:
        """Say which call this is, without any secret (the login body is never shown)."""
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class CampaignPage:
    """
    One page of ``GET /api/campaigns``.

    :param records: the campaigns, as the API sent them: dicts, or for a usual page fetched for
        an extraction :class:`~bsg_provider.client.usual_page.UsualCampaign` structs.
    :param total: ``meta.page.total``: campaigns matching the filter.
    :param offset: ``meta.page.offset`` as the API reported it; None when it left it out.
    :param limit: ``meta.page.limit`` as the API reported it.
    """

    records: list[Any]
    total: int
    offset: int | None
    limit: int


def normalize_base_url(host: str | None, port: int | None = None) -> str:
    """
    Turn a connection's ``host`` (and ``port``) into a base URL.

    :param host: ``https://one-api.bsg.world``, ``one-api.bsg.world`` or empty for the default.
    :param port: the connection's port, used when the host names none.
    :raises BsgConfigError: when it is not a URL we can call.
    """
    if host is None or not str(host).strip():
        return DEFAULT_BASE_URL
    text = str(host).strip()
    if "://" not in text:
        text = f"https://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in text):
        raise BsgConfigError(
            f"Connection host {host!r} is not a base URL. Set it to the API's address, "
            f"such as {DEFAULT_BASE_URL} (scheme optional, https is assumed)."
        )
    try:
        parts.port  # noqa: B018 -- urlsplit only validates the port when it is read
    except ValueError as exc:
        raise BsgConfigError(f"Connection host {host!r} has an invalid port: {exc}.") from None
    if parts.query or parts.fragment:
        raise BsgConfigError(f"Connection host {host!r} must not carry a query or fragment.")
    netloc = parts.netloc
    if port:
        if parts.port is not None and parts.port != port:
            raise BsgConfigError(
                f"Connection host {host!r} names port {parts.port} but the port field says {port}; "
                "keep one of them."
            )
        if parts.port is None:
            netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/")
    if path.endswith("/api"):
        # A common paste: the docs show URLs with /api/...; every path we call already starts with it.
        path = path[: -len("/api")]
    return f"{parts.scheme}://{netloc}{path}"


def is_plain_http(base_url: str) -> bool:
    """Whether credentials would travel unencrypted to this base URL."""
    return base_url.startswith("http://")


def check_page_size(page_size: Any) -> int:
    """Return ``page_size`` if the campaigns endpoint accepts it, else raise :class:`BsgConfigError`."""
    return CAMPAIGNS.check_page_size(page_size)


def check_campaign_id(campaign_id: Any) -> int:
    """Return a campaign id as a positive int (digit strings accepted), else raise BsgConfigError."""
    if isinstance(campaign_id, bool):
        value = None
    elif isinstance(campaign_id, int):
        value = campaign_id
    elif isinstance(campaign_id, str) and campaign_id.strip().isdigit():
        value = int(campaign_id.strip())
    else:
        value = None
    if value is None or value <= 0:
        raise BsgConfigError(f"A campaign id must be a positive integer, got {campaign_id!r}.")
    return value


def check_campaign_ids(campaign_id: Any) -> list[int] | None:
    """
    None, or the distinct campaign ids of one id or a list of them, in the order given.

    :param campaign_id: None, an id, or a list or tuple of ids (digit strings accepted, and a
        rendered template's text such as ``"12,13"`` or ``"[12, 13]"``).
    :raises BsgConfigError: for an empty list or an id that is not a positive integer.
    """
    if campaign_id is None:
        return None
    if isinstance(campaign_id, str) and ("," in campaign_id or campaign_id.strip().startswith("[")):
        inner = campaign_id.strip().removeprefix("[").removesuffix("]")
        campaign_id = [part for part in (piece.strip() for piece in inner.split(",")) if part]
    values = list(campaign_id) if isinstance(campaign_id, (list, tuple, set, frozenset)) else [campaign_id]
    if not values:
        raise BsgConfigError(
            "campaign_id is an empty list: give at least one campaign id, or None for every campaign."
        )
    return list(dict.fromkeys(check_campaign_id(value) for value in values))


def login_request(api_key: str) -> ApiRequest:
    """``POST /api/auth/login``: trade the API key for a JWT."""
    return ApiRequest(
        "login", "POST", "/api/auth/login", json={"api_key": Redacted(api_key)}, authenticated=False
    )


def auth_headers(token: str) -> dict[str, str]:
    """The ``Authorization`` header for a request sent with ``token``."""
    return {"Authorization": Redacted(f"Bearer {token}")}


def refresh_request() -> ApiRequest:
    """``POST /api/auth/refresh``: trade the current JWT for a fresh one."""
    return ApiRequest("refresh", "POST", "/api/auth/refresh")


def list_campaigns_request(
    api_from: str, api_to: str, *, campaign_type: str, offset: int, limit: int
) -> ApiRequest:
    """
    ``GET /api/campaigns`` for one page of one window, sorted by id ascending.

    :param api_from: lower bound, ``yyyy-mm-dd hh:mm:ss`` in the API timezone (inclusive or
        exclusive: :meth:`~bsg_provider.extraction.windows.Window.api_bounds` is exact either way).
    :param api_to: upper bound, same format.
    :param campaign_type: ``sms``, ``rcs`` or ``whatsapp``.
    :param offset: records to skip.
    :param limit: page size, 30..500.
    """
    return list_request(campaigns_query(campaign_type), api_from, api_to, offset=offset, limit=limit)


def list_request(
    query: ListQuery, api_from: str, api_to: str, *, offset: int, limit: int, typed: bool = False
) -> ApiRequest:
    """
    One page of one window of a list endpoint (campaigns or messages), sorted by id ascending.

    :param query: the resource and its filters.
    :param api_from: lower bound, ``yyyy-mm-dd hh:mm:ss`` in the API timezone.
    :param api_to: upper bound, same format.
    :param offset: records to skip.
    :param limit: page size, within the resource's range.
    :param typed: decode a usual page of campaigns into :class:`~bsg_provider.client.usual_page.UsualCampaign`
        structs (other pages, and messages, still into dicts).
    """
    params = dict(query.filters)
    params.update(
        {
            "filter[from]": api_from,
            "filter[to]": api_to,
            "page[offset]": str(offset),
            "page[limit]": str(limit),
            "sort": "id",
            "way": "asc",
        }
    )
    usual = USUAL_CAMPAIGN_PAGE if typed and query.resource is CAMPAIGNS else None
    return ApiRequest(query.resource.endpoint, "GET", query.resource.path, params=params, usual_answer=usual)


def get_campaign_request(campaign_id: int) -> ApiRequest:
    """``GET /api/campaigns/{id}``."""
    return ApiRequest("get", "GET", f"/api/campaigns/{campaign_id}")


def campaign_details_request(campaign_id: int) -> ApiRequest:
    """``GET /api/campaigns/{id}/detail``: a campaign with its delivery statistics by status."""
    return ApiRequest("detail", "GET", f"/api/campaigns/{campaign_id}/detail")


def timeout_error(request: ApiRequest, base_url: str, timeout: float) -> BsgTransportError:
    """The error for a request that got no answer within the connection's timeout."""
    return BsgTransportError(
        f"No answer to {request.describe()} from {base_url} within {timeout:g} s "
        "(raise the connection's timeout extra if the API is slow).",
        reason="timeout",
        endpoint=request.endpoint,
    )


def connection_error(request: ApiRequest, base_url: str, cause: BaseException) -> BsgTransportError:
    """The error for a request whose connection failed (refused, reset, broken mid-body)."""
    return BsgTransportError(
        f"Connection to {base_url} failed during {request.describe()}: "
        f"{type(cause).__name__}. Check the connection's host and the network.",
        reason="connection",
        endpoint=request.endpoint,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """
    Seconds to wait from a ``Retry-After`` header, in either of its forms.

    :param value: ``"120"`` or an HTTP date such as ``"Wed, 21 Oct 2015 07:28:00 GMT"``.
    :param now: the current time, for the date form.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (moment - now).total_seconds())


def read_answer(
    request: ApiRequest,
    status: int,
    body: bytes,
    *,
    content_type: str | None,
    retry_after: str | None = None,
    location: str | None = None,
) -> Any:
    """
    Return the decoded JSON of a successful answer, or raise the error it stands for.

    :param request: the request this answers.
    :param status: HTTP status code.
    :param body: raw body.
    :param content_type: the ``Content-Type`` header.
    :param retry_after: the ``Retry-After`` header.
    :param location: the ``Location`` header, for a redirect.
    :raises BsgRetryableError: for statuses and bodies worth another try.
    :raises BsgApiError: for every other failure (never retried).
    """
    where = f"{request.describe()} ({request.endpoint})"
    if status in RETRYABLE_STATUSES:
        error_type = BsgRateLimitError if status == 429 else BsgServerError
        api_message, _ = _error_details(body)
        raise error_type(
            f"BSG One API answered HTTP {status} to {where}" + (f": {api_message}" if api_message else ""),
            status=status,
            api_message=api_message,
            retry_after=parse_retry_after(retry_after),
            reason=str(status),
            endpoint=request.endpoint,
        )
    if 200 <= status < 300:
        return _decode_json(request, status, body, content_type)
    if 300 <= status < 400:
        raise BsgApiError(
            f"BSG One API redirected {where} (HTTP {status}) to {location or 'an unnamed location'}; "
            "set the connection's host to the address the API lives at (https, no redirect).",
            status=status,
            endpoint=request.endpoint,
        )
    api_message, errors = _error_details(body)
    detail = api_message or "no message"
    if errors:
        detail += "; " + "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in errors.items())
    kwargs: dict[str, Any] = {
        "status": status,
        "api_message": api_message,
        "errors": errors,
        "endpoint": request.endpoint,
    }
    if status in (401, 403):
        hint = (
            "check the API key in the connection's password field"
            if request.endpoint == "login"
            else "the token was refused"
        )
        raise BsgAuthError(f"BSG One API refused {where} (HTTP {status}: {detail}); {hint}.", **kwargs)
    if status == 404:
        raise BsgNotFoundError(f"BSG One API found nothing at {where} (HTTP 404: {detail}).", **kwargs)
    if status == 422:
        raise BsgValidationError(f"BSG One API rejected {where} (HTTP 422: {detail}).", **kwargs)
    raise BsgApiError(f"BSG One API answered HTTP {status} to {where}: {detail.rstrip('.')}.", **kwargs)


def http_request(request: ApiRequest, base_url: str, token: str | None) -> dict[str, Any]:
    """
    What both hooks hand their HTTP client (requests or httpx) for ``request``: the same arguments.

    :param request: what to send.
    :param base_url: the connection's base URL.
    :param token: the JWT for ``Authorization: Bearer``, None for the login.
    """
    return {
        "method": request.method,
        "url": base_url + request.path,
        "params": request.params,
        "json": request.json,
        "headers": auth_headers(token) if token else None,
    }


def read_response(request: ApiRequest, status: int, body: bytes, headers: Mapping[str, str]) -> Any:
    """
    :func:`read_answer` for an answer as requests and httpx give it.

    :param request: the request sent.
    :param status: the HTTP status.
    :param body: the raw body.
    :param headers: the answer's headers (a case-insensitive mapping, as requests and httpx give).
    """
    return read_answer(
        request,
        status,
        body,
        content_type=headers.get("Content-Type"),
        retry_after=headers.get("Retry-After"),
        location=headers.get("Location"),
    )


#: The fields a 422 names when it refuses a window's span (or its dates).
_SPAN_FIELDS = frozenset({"filter[from]", "filter[to]"})


def is_span_refusal(error: BsgValidationError) -> bool:
    """
    Whether a 422 to a list request may be refusing the window's span, so a shorter one may pass.

    The vendor documents no error text, so any 422 naming ``filter[from]`` or ``filter[to]``
    counts, and one naming no field at all; one naming another field does not.

    :param error: the 422 the first page of a window got.
    """
    return not error.errors or bool(_SPAN_FIELDS & error.errors.keys())


def _decode_json(request: ApiRequest, status: int, body: bytes, content_type: str | None) -> Any:
    if content_type is not None and "json" not in content_type.lower():
        raise BsgMalformedResponseError(
            f"BSG One API answered {request.describe()} with HTTP {status} but Content-Type "
            f"{content_type.split(';')[0]!r} instead of JSON (a proxy or maintenance page?).",
            status=status,
            reason="not_json",
            endpoint=request.endpoint,
        )
    if request.usual_answer is not None:
        try:
            return request.usual_answer.decode(body)
        except ValueError:
            pass  # not the usual shape (or no JSON at all): decoded, and judged, as any answer
    try:
        # msgspec (installed by Airflow) parses several times faster than json; json is the fallback
        # for what msgspec refuses but JSON allows, such as an escaped lone surrogate.
        return _fast_decode(body)
    except ValueError:
        pass
    try:
        return json.loads(body, parse_float=_finite_float, parse_constant=_no_constant)
    except ValueError as exc:
        # json's own errors say where; others (a number out of range, an integer of over 4,300
        # digits) only what.
        where = f"{exc.msg} at byte {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise BsgMalformedResponseError(
            f"BSG One API answered {request.describe()} with HTTP {status} and a body that is not "
            f"valid JSON ({where}, {len(body)} bytes).",
            status=status,
            reason="malformed_json",
            endpoint=request.endpoint,
        ) from None


def _finite_float(text: str) -> float:
    """A JSON number as a float, refusing one too large for it (``1e400`` would become inf, then null)."""
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:40]} is too large for a float")
    return value


def _no_constant(text: str) -> float:
    """Refuse ``NaN`` and ``Infinity``, which json accepts and JSON does not."""
    raise ValueError(f"{text} is not a JSON value")


def _error_details(body: bytes) -> tuple[str | None, dict[str, list[str]]]:
    """Read ``{"message", "errors"}`` from an error body, tolerating anything else."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None, {}
    if not isinstance(payload, dict):
        return None, {}
    message = payload.get("message")
    raw_errors = payload.get("errors")
    errors: dict[str, list[str]] = {}
    if isinstance(raw_errors, dict):
        for field, msgs in raw_errors.items():
            errors[str(field)] = [str(m) for m in msgs] if isinstance(msgs, list) else [str(msgs)]
    return (str(message) if message is not None else None), errors


def _malformed(request_endpoint: str, what: str) -> BsgMalformedResponseError:
    return BsgMalformedResponseError(
        f"BSG One API's {request_endpoint} answer is not what the API documents: {what}.",
        status=200,
        reason="bad_shape",
        endpoint=request_endpoint,
    )


def parse_token(payload: Any) -> str:
    """Read the JWT from a login or refresh answer (``TokenSchema``)."""
    token = payload.get("bearer") if isinstance(payload, Mapping) else None
    if not isinstance(token, str) or not token:
        raise _malformed("login", "no token in the 'bearer' field")
    return Redacted(token)


def check_campaign(record: Any, endpoint: str, noun: str = "campaign") -> dict[str, Any]:
    """Return ``record`` if it is an object with an integer id, else raise."""
    if not isinstance(record, dict):
        raise _malformed(endpoint, f"a {noun} that is not an object ({type(record).__name__})")
    campaign_id = record.get("id")
    if isinstance(campaign_id, bool) or not isinstance(campaign_id, int):
        raise _malformed(endpoint, f"a {noun} whose id is {campaign_id!r}, not an integer")
    return record


def parse_campaign(payload: Any) -> dict[str, Any]:
    """Read the campaign from ``GET /api/campaigns/{id}`` (``CampaignResponse``)."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    return check_campaign(data, "get")


def parse_campaign_details(payload: Any) -> dict[str, Any]:
    """Read the campaign and its statistics from ``GET /api/campaigns/{id}/detail``."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    details = check_campaign(data, "detail")
    if not isinstance(details.get("statistics"), Mapping):
        raise _malformed("detail", "no 'statistics' object")
    return details


def parse_campaign_page(payload: Any) -> CampaignPage:
    """Read one page of ``GET /api/campaigns`` (``SearchCampaignResource``), checking what paging needs."""
    return parse_list_page(payload)


def parse_message_page(payload: Any) -> CampaignPage:
    """Read one page of ``GET /api/messages``, checking what paging needs."""
    return parse_list_page(payload, endpoint="messages", noun="message")


def parse_list_page(payload: Any, endpoint: str = "list", noun: str = "campaign") -> CampaignPage:
    """
    Read one page of a list endpoint, checking what paging needs.

    :param payload: the decoded answer.
    :param endpoint: the request's endpoint name, for errors.
    :param noun: what one record is, for errors.
    """
    if type(payload) is UsualCampaignPage:
        # Decoded into structs: every record is an object with an integer id already.
        return CampaignPage(records=payload.data, **_page_numbers(payload.meta, endpoint))  # type: ignore[arg-type]
    if not isinstance(payload, Mapping):
        raise _malformed(endpoint, f"a {type(payload).__name__} instead of an object")
    data = payload.get("data")
    if not isinstance(data, list):
        raise _malformed(endpoint, f"'data' that is {type(data).__name__}, not a list")
    numbers = _page_numbers(payload.get("meta"), endpoint)
    if not _all_records(data):
        for record in data:
            check_campaign(record, endpoint, noun)
    return CampaignPage(records=data, **numbers)  # type: ignore[arg-type]


def _page_numbers(meta: Any, endpoint: str) -> dict[str, int | None]:
    """``meta.page``'s total, offset and limit, checked."""
    page = meta.get("page") if isinstance(meta, Mapping) else None
    if not isinstance(page, Mapping):
        raise _malformed(endpoint, "no 'meta.page' object")
    numbers: dict[str, int | None] = {}
    for key in ("total", "offset", "limit"):
        value = page.get(key)
        if value is None and key in _OPTIONAL_PAGE_KEYS:
            # The spec's MetaPage gives offset a default (0), so an API may leave it out; paging
            # never reads it (the offset asked for is ours).
            numbers[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _malformed(endpoint, f"meta.page.{key} = {value!r}, not a non-negative integer")
        numbers[key] = value
    return numbers


def _all_records(data: list[Any]) -> bool:
    """Whether every item is an object with an integer id (what check_campaign passes), in C-level loops."""
    if not _ONLY_DICTS(map(type, data)):
        return False
    try:
        # type(), not isinstance(): a bool is no id.
        return _ONLY_INTS(map(type, map(_ID, data)))
    except KeyError:
        return False
