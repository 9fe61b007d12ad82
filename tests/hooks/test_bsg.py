"""BsgHook against the simulator over real HTTP: exact record sets, every fault, auth lifecycle."""

from __future__ import annotations

import itertools
import logging
import math
import time
from datetime import datetime, timedelta, timezone

import pytest

from bsg_provider.errors import (
    BsgApiError,
    BsgAuthError,
    BsgConfigError,
    BsgNotFoundError,
    BsgRetryableError,
    BsgServerError,
    BsgTransportError,
    BsgValidationError,
)
from bsg_provider.hooks.bsg import BsgHook
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env

UTC = timezone.utc
PAGE = 100


def _ids(hook, start, end, **kwargs):
    ids = [c["id"] for c in hook.iter_campaigns(start, end, **kwargs)]
    assert len(ids) == len(set(ids)), "a campaign came twice"
    return set(ids)


def _seven_months(sim):
    end = sim.now().replace(microsecond=0)
    return end - timedelta(days=213), end


def _expected_list_requests(sim, hook, start, end, page_size):
    """
    One request per page per window: ceil(records / page size), one for an empty window; in a
    window reaching the present, pages after the first overlap the previous one by a row. A
    window's request asks for a second more on each side (both bounds inclusive here).
    """
    now = datetime.now(UTC)
    total = 0
    second = timedelta(seconds=1)
    for w in hook.plan(start, end).windows:
        n = len(sim.ground_truth_ids(w.start - second, w.end + second))
        if w.is_live(now) and n > page_size:
            total += 1 + math.ceil((n - page_size) / (page_size - 1))
        else:
            total += max(1, math.ceil(n / page_size))
    return total


def test_one_day_is_exactly_the_ground_truth(simulator, bsg_conn_id):
    hook = BsgHook(bsg_conn_id)
    day = simulator.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=10)
    got = _ids(hook, day, day + timedelta(days=1))
    assert got == simulator.ground_truth_ids(day, day + timedelta(days=1))
    assert got, "the fixture's data should put campaigns on every recent day"


def test_seven_months_span_three_windows_exactly(simulator, bsg_conn_id):
    hook = BsgHook(bsg_conn_id)
    start, end = _seven_months(simulator)
    assert len(hook.plan(start, end).windows) == 3
    assert _ids(hook, start, end, page_size=PAGE) == simulator.ground_truth_ids(start, end)


def test_consecutive_intervals_neither_overlap_nor_leave_gaps(simulator, bsg_conn_id):
    hook = BsgHook(bsg_conn_id)
    base = simulator.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=30)
    # Campaigns exactly on the cut points, where off-by-one-second bugs live.
    cuts = [base + timedelta(days=d) for d in range(6)] + [base + timedelta(days=6, microseconds=500_000)]
    for cut in cuts[1:-1]:
        simulator.add_campaign(cut)
        simulator.add_campaign(cut - timedelta(seconds=1))
    seen: set[int] = set()
    for lo, hi in itertools.pairwise(cuts):
        got = _ids(hook, lo, hi)
        assert got == simulator.ground_truth_ids(lo, hi)
        assert not got & seen, "an id fell into two consecutive intervals"
        seen |= got
    assert seen == simulator.ground_truth_ids(cuts[0], cuts[-1])


def test_other_campaign_types_are_filtered(simulator, bsg_conn_id):
    hook = BsgHook(bsg_conn_id)
    start, end = _seven_months(simulator)
    got = {c["id"]: c["message_type"] for c in hook.iter_campaigns(start, end, campaign_type="whatsapp")}
    assert set(got) == simulator.ground_truth_ids(start, end, campaign_type="whatsapp")
    assert set(got.values()) <= {"whatsapp"}


def test_non_utc_account_timezone_gives_the_same_instants(monkeypatch):
    from bsg_provider.simulator import BsgSimulator

    with BsgSimulator(campaigns=1500, seed=3, timezone="America/New_York", api_key="test_tz_key_1") as sim:
        name, value = bsg_connection_env(
            "bsg_ny", host=sim.url, api_key=sim.api_key, api_timezone="America/New_York", **FAST_RETRY_EXTRAS
        )
        monkeypatch.setenv(name, value)
        hook = BsgHook("bsg_ny")
        day = sim.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
        for lo in (day, day + timedelta(days=1)):
            assert _ids(hook, lo, lo + timedelta(days=1)) == sim.ground_truth_ids(lo, lo + timedelta(days=1))


