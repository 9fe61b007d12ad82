"""
BsgHook's concurrent paging over real HTTP: the very pages of a sequential read, within its bounds.

The simulator's latency jitter makes answers arrive out of order; the hook must hand them on in
the sequential order, send no request a sequential read would not, keep at most
``max_concurrency`` in flight, log in once and renew once, and hold every thread on a back-off.
"""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import partial

import pytest

from bsg_provider.client.api import CampaignPage, get_campaign_request
from bsg_provider.client.resources import campaigns_query
from bsg_provider.errors import BsgConfigError
from bsg_provider.extraction.paging import WindowPager
from bsg_provider.extraction.prefetch import FetchCancelled
from bsg_provider.extraction.windows import plan_windows
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env

UTC = timezone.utc
PAGE = 30


@pytest.fixture
def jittery(monkeypatch: pytest.MonkeyPatch):
    """A simulator whose answers take 1-7 ms, in an order the jitter decides."""
    with BsgSimulator(
        campaigns=2000, seed=11, api_key="test_concurrency_key", latency_ms=4, latency_jitter_ms=3
    ) as sim:
        # A patient timeout: the tests count requests, and a busy machine must not add a retry.
        extras = {**FAST_RETRY_EXTRAS, "timeout": 30}
        name, value = bsg_connection_env("bsg_conc", host=sim.url, api_key=sim.api_key, **extras)
        monkeypatch.setenv(name, value)
        yield sim


def _interval(sim: BsgSimulator) -> tuple[datetime, datetime]:
    # Up to now, so the last window is a live one whose pages overlap by a row.
    end = sim.now().replace(microsecond=0)
    return end - timedelta(days=213), end


def _read(hook: BsgHook, start: datetime, end: datetime, page_size: int = PAGE) -> list[str]:
    """Every page the hook yields, as the bytes a file would get."""
    return [json.dumps(page) for page in hook.iter_pages(hook.plan(start, end), page_size=page_size)]


def _list_requests(sim: BsgSimulator) -> list[tuple[str, int]]:
    return [
        (r.query["filter[from]"], int(r.query["page[offset]"])) for r in sim.requests if r.endpoint == "list"
    ]


def test_every_concurrency_yields_the_same_pages_from_the_same_requests(jittery):
    start, end = _interval(jittery)
    pages: dict[int, list[str]] = {}
    requests: dict[int, list[tuple[str, int]]] = {}
    for concurrency in (1, 4, 8):
        jittery.clear_requests()
        hook = BsgHook("bsg_conc", max_concurrency=concurrency)
        pages[concurrency] = _read(hook, start, end)
        requests[concurrency] = _list_requests(jittery)
        assert jittery.max_in_flight <= concurrency
        assert jittery.count("login") == 1
        assert hook.counters.retries == 0
        assert hook.counters.requests == jittery.count("any")
    assert len(requests[1]) >= 25 and sum(len(json.loads(p)) for p in pages[1]) > 500
    assert pages[4] == pages[1] and pages[8] == pages[1], "byte for byte, page for page"
    # One at a time: window after window, offset after offset (plain filter bounds sort as time).
    assert requests[1] == sorted(requests[1])
    # Concurrently: exactly the same requests, none wasted on a guess, however they arrived.
    assert sorted(requests[4]) == requests[1]
    assert sorted(requests[8]) == requests[1]
    assert jittery.count("any") == len(requests[8]) + 1


def test_concurrency_one_sends_what_a_sequential_read_sends_in_its_order(jittery):
    start, end = _interval(jittery)
    hook = BsgHook("bsg_conc", max_concurrency=1)
    ids = [c["id"] for c in hook.iter_campaigns(start, end, page_size=PAGE)]
    assert set(ids) == jittery.ground_truth_ids(start, end)
    assert jittery.max_in_flight == 1
    assert [r.endpoint for r in jittery.requests[:2]] == ["login", "list"]
    assert _list_requests(jittery) == sorted(_list_requests(jittery))


