from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from bsg_provider.client import api
from bsg_provider.errors import (
    BsgApiError,
    BsgAuthError,
    BsgConfigError,
    BsgMalformedResponseError,
    BsgNotFoundError,
    BsgRateLimitError,
    BsgRetryableError,
    BsgServerError,
    BsgValidationError,
)

LIST = api.list_campaigns_request(
    "2026-01-01 00:00:00", "2026-01-01 23:59:59", campaign_type="sms", offset=0, limit=500
)
JSON = "application/json"


def _page(records, total=None, offset=0, limit=500):
    return {
        "data": records,
        "meta": {
            "page": {"total": len(records) if total is None else total, "offset": offset, "limit": limit}
        },
    }


def test_list_request_sorts_by_id_ascending_with_inclusive_bounds():
    assert LIST.params == {
        "filter[type]": "sms",
        "filter[from]": "2026-01-01 00:00:00",
        "filter[to]": "2026-01-01 23:59:59",
        "page[offset]": "0",
        "page[limit]": "500",
        "sort": "id",
        "way": "asc",
    }
    assert (LIST.method, LIST.path, LIST.authenticated) == ("GET", "/api/campaigns", True)


def test_login_request_is_unauthenticated_and_never_describes_its_body():
    request = api.login_request("live_SECRET_123")
    assert not request.authenticated
    assert "live_SECRET_123" not in request.describe()
    assert "live_SECRET_123" not in repr(request.describe())


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (None, "https://one-api.bsg.world"),
        ("", "https://one-api.bsg.world"),
        ("one-api.bsg.world", "https://one-api.bsg.world"),
        ("https://one-api.bsg.world/", "https://one-api.bsg.world"),
        ("https://one-api.bsg.world/api", "https://one-api.bsg.world"),
        ("http://127.0.0.1:8099", "http://127.0.0.1:8099"),
        ("  https://proxy.example/bsg/  ", "https://proxy.example/bsg"),
    ],
)
def test_base_url_normalization(host, expected):
    assert api.normalize_base_url(host) == expected


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("ftp://one-api.bsg.world", "is not a base URL"),
        ("https://", "is not a base URL"),
        ("http://exa mple.com", "is not a base URL"),
        ("https://one-api.bsg.world:99999", "has an invalid port"),
        ("https://one-api.bsg.world/?x=1", "must not carry a query"),
    ],
)
def test_malformed_hosts_are_refused(host, message):
    with pytest.raises(BsgConfigError, match=message):
        api.normalize_base_url(host)


@pytest.mark.parametrize("size", [29, 501, 0, -1, "500", 500.0, True, None])
def test_page_size_outside_the_api_range_is_refused(size):
    with pytest.raises(BsgConfigError, match="page_size must be"):
        api.check_page_size(size)


@pytest.mark.parametrize("size", [30, 250, 500])
def test_page_size_inside_the_range_is_kept(size):
    assert api.check_page_size(size) == size


def test_campaign_type_and_id_checks():
    assert api.check_campaign_type("whatsapp") == "whatsapp"
    with pytest.raises(BsgConfigError, match="campaign_type must be one of sms, rcs, whatsapp, got 'viber'"):
        api.check_campaign_type("viber")
    assert api.check_campaign_id(" 42 ") == 42
    assert api.check_campaign_id(7) == 7
    for bad in ("abc", "4.2", 0, -3, True, None, 1.0, ""):
        with pytest.raises(BsgConfigError, match="A campaign id must be a positive integer"):
            api.check_campaign_id(bad)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (408, BsgServerError),
        (429, BsgRateLimitError),
        (500, BsgServerError),
        (502, BsgServerError),
        (503, BsgServerError),
        (504, BsgServerError),
    ],
)
def test_transient_statuses_are_retryable(status, error_type):
    with pytest.raises(error_type) as info:
        api.read_answer(LIST, status, b'{"message": "slow down"}', content_type=JSON)
    assert isinstance(info.value, BsgRetryableError)
    assert info.value.status == status
    assert info.value.reason == str(status)
    assert "slow down" in str(info.value)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        (400, BsgApiError),
        (401, BsgAuthError),
        (403, BsgAuthError),
        (404, BsgNotFoundError),
        (409, BsgApiError),
        (422, BsgValidationError),
        (501, BsgApiError),
    ],
)
def test_other_errors_are_not_retryable(status, error_type):
    with pytest.raises(error_type) as info:
        api.read_answer(LIST, status, b'{"message": "nope", "errors": []}', content_type=JSON)
    assert not isinstance(info.value, BsgRetryableError)
    assert info.value.status == status
    assert info.value.api_message == "nope"


def test_validation_error_carries_the_field_errors():
    body = json.dumps(
        {"message": "The given data was invalid.", "errors": {"filter[to]": ["may be at most 30 days ahead"]}}
    ).encode()
    with pytest.raises(BsgValidationError) as info:
        api.read_answer(LIST, 422, body, content_type=JSON)
    assert info.value.errors == {"filter[to]": ["may be at most 30 days ahead"]}
    assert "filter[to]: may be at most 30 days ahead" in str(info.value)