def test_fault_free_run_logs_in_once_and_sends_one_request_per_page(simulator, bsg_conn_id):
    hook = BsgHook(bsg_conn_id)
    start, end = _seven_months(simulator)
    _ids(hook, start, end, page_size=PAGE)
    assert simulator.count("login") == 1
    assert simulator.count("list") == _expected_list_requests(simulator, hook, start, end, PAGE)
    assert hook.counters.requests == simulator.count("any")
    assert hook.counters.retries == 0


def _list_requests(simulator, bsg_conn_id, start, end):
    hook = BsgHook(bsg_conn_id)
    _ids(hook, start, end, page_size=PAGE)
    count = simulator.count("list")
    simulator.clear_requests()
    return count


FAULTS = {
    "429": {"kind": "status", "status": 429},
    "429_retry_after": {"kind": "status", "status": 429, "retry_after": "1"},
    "500": {"kind": "status", "status": 500},
    "502": {"kind": "status", "status": 502},
    "503": {"kind": "status", "status": 503},
    "504": {"kind": "status", "status": 504},
    "reset": {"kind": "reset"},
    "read_timeout": {"kind": "delay", "delay": 3.0},
    "malformed_json": {"kind": "malformed_json"},
    "html_200": {"kind": "html"},
    "token_expiry": {"kind": "expire_token"},
    "insert": {"kind": "insert", "count": 7},
    "delete": {"kind": "delete", "count": 7},
}


@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_at_every_page_position_loses_and_duplicates_nothing(
    simulator, bsg_conn_id, monkeypatch, fault, where
):
    start, end = _seven_months(simulator)
    pages = _list_requests(simulator, bsg_conn_id, start, end)
    assert pages >= 10
    skip = {"first": 0, "middle": pages // 2, "last": pages - 1}[where]
    spec = dict(FAULTS[fault])
    kind = spec.pop("kind")
    if fault == "read_timeout":
        name, value = bsg_connection_env(
            "bsg_slow", host=simulator.url, api_key=simulator.api_key, timeout=0.5, retry_max_wait=0.02
        )
        monkeypatch.setenv(name, value)
        bsg_conn_id = "bsg_slow"
    before = simulator.ground_truth_ids(start, end)
    simulator.inject(kind, endpoint="list", skip=skip, **spec)
    hook = BsgHook(bsg_conn_id)
    got = _ids(hook, start, end, page_size=PAGE)
    # Inserted rows are part of the truth after the run; deleted ones may have been read before they went.
    truth = simulator.ground_truth_ids(start, end)
    if fault == "delete":
        assert len(before - truth) == 7
        assert truth <= got <= before
    else:
        assert got == truth
    if fault == "insert":
        assert len(truth - before) == 7
    assert simulator.count("login") == (2 if fault == "token_expiry" else 1)
    if kind in ("status", "reset", "malformed_json", "html"):
        assert hook.counters.retries == 1
    elif kind == "delay":
        # Under a 0.5 s timeout a busy machine may make an unfaulted answer late too.
        assert 1 <= hook.counters.retries <= 4


def test_retry_after_is_honoured_up_to_the_cap(simulator, monkeypatch):
    name, value = bsg_connection_env(
        "bsg_patient", host=simulator.url, api_key=simulator.api_key, retry_max_wait=0.6
    )
    monkeypatch.setenv(name, value)
    simulator.inject("status", endpoint="list", status=429, retry_after="1")
    hook = BsgHook("bsg_patient")
    end = simulator.now()
    _ids(hook, end - timedelta(days=1), end)
    # Retry-After says 1 s, the cap 0.6 s: the hook waited the cap, not more (what it chose to
    # wait, not how long the busy machine took).
    assert hook.counters.retries == 1
    assert hook.counters.retry_wait_seconds == pytest.approx(0.6)


def test_faults_beyond_the_retry_budget_end_in_a_clear_error(simulator, bsg_conn_id):
    simulator.inject("status", endpoint="list", status=503, times=None)
    hook = BsgHook(bsg_conn_id)
    end = simulator.now()
    with pytest.raises(BsgServerError, match="HTTP 503 to GET /api/campaigns"):
        _ids(hook, end - timedelta(days=1), end)
    assert simulator.count("list") == FAST_RETRY_EXTRAS["max_retries"] + 1


def test_unreachable_api_is_a_transport_error(monkeypatch):
    name, value = bsg_connection_env(
        "bsg_down", host="http://127.0.0.1:9", api_key="test_key_down", max_retries=1, retry_max_wait=0.01
    )
    monkeypatch.setenv(name, value)
    with pytest.raises(BsgTransportError, match=r"Connection to http://127.0.0.1:9 failed during POST"):
        BsgHook("bsg_down").get_campaign(1)


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(400, BsgApiError), (403, BsgAuthError), (409, BsgApiError), (422, BsgValidationError)],
)
def test_client_errors_are_raised_at_once_with_the_api_message(simulator, bsg_conn_id, status, error_type):
    simulator.inject("status", endpoint="list", status=status)
    hook = BsgHook(bsg_conn_id)
    end = simulator.now()
    with pytest.raises(error_type) as info:
        _ids(hook, end - timedelta(days=1), end)
    assert info.value.status == status
    assert info.value.api_message
    assert not isinstance(info.value, BsgRetryableError)
    assert simulator.count("list") == 1