def test_drift_mid_window_is_still_exact_under_concurrency(jittery):
    start, end = _interval(jittery)
    before = jittery.ground_truth_ids(start, end)
    # A delete of 5 rows on the 3rd list request, an insert of 5 on the 12th (counted after the first).
    jittery.inject("delete", endpoint="list", skip=2, count=5)
    jittery.inject("insert", endpoint="list", skip=9, count=5)
    hook = BsgHook("bsg_conc", max_concurrency=8)
    ids = [c["id"] for c in hook.iter_campaigns(start, end, page_size=PAGE)]
    truth = jittery.ground_truth_ids(start, end)
    assert len(ids) == len(set(ids)), "nothing twice"
    assert truth <= set(ids) <= truth | before, "nothing lost; deleted rows only if read before they went"
    assert len(before - truth) == 5 and len(truth - before) == 5


def test_a_token_about_to_expire_is_renewed_once_for_every_thread(jittery):
    start, end = _interval(jittery)
    hook = BsgHook("bsg_conc", max_concurrency=8)
    pages = hook.iter_pages(hook.plan(start, end), page_size=PAGE)
    ids = [c["id"] for c in next(pages)]
    assert (jittery.count("login"), jittery.count("list")) == (1, 1), "nothing fetched ahead yet"
    # As after a long run: the token is now within its renewal margin, and eight fetches start at once.
    hook._token_expiry = datetime.now(UTC) - timedelta(hours=1)
    for page in pages:
        ids.extend(c["id"] for c in page)
    assert set(ids) == jittery.ground_truth_ids(start, end)
    assert (jittery.count("login"), jittery.count("refresh")) == (1, 1), "one renewal for all"
    assert all(r.status != 401 for r in jittery.requests)


def test_a_fetch_dropped_during_its_login_keeps_the_token_for_the_others(monkeypatch):
    # The login is the slow part of a renewal, so that is when a dropped fetch usually learns it
    # is no longer wanted; the token the API just issued must not be thrown away with it.
    with BsgSimulator(campaigns=50, seed=3, api_key="test_dropped_login_key", latency_ms=200) as sim:
        name, value = bsg_connection_env("bsg_slow_login", host=sim.url, api_key=sim.api_key, timeout=30)
        monkeypatch.setenv(name, value)
        hook = BsgHook("bsg_slow_login", max_concurrency=4)
        campaign_id = min(sim.ground_truth_ids(sim.now() - timedelta(days=400), sim.now()))
        cancelled = threading.Event()

        def drop_once_logging_in() -> None:
            while not sim.count("login"):
                time.sleep(0.001)  # polls what the simulator saw
            cancelled.set()

        dropper = threading.Thread(target=drop_once_logging_in)
        dropper.start()
        try:
            with pytest.raises(FetchCancelled):
                hook._call(get_campaign_request(campaign_id), cancelled=cancelled)
        finally:
            dropper.join()
        assert hook._token is not None, "the issued token was kept"
        assert hook.get_campaign(campaign_id)["id"] == campaign_id
        assert sim.count("login") == 1, "no second login"
        hook.close()


def test_a_fetch_sends_nothing_while_another_request_backs_off(simulator, bsg_conn_id):
    """A 429's Retry-After holds every thread of the hook; a cancelled fetch wakes at once."""
    hook = BsgHook(bsg_conn_id, max_concurrency=4)
    end = simulator.now()
    (window,) = hook.plan(end - timedelta(days=1), end).windows
    fetch = hook._page_fetcher(campaigns_query("sms"), PAGE)
    hook.pacer.hold(600.0)  # as another thread's retry would
    cancelled = threading.Event()
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            fetch((window, 0, 0), cancelled)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive(), "still held"
    cancelled.set()
    thread.join(10)
    assert not thread.is_alive()
    assert [type(exc) for exc in outcome] == [FetchCancelled]
    assert simulator.count("any") == 0, "nothing was sent while the back-off held"


