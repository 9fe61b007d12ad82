"""Server lifecycle, control endpoints and the request log's hygiene."""

from __future__ import annotations

import threading
from datetime import timedelta

import requests

from bsg_provider.simulator import BsgSimulator, RequestRecord

from .helpers import NOW, Client, window


def _simulator_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("bsg-simulator")]


def test_start_stop_leaves_no_threads_even_with_open_connections() -> None:
    # How fast it starts and stops is for benchmarks/; here: nothing is left behind.
    sim = BsgSimulator(campaigns=5000).start()
    assert sim.url.startswith("http://127.0.0.1:") and not sim.url.endswith("/")
    assert sim.port > 0
    api = Client(sim.url, sim.api_key)
    api.login()
    assert api.list().status_code == 200  # leaves a keep-alive connection open
    sim.stop()
    assert not _simulator_threads()
    sim.stop()  # idempotent


def test_keep_alive_is_used(sim: BsgSimulator, client: Client) -> None:
    first = client.list()
    assert first.raw.version == 11
    assert "close" not in first.headers.get("Connection", "").lower()


def test_unknown_routes_and_methods(sim: BsgSimulator, client: Client) -> None:
    assert requests.get(f"{sim.url}/api/nothing", timeout=5).status_code == 404
    assert requests.get(f"{sim.url}/api/auth/login", timeout=5).status_code == 405
    assert requests.delete(f"{sim.url}/api/campaigns", headers=client.headers(), timeout=5).status_code == 405
    assert sim.count("other") >= 3


def test_request_log_never_holds_credentials(sim: BsgSimulator) -> None:
    api = Client(sim.url, sim.api_key)
    token = api.login()
    refreshed = api.refresh().json()["bearer"]
    api.list({"api_key": sim.api_key, "token": token, "note": f"x{sim.api_key}x"})
    api.get(sim.api_key)
    api.get(token)
    records = sim.requests
    assert all(isinstance(record, RequestRecord) for record in records)
    text = repr(records)
    for secret in (sim.api_key, token, refreshed, token.split(".")[2]):
        assert secret not in text


def test_clear_requests_and_count(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    fresh_client.list()
    assert fresh_sim.count("login") == 1 and fresh_sim.count("list") == 1
    fresh_sim.clear_requests()
    assert fresh_sim.requests == [] and fresh_sim.count("any") == 0


def test_control_endpoints(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    base = f"{fresh_sim.url}/_simulator"
    created = requests.post(f"{base}/faults", json={"kind": "status", "status": 503, "times": 2}, timeout=5)
    assert created.status_code == 201 and created.json()["fault"]["status"] == 503
    assert requests.get(f"{base}/faults", timeout=5).json()["faults"][0]["kind"] == "status"
    assert fresh_client.list().status_code == 503
    assert requests.delete(f"{base}/faults", timeout=5).json() == {"cleared": 1}
    assert fresh_client.list().status_code == 200

    at = NOW + timedelta(days=1)
    body = {
        "created_at": at.isoformat(),
        "final_status": "done",
        "status_step_seconds": 1.0,
        "message_type": "sms",
    }
    campaign = requests.post(f"{base}/campaigns", json=body, timeout=5)
    assert campaign.status_code == 201
    campaign_id = campaign.json()["id"]
    assert campaign.json()["status"] == "creation"
    truth = requests.get(
        f"{base}/ground-truth",
        params={"start": at.isoformat(), "end": (at + timedelta(seconds=1)).isoformat()},
        timeout=5,
    ).json()
    assert truth == {"ids": [campaign_id], "count": 1}
    assert [row["id"] for row in fresh_client.list(window(at, at)).json()["data"]] == [campaign_id]

    status = requests.post(f"{base}/campaigns/{campaign_id}/status", json={"status": "paused"}, timeout=5)
    assert status.json()["status"] == "paused"
    assert requests.delete(f"{base}/campaigns/{campaign_id}", timeout=5).status_code == 200
    assert fresh_client.get(campaign_id).status_code == 404

    stats = requests.get(f"{base}/stats", timeout=5).json()
    assert stats["requests"]["list"] == 3 and stats["requests"]["login"] == 1
    assert stats["total"] == sum(stats["requests"].values())
    assert requests.get(f"{base}/now", timeout=5).json()["now"].startswith("2025-06-15T12:")
    assert requests.delete(f"{base}/requests", timeout=5).status_code == 200
    assert fresh_sim.count("any") == 0  # control calls are never logged as API traffic


def test_control_errors(fresh_sim: BsgSimulator) -> None:
    base = f"{fresh_sim.url}/_simulator"
    assert requests.post(f"{base}/faults", json={"kind": "explode"}, timeout=5).status_code == 400
    assert requests.post(f"{base}/faults", json={"status": 503}, timeout=5).status_code == 400
    assert (
        requests.post(f"{base}/campaigns", json={"created_at": "2025-01-01 00:00:00"}, timeout=5).status_code
        == 400
    )
    assert (
        requests.get(f"{base}/ground-truth", params={"start": "2025-01-01T00:00:00Z"}, timeout=5).status_code
        == 400
    )
    assert requests.delete(f"{base}/campaigns/1", timeout=5).status_code == 404
    assert requests.get(f"{base}/unknown", timeout=5).status_code == 404