def test_api_validation_error_carries_field_errors(simulator, bsg_conn_id):
    hook = BsgHook(bsg_conn_id)
    from bsg_provider.client.api import ApiRequest

    bad = ApiRequest("list", "GET", "/api/campaigns", params={"page[limit]": "1000"})
    with pytest.raises(BsgValidationError) as info:
        hook.call(bad)
    assert "page[limit]" in info.value.errors
    assert simulator.count("list") == 1


def test_get_campaign_and_unknown_id(simulator, bsg_conn_id):
    hook = BsgHook(bsg_conn_id)
    known = next(iter(simulator.ground_truth_ids(simulator.now() - timedelta(days=30), simulator.now())))
    assert hook.get_campaign(str(known)) == simulator.campaign(known)
    with pytest.raises(BsgNotFoundError, match="HTTP 404"):
        hook.get_campaign(1)
    assert simulator.count("get") == 2
    with pytest.raises(BsgConfigError, match="A campaign id must be a positive integer"):
        hook.get_campaign("abc")
    assert simulator.count("get") == 2


def test_bad_arguments_fail_before_any_request(simulator, bsg_conn_id):
    hook = BsgHook(bsg_conn_id)
    end = simulator.now()
    with pytest.raises(BsgConfigError, match="page_size must be from 30 to 500"):
        list(hook.iter_campaigns(end - timedelta(days=1), end, page_size=1000))
    with pytest.raises(BsgConfigError, match="campaign_type must be one of"):
        list(hook.iter_campaigns(end - timedelta(days=1), end, campaign_type="viber"))
    with pytest.raises(ValueError, match="has no timezone"):
        list(hook.iter_campaigns(datetime(2026, 1, 1), end))
    assert simulator.count("any") == 0


def test_end_past_thirty_days_is_clipped_with_a_warning(simulator, bsg_conn_id, caplog, capfd):
    hook = BsgHook(bsg_conn_id)
    now = simulator.now()
    with caplog.at_level(logging.WARNING):
        got = _ids(hook, now - timedelta(days=5), now + timedelta(days=60))
    assert got == simulator.ground_truth_ids(now - timedelta(days=5), now + timedelta(days=60))
    # Airflow may route hook logs through structlog (stdout) or stdlib logging: read both.
    assert "past the API limit of 30 days ahead; extracting up to" in caplog.text + capfd.readouterr().out
    assert all(r.status == 200 for r in simulator.requests)