def test_a_429_with_retry_after_goes_through_the_shared_back_off(simulator, monkeypatch):
    name, value = bsg_connection_env(
        "bsg_conc_429", host=simulator.url, api_key=simulator.api_key, retry_max_wait=0.25, max_concurrency=4
    )
    monkeypatch.setenv(name, value)
    end = simulator.now()
    start = end - timedelta(days=60)
    simulator.inject("status", endpoint="list", status=429, retry_after="1", skip=2)
    hook = BsgHook("bsg_conc_429")
    ids = [c["id"] for c in hook.iter_campaigns(start, end, page_size=PAGE)]
    assert set(ids) == simulator.ground_truth_ids(start, end) and len(ids) == len(set(ids))
    assert hook.counters.retries == 1
    assert hook.counters.retry_wait_seconds == pytest.approx(0.25)
    # The wait was a hold of the hook's pacer, which every send of every thread passes.
    assert hook.pacer.holds == 1


def test_the_rate_limit_holds_over_all_threads(simulator, monkeypatch):
    rate = 40.0
    name, value = bsg_connection_env(
        "bsg_conc_rate", host=simulator.url, api_key=simulator.api_key, max_requests_per_second=rate
    )
    monkeypatch.setenv(name, value)
    end = simulator.now()
    hook = BsgHook("bsg_conc_rate", max_concurrency=8)
    ids = [c["id"] for c in hook.iter_campaigns(end - timedelta(days=60), end, page_size=PAGE)]
    sent = simulator.count("any")
    assert sent >= 10 and hook.counters.requests == sent and ids
    # One throttle for all eight threads: every request the simulator saw took a slot from it
    # (slots are 1/rate apart whatever the threads do: tests/test_policy.py).
    assert hook.pacer.reservations == sent
    assert hook.counters.throttle_wait_seconds > 0


def test_a_refused_span_fetched_ahead_is_planned_again(monkeypatch):
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    with BsgSimulator(campaigns=3000, seed=12, api_key="test_span_conc", now=now, span_rule="90d") as sim:
        name, value = bsg_connection_env("bsg_span", host=sim.url, api_key=sim.api_key, **FAST_RETRY_EXTRAS)
        monkeypatch.setenv(name, value)
        hook = BsgHook("bsg_span", max_concurrency=8)
        # The first window is read; with its tail in flight the next one is asked for and refused.
        start, end = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)
        plan = hook.plan(start, end)
        ids = [c["id"] for page in hook.iter_pages(plan, page_size=PAGE) for c in page]
        assert len(ids) == len(set(ids))
        assert set(ids) == sim.ground_truth_ids(start, end) and len(ids) > 3 * PAGE
        lists = [r for r in sim.requests if r.endpoint == "list"]
        refused = [r for r in lists if r.status == 422]
        assert len(refused) == 1, "one refusal, then shorter windows"
        first_from = plan.windows[0].api_bounds("UTC")[0]
        assert refused[0].query["filter[from]"] != first_from, "the refused window came after a read one"
        assert hook.last_plan.windows[0] == plan.windows[0] and hook.last_plan.windows != plan.windows


def test_max_concurrency_argument_is_checked():
    with pytest.raises(BsgConfigError, match="max_concurrency must be a whole number from 1 to 32"):
        BsgHook("bsg_any", max_concurrency=0)
    with pytest.raises(BsgConfigError, match="got True"):
        BsgHook("bsg_any", max_concurrency=True)


def test_a_distant_api_gets_max_concurrency_requests_in_flight(monkeypatch):
    # 40 ms a request: the consumer keeps waiting for its pages, so the fetches ahead double up
    # to the bound (1, 2, 4) and stay there; the read is still exactly the sequential one.
    with BsgSimulator(campaigns=2000, seed=11, api_key="test_distant_key", latency_ms=40) as sim:
        name, value = bsg_connection_env("bsg_far", host=sim.url, api_key=sim.api_key, timeout=30)
        monkeypatch.setenv(name, value)
        end = sim.now().replace(microsecond=0) - timedelta(days=2)  # no live window: all fetched ahead
        start = end - timedelta(days=120)
        hook = BsgHook("bsg_far", max_concurrency=4)
        ids = [c["id"] for c in hook.iter_campaigns(start, end, page_size=PAGE)]
        assert sorted(ids) == sorted(sim.ground_truth_ids(start, end)) and len(ids) > 12 * PAGE
        assert sim.max_in_flight == 4
        assert (
            hook.counters.requests
            == sim.count("any")
            == 1 + sum(1 for r in sim.requests if r.endpoint == "list")
        )


