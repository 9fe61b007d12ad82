"""BsgAsyncHook against the simulator over real HTTP: auth lifecycle, retries, the shared pool, secrets."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from datetime import timedelta

import pytest

from bsg_provider.errors import (
    BsgAuthError,
    BsgConfigError,
    BsgMalformedResponseError,
    BsgNotFoundError,
    BsgServerError,
    BsgTransportError,
)
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.hooks.bsg_async import BsgAsyncHook, shared_client_users
from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env

FMT = "%Y-%m-%d %H:%M:%S"


@pytest.fixture
def campaign_id(simulator):
    return simulator.add_campaign(simulator.now(), status="sending")["id"]


def _connect(monkeypatch, conn_id, sim, **extra):
    name, value = bsg_connection_env(
        conn_id, host=sim.url, api_key=sim.api_key, **{**FAST_RETRY_EXTRAS, **extra}
    )
    monkeypatch.setenv(name, value)
    return conn_id


async def test_reads_the_same_campaign_as_the_sync_hook(simulator, bsg_conn_id, campaign_id):
    async with BsgAsyncHook(bsg_conn_id) as hook:
        got = await hook.get_campaign(campaign_id)
    assert got == BsgHook(bsg_conn_id).get_campaign(campaign_id)
    assert got["id"] == campaign_id
    assert got["status"] == "sending"


async def test_logs_in_lazily_once_and_reuses_the_token(simulator, bsg_conn_id, campaign_id):
    hook = BsgAsyncHook(bsg_conn_id)
    assert simulator.count("any") == 0
    try:
        for _ in range(3):
            await hook.get_campaign(str(campaign_id))
    finally:
        await hook.close()
    assert [r.endpoint for r in simulator.requests] == ["login", "get", "get", "get"]
    assert (hook.counters.logins, hook.counters.refreshes, hook.counters.requests) == (1, 0, 4)
    query_free = {r.path for r in simulator.requests if r.endpoint == "get"}
    assert query_free == {f"/api/campaigns/{campaign_id}"}


async def test_a_token_near_its_expiry_is_refreshed_before_use(monkeypatch):
    # exp is about 30.2 s ahead (floored to the second): inside the 30 s renewal margin after 0.2 s.
    with BsgSimulator(campaigns=10, seed=3, token_ttl=30.2) as sim:
        campaign_id = sim.add_campaign(sim.now(), status="sending")["id"]
        async with BsgAsyncHook(_connect(monkeypatch, "bsg_ttl", sim)) as hook:
            await hook.get_campaign(campaign_id)
            await asyncio.sleep(0.3)  # past the 0.2 s before a 30.2 s token is due for renewal
            await hook.get_campaign(campaign_id)
        endpoints = [r.endpoint for r in sim.requests]
    assert endpoints == ["login", "get", "refresh", "get"]
    assert all(r.status == 200 for r in sim.requests)


async def test_a_failed_refresh_falls_back_to_login(monkeypatch):
    with BsgSimulator(campaigns=10, seed=3, token_ttl=30.2) as sim:
        campaign_id = sim.add_campaign(sim.now(), status="sending")["id"]
        sim.inject("status", endpoint="refresh", status=401)
        async with BsgAsyncHook(_connect(monkeypatch, "bsg_ttl", sim)) as hook:
            await hook.get_campaign(campaign_id)
            await asyncio.sleep(0.3)  # past the 0.2 s before a 30.2 s token is due for renewal
            assert (await hook.get_campaign(campaign_id))["id"] == campaign_id
        assert [r.endpoint for r in sim.requests] == ["login", "get", "refresh", "login", "get"]


async def test_a_revoked_token_means_one_new_login_and_a_replay(simulator, bsg_conn_id, campaign_id):
    async with BsgAsyncHook(bsg_conn_id) as hook:
        await hook.get_campaign(campaign_id)
        simulator.inject("expire_token", endpoint="get")
        got = await hook.get_campaign(campaign_id)
    assert got["id"] == campaign_id
    assert [(r.endpoint, r.status) for r in simulator.requests] == [
        ("login", 200),
        ("get", 200),
        ("get", 401),
        ("login", 200),
        ("get", 200),
    ]
    assert hook.counters.retries == 0


async def test_a_wrong_api_key_is_an_auth_error_without_retries(simulator, monkeypatch, campaign_id):
    name, value = bsg_connection_env(
        "bsg_wrong", host=simulator.url, api_key="test_wrong_key_000", **FAST_RETRY_EXTRAS
    )
    monkeypatch.setenv(name, value)
    async with BsgAsyncHook("bsg_wrong") as hook:
        with pytest.raises(BsgAuthError, match="check the API key"):
            await hook.get_campaign(campaign_id)
    assert simulator.count("login") == 1


async def test_a_burst_of_503_is_retried(simulator, bsg_conn_id, campaign_id):
    simulator.inject("status", endpoint="get", status=503, times=3)
    async with BsgAsyncHook(bsg_conn_id) as hook:
        got = await hook.get_campaign(campaign_id)
    assert got["id"] == campaign_id
    assert [r.status for r in simulator.requests if r.endpoint == "get"] == [503, 503, 503, 200]
    assert hook.counters.retries == 3


async def test_retry_after_is_honoured(simulator, bsg_conn_id, campaign_id, monkeypatch):
    _connect(monkeypatch, "bsg_slow_retry", simulator, retry_max_wait=5)
    simulator.inject("status", endpoint="get", status=429, retry_after="1")
    started = time.monotonic()
    async with BsgAsyncHook("bsg_slow_retry") as hook:
        await hook.get_campaign(campaign_id)
    assert time.monotonic() - started >= 1.0


async def test_retries_give_up_after_max_retries(simulator, bsg_conn_id, campaign_id):
    simulator.inject("status", endpoint="get", status=502, times=None)
    async with BsgAsyncHook(bsg_conn_id) as hook:
        with pytest.raises(BsgServerError, match="HTTP 502"):
            await hook.get_campaign(campaign_id)
    assert simulator.count("get") == FAST_RETRY_EXTRAS["max_retries"] + 1


async def test_malformed_answers_are_retried(simulator, bsg_conn_id, campaign_id):
    simulator.inject("malformed_json", endpoint="get")
    simulator.inject("html", endpoint="get")
    async with BsgAsyncHook(bsg_conn_id) as hook:
        assert (await hook.get_campaign(campaign_id))["id"] == campaign_id
    assert hook.counters.retries == 2


async def test_malformed_answers_that_persist_end_as_malformed(simulator, bsg_conn_id, campaign_id):
    simulator.inject("html", endpoint="get", times=None)
    async with BsgAsyncHook(bsg_conn_id) as hook:
        with pytest.raises(BsgMalformedResponseError, match="text/html"):
            await hook.get_campaign(campaign_id)


async def test_an_unknown_campaign_is_not_found_at_once(simulator, bsg_conn_id):
    async with BsgAsyncHook(bsg_conn_id) as hook:
        with pytest.raises(BsgNotFoundError, match="HTTP 404"):
            await hook.get_campaign(987654321)
    assert simulator.count("get") == 1


async def test_bad_ids_fail_before_any_request(simulator, bsg_conn_id):
    async with BsgAsyncHook(bsg_conn_id) as hook:
        with pytest.raises(BsgConfigError, match="positive integer"):
            await hook.get_campaign("12; drop")
    assert simulator.count("any") == 0


async def test_dropped_connections_are_retried(simulator, bsg_conn_id, campaign_id):
    simulator.inject("reset", endpoint="get", times=2)
    async with BsgAsyncHook(bsg_conn_id) as hook:
        assert (await hook.get_campaign(campaign_id))["id"] == campaign_id
    assert hook.counters.retries == 2


async def test_a_slow_answer_is_a_timeout(simulator, monkeypatch, campaign_id):
    _connect(monkeypatch, "bsg_impatient", simulator, timeout=0.2, max_retries=0)
    async with BsgAsyncHook("bsg_impatient") as hook:
        await hook.get_campaign(campaign_id)  # logged in
        simulator.inject("delay", endpoint="get", delay=1.0)
        with pytest.raises(BsgTransportError, match=r"within 0\.2 s") as info:
            await hook.get_campaign(campaign_id)
    assert info.value.reason == "timeout"


async def test_nobody_listening_is_a_transport_error(monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    name, value = bsg_connection_env(
        "bsg_nobody", host=f"http://127.0.0.1:{port}", api_key="test_nobody_key", **FAST_RETRY_EXTRAS
    )
    monkeypatch.setenv(name, value)
    async with BsgAsyncHook("bsg_nobody") as hook:
        with pytest.raises(BsgTransportError, match="Check the connection's host") as info:
            await hook.get_campaign(1)
    assert info.value.reason == "connection"
    assert hook.counters.retries == FAST_RETRY_EXTRAS["max_retries"]


async def test_a_connection_without_api_key_fails_before_any_request(simulator, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_BSG_NOKEY", f'{{"conn_type": "bsg", "host": "{simulator.url}"}}')
    async with BsgAsyncHook("bsg_nokey") as hook:
        with pytest.raises(BsgConfigError, match="has no API key"):
            await hook.get_campaign(1)
    assert simulator.count("any") == 0


async def test_hooks_on_one_loop_share_one_client_until_the_last_closes(simulator, bsg_conn_id, campaign_id):
    hooks = [BsgAsyncHook(bsg_conn_id) for _ in range(5)]
    await asyncio.gather(*(hook.get_campaign(campaign_id) for hook in hooks))
    clients = {id(hook._pool.client) for hook in hooks}
    assert len(clients) == 1
    client = hooks[0]._pool.client
    assert shared_client_users() == 5
    for hook in hooks[:-1]:
        await hook.close()
    assert not client.is_closed
    assert shared_client_users() == 1
    await hooks[-1].close()
    assert client.is_closed
    assert shared_client_users() == 0
    # The hooks of one connection on one loop share its token: one login, five reads.
    assert (simulator.count("login"), simulator.count("get")) == (1, 5)


def test_each_event_loop_gets_its_own_client(simulator, bsg_conn_id, campaign_id):
    async def read_once():
        hook = BsgAsyncHook(bsg_conn_id)
        await hook.get_campaign(campaign_id)
        client = hook._pool.client
        await hook.close()
        return client

    first = asyncio.run(read_once())
    second = asyncio.run(read_once())
    assert first is not second
    assert first.is_closed and second.is_closed


async def test_close_before_any_request_is_harmless(bsg_conn_id):
    hook = BsgAsyncHook(bsg_conn_id)
    await hook.close()
    await hook.close()
    assert shared_client_users() == 0


async def test_the_rate_limit_holds_across_hooks_of_one_connection(simulator, monkeypatch, campaign_id):
    _connect(monkeypatch, "bsg_limited", simulator, max_requests_per_second=20)
    hooks = [BsgAsyncHook("bsg_limited") for _ in range(3)]
    started = time.monotonic()
    try:
        await asyncio.gather(*(hook.get_campaign(campaign_id) for hook in hooks))
    finally:
        for hook in hooks:
            await hook.close()
    # Four requests (one shared login, a read per hook) spaced 50 ms apart take at least 150 ms.
    assert simulator.count("any") == 4
    assert time.monotonic() - started >= 0.15
    assert sum(hook.counters.throttle_wait_seconds for hook in hooks) > 0


async def test_secrets_never_reach_logs_or_errors(monkeypatch, caplog, capfd):
    canary = "test_CANARY_9f8e7d6c5b"
    with BsgSimulator(campaigns=10, seed=5, api_key=canary, token_ttl=30.2) as sim:
        campaign_id = sim.add_campaign(sim.now(), status="sending")["id"]
        conn_id = _connect(monkeypatch, "bsg_canary", sim)
        texts = []
        tokens = set()
        with caplog.at_level(logging.DEBUG):
            async with BsgAsyncHook(conn_id) as hook:
                await hook.get_campaign(campaign_id)
                tokens.add(hook._token)
                await asyncio.sleep(0.3)  # past the 0.2 s before a 30.2 s token is due for renewal
                await hook.get_campaign(campaign_id)  # refreshes first
                tokens.add(hook._token)
                for kind, spec in [("expire_token", {}), ("status", {"status": 503}), ("malformed_json", {})]:
                    sim.inject(kind, endpoint="get", **spec)
                    await hook.get_campaign(campaign_id)
                    tokens.add(hook._token)
                sim.inject("status", endpoint="get", status=500, times=None)
                with pytest.raises(BsgServerError) as info:
                    await hook.get_campaign(campaign_id)
                texts.append(str(info.value))
                texts.append(repr(await hook.get_settings()))
    out, err = capfd.readouterr()
    haystack = "\n".join([caplog.text, out, err, *texts])
    tokens.discard(None)
    assert len(tokens) >= 3, "login, refresh and re-login should each have issued a token"
    assert sim.count("login") == 2
    assert sim.count("refresh") >= 1
    assert canary not in haystack
    assert not any(token in haystack for token in tokens)
    assert "eyJ" not in haystack
    assert "retry 1 of 4" in haystack  # the logs were captured at all


async def test_a_retry_wait_holds_the_other_hooks_of_the_connection(simulator, bsg_conn_id, campaign_id):
    """The shared back-off: one trigger told to wait holds the loop's other triggers of the connection."""
    first, second = BsgAsyncHook(bsg_conn_id), BsgAsyncHook(bsg_conn_id)
    try:
        await first.get_campaign(campaign_id)
        pacer = first._pool.connections[bsg_conn_id].pacer
        pacer.hold(600.0)  # as a retry's wait of the first hook would
        read = asyncio.create_task(second.get_campaign(campaign_id))
        await asyncio.sleep(0.2)  # time enough to send, were it not held
        assert not read.done(), "held"
        assert simulator.count("get") == 1, "nothing sent while the back-off held"
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
    finally:
        await first.close()
        await second.close()