def test_expired_token_is_renewed_by_refresh_before_it_is_used(monkeypatch):
    from bsg_provider.simulator import BsgSimulator

    with BsgSimulator(campaigns=300, seed=5, token_ttl=31, api_key="test_ttl_key_1") as sim:
        name, value = bsg_connection_env("bsg_ttl", host=sim.url, api_key=sim.api_key, **FAST_RETRY_EXTRAS)
        monkeypatch.setenv(name, value)
        hook = BsgHook("bsg_ttl")
        end = sim.now()
        _ids(hook, end - timedelta(days=1), end)
        time.sleep(1.1)  # within the renewal margin of a 31 s token
        _ids(hook, end - timedelta(days=1), end)
        assert sim.count("refresh") >= 1
        assert sim.count("login") == 1
        assert all(r.status != 401 for r in sim.requests)


def test_revoked_token_costs_exactly_one_new_login(simulator, bsg_conn_id):
    hook = BsgHook(bsg_conn_id)
    end = simulator.now()
    _ids(hook, end - timedelta(days=1), end)
    simulator.inject("expire_token", endpoint="get")
    known = next(iter(simulator.ground_truth_ids(end - timedelta(days=30), end)))
    assert hook.get_campaign(known)["id"] == known
    assert simulator.count("login") == 2
    assert hook.counters.retries == 0


def test_wrong_api_key_fails_without_retrying(simulator, monkeypatch):
    name, value = bsg_connection_env(
        "bsg_wrong", host=simulator.url, api_key="test_wrong_key_1", **FAST_RETRY_EXTRAS
    )
    monkeypatch.setenv(name, value)
    with pytest.raises(BsgAuthError, match="check the API key in the connection's password field"):
        BsgHook("bsg_wrong").get_campaign(1)
    assert simulator.count("login") == 1


def test_test_connection_reports_success_and_actionable_failures(simulator, bsg_conn_id, monkeypatch):
    ok, message = BsgHook(bsg_conn_id).test_connection()
    assert ok and message.startswith("Logged in and listed campaigns")
    name, value = bsg_connection_env(
        "bsg_wrong", host=simulator.url, api_key="test_wrong_key_1", **FAST_RETRY_EXTRAS
    )
    monkeypatch.setenv(name, value)
    ok, message = BsgHook("bsg_wrong").test_connection()
    assert not ok and "check the API key" in message
    name, value = bsg_connection_env("bsg_nokey", host=simulator.url, api_key="")
    monkeypatch.setenv(name, value)
    ok, message = BsgHook("bsg_nokey").test_connection()
    assert not ok and "has no API key" in message


def test_test_connection_makes_one_attempt_against_a_wrong_key(simulator, monkeypatch):
    # Retries are allowed by the connection, yet the Test button must answer after one attempt.
    name, value = bsg_connection_env(
        "bsg_wrong", host=simulator.url, api_key="test_wrong_key_1", max_retries=5, retry_max_wait=0.01
    )
    monkeypatch.setenv(name, value)
    hook = BsgHook("bsg_wrong")
    ok, message = hook.test_connection()
    assert not ok
    assert message.startswith("Login or request refused: BSG One API refused POST /api/auth/login")
    assert "check the API key in the connection's password field" in message
    assert [(r.endpoint, r.status) for r in simulator.requests] == [("login", 401)]
    assert "_session" not in vars(hook), "the session was left open"


def test_test_connection_makes_one_attempt_against_an_api_that_fails(simulator, bsg_conn_id):
    simulator.inject("status", endpoint="list", status=503, times=None)
    hook = BsgHook(bsg_conn_id)
    ok, message = hook.test_connection()
    assert not ok and "HTTP 503 to GET /api/campaigns" in message
    assert [(r.endpoint, r.status) for r in simulator.requests] == [("login", 200), ("list", 503)]
    assert hook.counters.retries == 0


def test_test_connection_makes_one_attempt_against_an_unreachable_port(monkeypatch):
    name, value = bsg_connection_env(
        "bsg_down", host="http://127.0.0.1:9", api_key="test_key_down", max_retries=5, retry_max_wait=0.01
    )
    monkeypatch.setenv(name, value)
    hook = BsgHook("bsg_down")
    ok, message = hook.test_connection()
    assert not ok
    assert message.startswith("Connection to http://127.0.0.1:9 failed during POST /api/auth/login")
    assert "Check the connection's host and the network." in message
    assert (hook.counters.requests, hook.counters.retries) == (1, 0)


