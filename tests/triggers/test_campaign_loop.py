"""The trigger keeps slow synchronous work off the event loop it shares with every other trigger."""

from __future__ import annotations

import asyncio
import threading

from bsg_provider.hooks import bsg_async
from bsg_provider.simulator import BsgSimulator
from bsg_provider.triggers.campaign import BsgCampaignStatusTrigger
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env


def on_loop_thread() -> bool:
    """Whether the caller runs on the thread of the running test's event loop (the main thread)."""
    return threading.current_thread() is threading.main_thread()


def run(trigger: BsgCampaignStatusTrigger) -> list[dict]:
    async def main() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(main())


def test_connection_lookup_tls_context_and_large_answers_run_off_the_loop(monkeypatch):
    # The connection lookup (Airflow recompiles its masker's regex of every secret: 100+ ms in a
    # long-lived triggerer), the HTTP client with its TLS context (~70 ms of CA certificates) and a
    # 600 kB answer's JSON.
    threads: list[tuple[str, bool]] = []

    read_settings = bsg_async.BsgAsyncHook._read_settings
    monkeypatch.setattr(
        bsg_async.BsgAsyncHook,
        "_read_settings",
        lambda self: threads.append(("settings", on_loop_thread())) or read_settings(self),
    )
    new_client = bsg_async._new_client
    monkeypatch.setattr(
        bsg_async, "_new_client", lambda: threads.append(("tls", on_loop_thread())) or new_client()
    )
    read_response = bsg_async.read_response

    def recording(request, status, body, headers):
        threads.append((request.endpoint, on_loop_thread()))
        return read_response(request, status, body, headers)

    monkeypatch.setattr(bsg_async, "read_response", recording)
    channels = [{"channel": "viber", "text": f"fallback {i}"} for i in range(15_000)]
    with BsgSimulator(campaigns=5, seed=4, api_key="test_big_key_3390") as sim:
        name, value = bsg_connection_env("bsg_big", host=sim.url, api_key=sim.api_key, **FAST_RETRY_EXTRAS)
        monkeypatch.setenv(name, value)
        campaign = sim.add_campaign(
            sim.now(), final_status="done", status_step_seconds=0.001, alternative_channels=channels
        )
        events = run(BsgCampaignStatusTrigger([campaign["id"]], bsg_conn_id="bsg_big", poll_interval=60))
        reads = [r.endpoint for r in sim.requests]

    (event,) = events
    assert event["status"] == "success"
    assert event["campaigns"][0]["alternative_channels"] == channels
    # Off the loop: settings, TLS context, the large answer; the login's small answer on it.
    assert threads == [("settings", False), ("tls", False), ("login", True), ("get", False)]
    # The first poll does not wait for the 60 s interval: login, then the read, then the event.
    assert reads == ["login", "get"]