async def test_a_429_with_retry_after_holds_the_connection_for_the_wait_asked(
    simulator, monkeypatch, campaign_id
):
    conn_id = _connect(monkeypatch, "bsg_async_429", simulator, retry_max_wait=0.25)
    simulator.inject("status", endpoint="get", status=429, retry_after="1")
    async with BsgAsyncHook(conn_id) as hook:
        assert (await hook.get_campaign(campaign_id))["id"] == campaign_id
        pacer = hook._pool.connections[conn_id].pacer
        # Retry-After (1 s) capped by retry_max_wait, and held for every hook of the connection.
        assert hook.counters.retry_wait_seconds == pytest.approx(0.25)
        assert (hook.counters.retries, pacer.holds) == (1, 1)
    assert [r.status for r in simulator.requests if r.endpoint == "get"] == [429, 200]


async def test_requests_go_through_the_environments_proxy(simulator, bsg_conn_id, campaign_id, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    async with BsgAsyncHook(bsg_conn_id) as hook:
        # The simulator answers direct requests; these went to the (absent) proxy.
        with pytest.raises(BsgTransportError):
            await hook.get_campaign(campaign_id)
    assert simulator.count("any") == 0


async def test_a_large_answer_is_decoded_off_the_event_loop(simulator, bsg_conn_id, monkeypatch):
    from bsg_provider.client.api import list_campaigns_request, parse_campaign_page
    from bsg_provider.hooks import bsg_async

    decoded_in: list[tuple[str, int]] = []
    read_response = bsg_async.read_response

    def spy(request, status, body, headers):
        decoded_in.append((threading.current_thread().name, len(body)))
        return read_response(request, status, body, headers)

    monkeypatch.setattr(bsg_async, "read_response", spy)
    end = simulator.now().replace(microsecond=0)
    api_from, api_to = (end - timedelta(days=80)).strftime(FMT), end.strftime(FMT)
    async with BsgAsyncHook(bsg_conn_id) as hook:
        page = await hook.call(
            list_campaigns_request(api_from, api_to, campaign_type="sms", offset=0, limit=500),
            parse=parse_campaign_page,
        )
    assert len(page.records) > 100
    (login_thread, _), (page_thread, page_bytes) = decoded_in
    assert page_bytes > bsg_async.DECODE_OFF_LOOP_BYTES
    assert login_thread == threading.main_thread().name, "a small answer is read on the loop"
    assert page_thread != threading.main_thread().name


async def test_many_hooks_on_one_loop_keep_at_most_max_connections_requests_in_flight(monkeypatch):
    from bsg_provider.hooks.bsg_async import MAX_CONNECTIONS

    with BsgSimulator(campaigns=10, seed=5, api_key="test_in_flight_key", latency_ms=20) as sim:
        campaign_id = sim.add_campaign(sim.now(), status="sending")["id"]
        # A patient timeout: a busy machine must not add a retry to the count.
        conn_id = _connect(monkeypatch, "bsg_in_flight", sim, timeout=30)
        hooks = [BsgAsyncHook(conn_id) for _ in range(3 * MAX_CONNECTIONS)]
        try:
            await asyncio.gather(*(hook.get_campaign(campaign_id) for hook in hooks))
        finally:
            for hook in hooks:
                await hook.close()
        assert sim.count("get") == 3 * MAX_CONNECTIONS and sim.count("login") == 1
        assert 1 < sim.max_in_flight <= MAX_CONNECTIONS