def test_test_connection_waits_at_most_ten_seconds_per_request(simulator, monkeypatch):
    from bsg_provider.hooks import bsg as hook_module

    assert hook_module.TEST_CONNECTION_MAX_TIMEOUT == 10.0  # what docs/connection.md promises
    # The ceiling shrunk for the test (the real clock would wait ten seconds): a connection that
    # would wait two minutes gives up after the ceiling, and says so.
    monkeypatch.setattr(hook_module, "TEST_CONNECTION_MAX_TIMEOUT", 0.3)
    name, value = bsg_connection_env(
        "bsg_patient", host=simulator.url, api_key=simulator.api_key, timeout=120, retry_max_wait=0.01
    )
    monkeypatch.setenv(name, value)
    simulator.inject("delay", endpoint="login", delay=1.0)
    ok, message = BsgHook("bsg_patient").test_connection()
    assert not ok
    assert "No answer to POST /api/auth/login" in message and "within 0.3 s" in message
    assert simulator.count("login") == 1


def test_test_connection_warns_about_plain_http_in_its_answer(simulator, bsg_conn_id):
    ok, message = BsgHook(bsg_conn_id).test_connection()
    assert ok
    assert "plain http, so the API key and token travel unencrypted" in message
    assert [r.endpoint for r in simulator.requests] == ["login", "list"]


def test_client_side_rate_limit_spaces_requests(simulator, monkeypatch):
    name, value = bsg_connection_env(
        "bsg_slowly", host=simulator.url, api_key=simulator.api_key, max_requests_per_second=20
    )
    monkeypatch.setenv(name, value)
    hook = BsgHook("bsg_slowly")
    end = simulator.now()
    for _ in range(4):
        hook.get_campaign(next(iter(simulator.ground_truth_ids(end - timedelta(days=30), end))))
    assert hook.counters.requests == 5
    assert hook.counters.throttle_wait_seconds > 0.1