def test_login_refusal_says_to_check_the_key():
    with pytest.raises(BsgAuthError, match="check the API key in the connection's password field"):
        api.read_answer(api.login_request("k"), 401, b'{"message": "Invalid API key"}', content_type=JSON)


def test_retry_after_in_both_forms():
    now = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert api.parse_retry_after("7") == 7.0
    assert api.parse_retry_after("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30.0
    assert api.parse_retry_after("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0.0
    assert api.parse_retry_after("soon") is None
    assert api.parse_retry_after(None) is None
    with pytest.raises(BsgRateLimitError) as info:
        api.read_answer(LIST, 429, b"{}", content_type=JSON, retry_after="3")
    assert info.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("body", "content_type", "reason"),
    [
        (b'{"data": [', JSON, "malformed_json"),
        (b"<html><body>Bad gateway</body></html>", "text/html; charset=utf-8", "not_json"),
        (b"", JSON, "malformed_json"),
    ],
)
def test_unreadable_success_bodies_are_retryable(body, content_type, reason):
    with pytest.raises(BsgMalformedResponseError) as info:
        api.read_answer(LIST, 200, body, content_type=content_type)
    assert info.value.reason == reason


def test_page_parsing_reads_meta():
    page = api.parse_campaign_page(_page([{"id": 1}, {"id": 2}], total=10, offset=0, limit=30))
    assert (page.total, page.offset, page.limit, [r["id"] for r in page.records]) == (10, 0, 30, [1, 2])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ([], "a list instead of an object"),
        (
            {"data": {"id": 1}, "meta": {"page": {"total": 1, "offset": 0, "limit": 30}}},
            "'data' that is dict",
        ),
        ({"data": []}, "no 'meta.page' object"),
        (_page([], total=-1), "meta.page.total = -1"),
        ({"data": [], "meta": {"page": {"offset": 0, "limit": 30}}}, "meta.page.total = None"),
        (_page([{"name": "x"}]), "a campaign whose id is None"),
        (_page([{"id": "12"}]), "a campaign whose id is '12'"),
        (_page([{"id": True}]), "a campaign whose id is True"),
        (_page(["12"]), "a campaign that is not an object"),
    ],
)
def test_untrustworthy_pages_are_refused_with_what_was_wrong(payload, message):
    with pytest.raises(BsgMalformedResponseError, match=message):
        api.parse_campaign_page(payload)


def test_campaign_and_token_parsing():
    assert api.parse_campaign({"data": {"id": 5, "status": "done"}}) == {"id": 5, "status": "done"}
    with pytest.raises(BsgMalformedResponseError, match="not an object"):
        api.parse_campaign({"data": None})
    assert api.parse_token({"bearer": "a.b.c"}) == "a.b.c"
    with pytest.raises(BsgMalformedResponseError, match="no token"):
        api.parse_token({"token": "a.b.c"})


def test_an_api_message_ending_in_a_full_stop_is_not_doubled():
    with pytest.raises(BsgApiError) as info:
        api.read_answer(LIST, 409, b'{"message": "Conflict."}', content_type=JSON)
    assert str(info.value).endswith("(list): Conflict.")


def test_a_redirect_is_reported_with_where_to_point_the_connection():
    with pytest.raises(BsgApiError) as info:
        api.read_answer(LIST, 301, b"", content_type="text/html", location="https://api.example/")
    assert info.value.status == 301
    assert (
        "redirected GET /api/campaigns (list) (HTTP 301) to https://api.example/; set the connection's host"
        in str(info.value)
    )
    assert not isinstance(info.value, BsgRetryableError)


def test_a_page_without_meta_page_offset_is_accepted_and_other_gaps_are_not():
    page = api.parse_campaign_page({"data": [{"id": 1}], "meta": {"page": {"total": 1, "limit": 30}}})
    assert (page.total, page.offset, page.limit) == (1, None, 30)
    with pytest.raises(BsgMalformedResponseError, match=r"meta.page.limit = None"):
        api.parse_campaign_page({"data": [], "meta": {"page": {"total": 0, "offset": 0}}})
    with pytest.raises(BsgMalformedResponseError, match=r"meta.page.offset = -1"):
        api.parse_campaign_page({"data": [], "meta": {"page": {"total": 0, "offset": -1, "limit": 30}}})


@pytest.mark.parametrize(
    ("errors", "span"),
    [
        ({}, True),
        ({"filter[from]": ["too long"]}, True),
        ({"filter[to]": ["x"]}, True),
        ({"page[limit]": ["x"]}, False),
    ],
)
def test_which_422s_may_be_a_span_refusal(errors, span):
    error = BsgValidationError("refused", status=422, errors=errors, endpoint="list")
    assert api.is_span_refusal(error) is span
