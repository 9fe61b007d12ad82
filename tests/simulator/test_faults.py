"""Fault injection: every kind, skip/times/endpoint matching, ordering, and the drift cases."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta

import pytest
import requests

from bsg_provider.simulator import BsgSimulator, Fault, parse_fault_spec

from .helpers import NOW, SECOND, Client, window

START = NOW - timedelta(days=80)
PARAMS = window(START, NOW)


def _statuses(client: Client, n: int) -> list[int | None]:
    out: list[int | None] = []
    for _ in range(n):
        try:
            out.append(client.list().status_code)
        except requests.ConnectionError:
            out.append(None)
    return out


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504, 401, 403, 422])
def test_status_fault(fresh_sim: BsgSimulator, fresh_client: Client, status: int) -> None:
    fresh_sim.inject("status", status=status)
    response = fresh_client.list()
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert isinstance(response.json()["message"], str)
    assert "Retry-After" not in response.headers
    assert fresh_client.list().status_code == 200


@pytest.mark.parametrize("retry_after", ["2", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_retry_after_is_sent_verbatim(
    fresh_sim: BsgSimulator, fresh_client: Client, retry_after: str
) -> None:
    fresh_sim.inject("status", status=429, retry_after=retry_after)
    response = fresh_client.list()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == retry_after


def test_skip_and_times(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    fault = fresh_sim.inject("status", status=500, skip=1, times=2)
    assert _statuses(fresh_client, 4) == [200, 500, 500, 200]
    assert fault.hits == 2 and fault.used_up


def test_faults_apply_in_order(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    fresh_sim.inject("status", status=503, times=2)
    fresh_sim.inject("reset")
    fresh_sim.inject("status", status=502)
    assert _statuses(fresh_client, 5) == [503, 503, None, 502, 200]


def test_endpoint_matching(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    campaign_id = min(fresh_sim.ground_truth_ids(START, NOW))
    fresh_sim.inject("status", endpoint="get", status=504)
    assert fresh_client.list().status_code == 200
    assert fresh_client.get(campaign_id).status_code == 504
    fresh_sim.inject("status", endpoint="any", status=503, times=2)
    login = requests.post(f"{fresh_sim.url}/api/auth/login", json={"api_key": fresh_sim.api_key}, timeout=5)
    assert login.status_code == 503
    assert fresh_client.refresh().status_code == 503
    assert fresh_client.refresh().status_code == 200


def test_unlimited_times(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    fresh_sim.inject("status", status=503, times=None)
    assert _statuses(fresh_client, 3) == [503, 503, 503]
    assert fresh_sim.clear_faults() == 1
    assert fresh_client.list().status_code == 200


def test_reset_closes_without_answer(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    fresh_sim.inject("reset")
    with pytest.raises(requests.ConnectionError):
        fresh_client.list()
    assert fresh_client.list().status_code == 200
    records = [r for r in fresh_sim.requests if r.endpoint == "list"]
    assert [(r.status, r.fault) for r in records] == [(None, "reset"), (200, None)]


def test_delay_exceeds_a_read_timeout(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    fresh_sim.inject("delay", delay=0.6)
    with pytest.raises(requests.ReadTimeout):
        fresh_client.list(timeout=0.2)
    fresh_sim.inject("delay", delay=0.1)
    response = fresh_client.list()
    assert response.status_code == 200 and response.json()["data"]


def test_malformed_json(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    fresh_sim.inject("malformed_json")
    response = fresh_client.list()
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(ValueError):
        response.json()


def test_html(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    fresh_sim.inject("html", endpoint="get")
    response = fresh_client.get(123)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")


def test_expire_token_revokes_all_issued_tokens(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    spare = fresh_client.refresh().json()["bearer"]
    fresh_sim.inject("expire_token")
    assert fresh_client.list().status_code == 401
    assert fresh_client.list(headers=fresh_client.headers(spare)).status_code == 401
    assert fresh_client.refresh().status_code == 401
    fresh_client.login()
    assert fresh_client.list().status_code == 200


def test_insert_adds_rows_inside_the_window_mid_paging(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    before = fresh_sim.ground_truth_ids(START, NOW + SECOND)
    first = fresh_client.list({**PARAMS, "page[limit]": 30}).json()
    fresh_sim.inject("insert", count=5)
    second = fresh_client.list({**PARAMS, "page[limit]": 30, "page[offset]": 30}).json()
    after = fresh_sim.ground_truth_ids(START, NOW + SECOND)
    new = after - before
    assert len(new) == 5 and min(new) > max(before)
    assert second["meta"]["page"]["total"] == first["meta"]["page"]["total"] + 5
    for campaign_id in new:
        created = datetime.fromisoformat(fresh_sim.campaign(campaign_id)["created_at"] + "+00:00")
        assert START <= created <= NOW


def test_insert_respects_type_and_tight_windows(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    at = NOW - timedelta(days=3)
    fresh_sim.inject("insert", count=3)
    rows = fresh_client.list({**window(at, at), "filter[type]": "rcs"}).json()["data"]
    assert len(rows) == 3
    assert {(row["message_type"], row["created_at"]) for row in rows} == {
        ("rcs", window(at, at)["filter[to]"])
    }


def test_delete_removes_the_lowest_ids_of_the_window(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    ids = sorted(fresh_sim.ground_truth_ids(START, NOW + SECOND))
    fresh_sim.clear_requests()
    fresh_client.list({**PARAMS, "page[limit]": 30})
    fresh_sim.inject("delete", count=2)
    second = fresh_client.list({**PARAMS, "page[limit]": 30, "page[offset]": 30}).json()
    assert second["meta"]["page"]["total"] == len(ids) - 2
    assert fresh_sim.ground_truth_ids(START, NOW + SECOND) == set(ids[2:])
    assert [row["id"] for row in second["data"]] == ids[32:62]  # shifted: offset drift


def test_every_request_is_recorded(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    fresh_sim.clear_requests()
    fresh_sim.inject("status", status=503)
    fresh_client.list({"page[limit]": 30})
    fresh_client.get("nope")
    requests.get(f"{fresh_sim.url}/somewhere/else", timeout=5)
    records = fresh_sim.requests
    assert [(r.method, r.path, r.endpoint, r.status, r.fault) for r in records] == [
        ("GET", "/api/campaigns", "list", 503, "status"),
        ("GET", "/api/campaigns/nope", "get", 404, None),
        ("GET", "/somewhere/else", "other", 404, None),
    ]
    assert records[0].query == {"page[limit]": "30"}
    assert fresh_sim.count("list") == 1 and fresh_sim.count("other") == 1 and fresh_sim.count("any") == 3


def test_inject_validates(fresh_sim: BsgSimulator) -> None:
    with pytest.raises(ValueError):
        fresh_sim.inject("explode")
    with pytest.raises(ValueError):
        fresh_sim.inject("status", endpoint="campaigns")
    with pytest.raises(ValueError):
        fresh_sim.inject("delay")
    with pytest.raises(ValueError):
        fresh_sim.inject("status", times=0)
    assert fresh_sim.inject("status").status == 503


def test_stop_interrupts_a_delay() -> None:
    sim = BsgSimulator(campaigns=10, now=NOW).start()
    api = Client(sim.url, sim.api_key)
    api.login()
    delay = sim.inject("delay", delay=30)
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(api.list(timeout=10).status_code)
        except requests.RequestException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    # Wait on what the simulator saw, not on the clock: the request is inside its 30 s delay.
    while delay.hits == 0:
        time.sleep(0.01)
    sim.stop()
    caller.join()
    # Answered (with a broken connection) long before the 30 s delay could have ended.
    assert outcome and isinstance(outcome[0], requests.ConnectionError)
    assert not [t for t in threading.enumerate() if t.name.startswith("bsg-simulator")]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("list:status=503:skip=2:times=3", Fault("status", "list", skip=2, times=3, status=503)),
        ("list:reset", Fault("reset", "list")),
        ("any:status=429:retry_after=2", Fault("status", "any", status=429, retry_after="2")),
        (
            "any:status=429:retry_after=Wed, 21 Oct 2015 07:28:00 GMT",
            Fault("status", "any", status=429, retry_after="Wed, 21 Oct 2015 07:28:00 GMT"),
        ),
        ("get:delay=2.5", Fault("delay", "get", delay=2.5)),
        ("list:insert:count=3:skip=1", Fault("insert", "list", skip=1, count=3)),
        ("list:kind=delete:count=2", Fault("delete", "list", count=2)),
        ("refresh:expire_token", Fault("expire_token", "refresh")),
        ("list:status=503:times=inf", Fault("status", "list", status=503, times=None)),
        ("login:html", Fault("html", "login")),
        ("stop:malformed_json:times=2", Fault("malformed_json", "stop", times=2)),
    ],
)
def test_parse_fault_spec(spec: str, expected: Fault) -> None:
    assert parse_fault_spec(spec) == expected


@pytest.mark.parametrize(
    "spec",
    ["list", "list:", "nowhere:reset", "list:explode", "list:skip=1", "list:reset:html", "list:reset:x=1"],
)
def test_parse_fault_spec_rejects(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fault_spec(spec)


def test_under_concurrent_requests_skip_counts_arrivals() -> None:
    """The n-th request a fault skips to is the n-th in the log's arrival order, even arriving at once."""
    with BsgSimulator(
        campaigns=300, seed=5, api_key="test_fresh_key", now=NOW, latency_ms=3, latency_jitter_ms=3
    ) as sim:
        client = Client(sim.url, sim.api_key)
        token = client.login()
        sim.clear_requests()
        sim.inject("status", status=503, skip=5, times=1)
        start = threading.Barrier(12)
        statuses: list[int] = []
        lock = threading.Lock()

        def one() -> None:
            start.wait()
            response = requests.get(
                f"{sim.url}/api/campaigns", params=PARAMS, headers=client.headers(token), timeout=10
            )
            with lock:
                statuses.append(response.status_code)

        threads = [threading.Thread(target=one) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(statuses) == [200] * 11 + [503]
        by_arrival = sorted(sim.requests, key=lambda r: r.started)
        assert [r.fault for r in by_arrival] == [None] * 5 + ["status"] + [None] * 6
        assert 1 <= sim.max_in_flight <= 12


def test_the_log_keeps_the_most_requests_in_flight_at_once() -> None:
    from bsg_provider.simulator.requestlog import RequestLog

    log = RequestLog("k")
    first = log.open("GET", "/api/campaigns", {}, "list")
    second = log.open("GET", "/api/campaigns", {}, "list")
    log.finish(first)
    third = log.open("GET", "/api/campaigns", {}, "list")
    assert log.max_in_flight() == 2
    log.finish(second)
    log.finish(second)  # a record finished twice (reset after answer) counts once
    log.clear()
    assert log.max_in_flight() == 1, "what is still in flight when cleared"
    log.finish(third)
    assert log.max_in_flight() == 1