def _without_proxy_settings(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_the_environment_proxy_carries_every_request(simulator, monkeypatch):
    # The API's host is never resolved: every request goes to the proxy, here the simulator itself,
    # which reads the absolute URL a proxy is sent. The session reads the environment once.
    _without_proxy_settings(monkeypatch)
    monkeypatch.setenv("HTTP_PROXY", simulator.url)
    name, value = bsg_connection_env(
        "bsg_proxied", host="http://bsg-api.invalid", api_key=simulator.api_key, **FAST_RETRY_EXTRAS
    )
    monkeypatch.setenv(name, value)
    hook = BsgHook("bsg_proxied")
    end = simulator.now()
    some_id = min(simulator.ground_truth_ids(end - timedelta(days=30), end))
    assert hook.get_campaign(some_id)["id"] == some_id
    assert hook.get_conn().proxies == {"http": simulator.url}
    assert not hook.get_conn().trust_env
    assert hook.counters.requests == 2  # the login and the campaign, both through the proxy


def test_no_proxy_for_the_api_host_sends_directly(simulator, monkeypatch):
    _without_proxy_settings(monkeypatch)
    # A proxy that would refuse every request: nothing listens on port 9 of 127.0.0.1.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    name, value = bsg_connection_env("bsg_direct", host=simulator.url, api_key=simulator.api_key)
    monkeypatch.setenv(name, value)
    hook = BsgHook("bsg_direct")
    end = simulator.now()
    some_id = min(simulator.ground_truth_ids(end - timedelta(days=30), end))
    assert hook.get_campaign(some_id)["id"] == some_id
    assert hook.get_conn().proxies == {}


def test_secrets_never_reach_logs_or_errors(monkeypatch, caplog, capfd):
    from bsg_provider.simulator import BsgSimulator

    canary = "live_CANARY_5c1e7a9d3b"
    with BsgSimulator(campaigns=500, seed=11, api_key=canary) as sim:
        name, value = bsg_connection_env("bsg_canary", host=sim.url, api_key=canary, **FAST_RETRY_EXTRAS)
        monkeypatch.setenv(name, value)
        hook = BsgHook("bsg_canary")
        texts = []
        end = sim.now()
        with caplog.at_level(logging.DEBUG):
            _ids(hook, end - timedelta(days=40), end, page_size=30)
            tokens = {hook._token}
            for kind, spec in [
                ("status", {"status": 503}),
                ("expire_token", {}),
                ("status", {"status": 422}),
            ]:
                sim.inject(kind, endpoint="get", **spec)
                try:
                    hook.get_campaign(1)
                except Exception as exc:
                    texts.append(f"{exc!s} {exc!r}")
                tokens.add(hook._token)
            sim.inject("status", endpoint="login", status=401)
            hook._token = None
            try:
                hook.get_campaign(1)
            except Exception as exc:
                texts.append(f"{exc!s} {exc!r}")
        out, err = capfd.readouterr()
        haystack = "\n".join([caplog.text, out, err, *texts, repr(hook.settings)])
        tokens.discard(None)
        assert len(tokens) >= 2
        assert canary not in haystack
        for token in tokens:
            assert token not in haystack
        assert all(canary not in repr(r) for r in sim.requests)


def _log_lines(caplog, capfd) -> list[str]:
    """Hook log lines, via stdlib logging (Airflow 3.0) or structlog on stdout (3.3)."""
    records = [r.getMessage() for r in caplog.records if r.name.endswith("BsgHook")]
    return records or capfd.readouterr().out.splitlines()


def test_progress_shows_the_plan_each_window_and_the_totals(simulator, bsg_conn_id, caplog, capfd):
    hook = BsgHook(bsg_conn_id)
    start, end = _seven_months(simulator)
    with caplog.at_level(logging.INFO):
        records = sum(1 for _ in hook.iter_campaigns(start, end, page_size=PAGE))
    lines = _log_lines(caplog, capfd)
    plan = [line for line in lines if "Extracting sms campaigns created in" in line]
    assert len(plan) == 1 and "in 3 window(s) of API timezone UTC: 1: [" in plan[0]
    assert start.isoformat() in plan[0]
    done = [line for line in lines if "done:" in line and "Window " in line]
    assert [d[d.index("Window") : d.index("Window") + 10] for d in done] == [
        "Window 1/3",
        "Window 2/3",
        "Window 3/3",
    ]
    closing = [line for line in lines if "Extracted " in line]
    assert len(closing) == 1
    assert (
        f"Extracted {records} sms campaigns from 3 window(s) with {simulator.count('any')} requests"
        in closing[0]
    )


def test_a_large_extraction_keeps_the_log_short(monkeypatch, caplog, capfd):
    from bsg_provider.simulator import BsgSimulator

    with BsgSimulator(campaigns=100_000, seed=2, api_key="test_big_key_1") as sim:
        name, value = bsg_connection_env("bsg_big", host=sim.url, api_key=sim.api_key, **FAST_RETRY_EXTRAS)
        monkeypatch.setenv(name, value)
        hook = BsgHook("bsg_big")
        end = sim.now()
        start = end - timedelta(days=401)
        with caplog.at_level(logging.INFO):
            records = sum(1 for _ in hook.iter_campaigns(start, end))
        assert records == len(sim.ground_truth_ids(start, end)) >= 80_000  # sms only
        lines = [line for line in _log_lines(caplog, capfd) if "Window " in line or "Extract" in line]
        assert 5 <= len(lines) < 100


def test_a_delete_and_an_insert_between_pages_of_a_live_window_skip_nothing(simulator, bsg_conn_id):
    """The total stays the same, so only the overlapping pages of a live window notice the shift."""
    hook = BsgHook(bsg_conn_id)
    end = simulator.now()
    (window,) = hook.plan(end - timedelta(days=20), end).windows
    assert window.is_live(datetime.now(UTC))
    before = simulator.ground_truth_ids(window.start, window.end)
    assert len(before) > 3 * 30
    pages = hook.iter_window_pages(window, page_size=30)
    got = [c["id"] for c in next(pages)]
    simulator.delete_campaign(min(before))
    added = simulator.add_campaign(end - timedelta(days=1))["id"]
    for page in pages:
        got.extend(c["id"] for c in page)
    assert len(got) == len(set(got))
    assert set(got) == before | {added}