def _full_page(first_id: int, total: int, limit: int = PAGE) -> CampaignPage:
    records = [{"id": first_id + n} for n in range(limit)]
    return CampaignPage(records=records, total=total, offset=0, limit=limit)


def test_the_pages_expected_next_follow_each_window_whose_first_page_is_in():
    now = datetime.now(UTC)
    first, second = plan_windows(now - timedelta(days=200), now - timedelta(days=2), tz="UTC").windows[:2]
    arrived: dict = {}
    expected = partial(BsgHook._expected_pages, count=8, peek=arrived.get)

    # A window before its first page: that page alone, until it is in (fetched ahead).
    pager = WindowPager(PAGE)
    assert expected(pager, first, second) == [(first, 0, 0)]
    arrived[(first, 0, 0)] = _full_page(1, total=95)
    assert expected(pager, first, second) == [(first, 0, offset) for offset in (0, 30, 60, 90)]

    # Its tail fits: the next window's first page, and what that one's total promises once in.
    pager.accept(arrived.pop((first, 0, 0)))
    assert expected(pager, first, second) == [(first, 0, 30), (first, 0, 60), (first, 0, 90), (second, 0, 0)]
    arrived[(second, 0, 0)] = _full_page(1000, total=200)
    assert expected(pager, first, second) == [
        (first, 0, 30), (first, 0, 60), (first, 0, 90), (second, 0, 0),
        (second, 0, 30), (second, 0, 60), (second, 0, 90), (second, 0, 120),
    ]  # fmt: skip
    # The next window's own pager asks for the same pages once it takes that first page.
    next_pager = WindowPager(PAGE)
    following = [(second, 0, 30), (second, 0, 60), (second, 0, 90)]
    assert expected(next_pager, second, None)[:4] == [(second, 0, 0), *following]
    next_pager.accept(arrived.pop((second, 0, 0)))
    assert expected(next_pager, second, None)[:3] == following


def test_a_live_window_or_an_odd_first_page_is_not_guessed_past_its_first_page():
    now = datetime.now(UTC)
    finished, live = plan_windows(now - timedelta(days=100), now, tz="UTC").windows[-2:]
    assert live.is_live(now) and not finished.is_live(now)
    arrived = {(live, 0, 0): _full_page(1, total=500)}
    pager = WindowPager(PAGE)
    pager.accept(_full_page(1, total=60))
    # The live window is read one page at a time, so only its first page is fetched ahead.
    assert BsgHook._expected_pages(pager, finished, live, 8, arrived.get) == [(finished, 0, 30), (live, 0, 0)]
    # A first page holding more than a page: its own pager will refuse it, nothing is guessed from it.
    odd = {(finished, 0, 0): _full_page(1, total=500, limit=PAGE + 1)}
    assert BsgHook._expected_pages(WindowPager(PAGE), finished, None, 8, odd.get) == [(finished, 0, 0)]


def test_threads_that_waited_for_a_failed_login_take_its_failure_instead_of_logging_in(monkeypatch):
    # 150 ms a request: the four threads all wait for the lock while the first one's login fails.
    with BsgSimulator(campaigns=50, seed=3, api_key="test_failed_login_key", latency_ms=150) as sim:
        name, value = bsg_connection_env(
            "bsg_failed_login", host=sim.url, api_key=sim.api_key, **FAST_RETRY_EXTRAS
        )
        monkeypatch.setenv(name, value)
        sim.inject("status", endpoint="login", status=503)
        hook = BsgHook("bsg_failed_login")
        campaign_id = min(sim.ground_truth_ids(sim.now() - timedelta(days=400), sim.now()))
        start = threading.Barrier(4)
        read: list[int] = []

        def reader() -> None:
            start.wait()
            read.append(hook.get_campaign(campaign_id)["id"])

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert read == [campaign_id] * 4
        # One failed login, then one for all: the waiters retried on the failure they were given.
        assert [r.status for r in sim.requests if r.endpoint == "login"] == [503, 200]
        assert hook.counters.retries == 4
        hook.close()
