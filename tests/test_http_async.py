"""The async hook's HTTP client against the simulator: keep-alive slots, failures, cancellation, proxies."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from bsg_provider.client.api import login_request
from bsg_provider.client.http_async import AsyncHttp, HttpFailure, HttpTimeout, _proxy_applies

HEADERS = {"User-Agent": "test", "Accept": "application/json"}


async def _login(client: AsyncHttp, url: str, api_key: str) -> str:
    request = login_request(api_key)
    answer = await client.send(
        request.method,
        url,
        request.path,
        params=None,
        body=json.dumps(request.json).encode(),
        headers=None,
        timeout=5,
    )
    assert answer.status == 200, answer.body
    return json.loads(answer.body)["bearer"]


async def _get(client: AsyncHttp, url: str, path: str, token: str, timeout: float = 5, **params: str):
    return await client.send(
        "GET",
        url,
        path,
        params=params or None,
        body=None,
        headers={"Authorization": f"Bearer {token}"},
        timeout=timeout,
    )


async def test_many_requests_share_at_most_max_connections(simulator):
    client = AsyncHttp(2, HEADERS)
    try:
        token = await _login(client, simulator.url, simulator.api_key)
        reads = (_get(client, simulator.url, "/api/campaigns/1", token) for _ in range(20))
        answers = await asyncio.gather(*reads)
        assert {a.status for a in answers} <= {200, 404}
        assert len(client._open) == 2
        assert simulator.count("get") == 20
    finally:
        await client.aclose()
    assert client.is_closed
    with pytest.raises(RuntimeError, match="closed"):
        await _get(client, simulator.url, "/api/campaigns/1", "x")


async def test_query_parameters_reach_the_api_and_headers_read_case_insensitively(simulator):
    client = AsyncHttp(1, HEADERS)
    try:
        token = await _login(client, simulator.url, simulator.api_key)
        answer = await _get(client, simulator.url, "/api/campaigns", token, **{"page[limit]": "30"})
        assert answer.status == 200
        assert len(json.loads(answer.body)["data"]) == 30
        assert answer.headers.get("Content-Type", "").startswith("application/json")
        assert answer.headers.get("content-type") == answer.headers.get("CONTENT-TYPE")
    finally:
        await client.aclose()


async def test_a_dropped_connection_fails_its_request_and_the_next_gets_a_fresh_one(simulator):
    client = AsyncHttp(1, HEADERS)
    try:
        token = await _login(client, simulator.url, simulator.api_key)
        simulator.inject("reset", endpoint="get", times=1)
        with pytest.raises(HttpFailure):
            await _get(client, simulator.url, "/api/campaigns/1", token)
        assert (await _get(client, simulator.url, "/api/campaigns/1", token)).status in (200, 404)
        assert len(client._open) == 1
    finally:
        await client.aclose()


async def test_a_slow_answer_is_a_timeout_and_frees_its_connection(simulator):
    client = AsyncHttp(1, HEADERS)
    try:
        token = await _login(client, simulator.url, simulator.api_key)
        simulator.inject("delay", endpoint="get", delay=1.0)
        with pytest.raises(HttpTimeout):
            await _get(client, simulator.url, "/api/campaigns/1", token, timeout=0.2)
        assert (await _get(client, simulator.url, "/api/campaigns/1", token)).status in (200, 404)
    finally:
        await client.aclose()


async def test_a_cancelled_request_gives_its_connection_back(simulator):
    client = AsyncHttp(1, HEADERS)
    try:
        token = await _login(client, simulator.url, simulator.api_key)
        simulator.inject("delay", endpoint="get", delay=1.0)
        slow = asyncio.create_task(_get(client, simulator.url, "/api/campaigns/1", token))
        while simulator.count("get") < 1:
            await asyncio.sleep(0.01)  # polls what the simulator saw
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        # The only slot is free again: without it this would wait for ever.
        answer = await asyncio.wait_for(_get(client, simulator.url, "/api/campaigns/1", token), 10)
        assert answer.status in (200, 404)
        assert len(client._open) == 1
    finally:
        await client.aclose()


async def test_a_path_prefix_in_the_base_url_is_kept(simulator):
    client = AsyncHttp(1, HEADERS)
    try:
        answer = await _get(client, simulator.url + "/prefix", "/api/campaigns/1", "x")
        assert answer.status == 404  # the simulator serves no /prefix/api/...
        assert simulator.count("get") == 0
    finally:
        await client.aclose()


async def test_nobody_listening_is_a_failure():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = AsyncHttp(1, HEADERS)
    try:
        with pytest.raises(HttpFailure) as info:
            await _get(client, f"http://127.0.0.1:{port}", "/api/campaigns/1", "x")
        assert "Connect" in type(info.value.cause).__name__
    finally:
        await client.aclose()


def test_a_proxy_applies_unless_no_proxy_matches(monkeypatch):
    for scheme in ("HTTP", "HTTPS", "ALL", "NO"):
        monkeypatch.delenv(f"{scheme}_PROXY", raising=False)
        monkeypatch.delenv(f"{scheme.lower()}_proxy", raising=False)
    assert not _proxy_applies("https", "api.example")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert _proxy_applies("https", "api.example")
    assert not _proxy_applies("http", "api.example")
    monkeypatch.setenv("NO_PROXY", "api.example")
    assert not _proxy_applies("https", "api.example")


async def test_requests_go_through_the_environments_proxy(simulator, monkeypatch):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    client = AsyncHttp(1, HEADERS)
    try:
        # The simulator answers direct requests; this one went to the (absent) proxy.
        with pytest.raises(HttpFailure):
            await _get(client, simulator.url, "/api/campaigns/1", "x")
        assert simulator.count("any") == 0
    finally:
        await client.aclose()
