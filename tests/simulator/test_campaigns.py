"""``GET /api/campaigns/{id}``, ``PATCH .../stop``, status progression and data changes."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest

from bsg_provider.simulator import BsgSimulator

from .helpers import API_TIMESTAMP, NOW, Client, window

FIELDS = [
    "id",
    "name",
    "sender",
    "status",
    "message_type",
    "start_at",
    "real_start_at",
    "finished_at",
    "created_at",
    "statistics",
    "calculated_price",
    "currency",
    "alternative_channels",
]


def test_get_renders_the_campaign(sim: BsgSimulator, client: Client) -> None:
    campaign_id = min(sim.ground_truth_ids(NOW - timedelta(days=30), NOW))
    response = client.get(campaign_id)
    assert response.status_code == 200
    data = response.json()["data"]
    assert list(data) == FIELDS
    assert data == sim.campaign(campaign_id)


@pytest.mark.parametrize("raw_id", ["1", "99999999999", "abc", "12a", "-5", "1.5"])
def test_unknown_or_non_integer_id_is_404(client: Client, raw_id: str) -> None:
    response = client.get(raw_id)
    assert response.status_code == 404
    assert response.json() == {"message": "Campaign not found"}
    assert client.stop(raw_id).status_code == 404


@pytest.mark.parametrize("status", ["scheduled", "sending", "paused", "moderation"])
def test_stop_from_a_stoppable_status(fresh_sim: BsgSimulator, fresh_client: Client, status: str) -> None:
    campaign = fresh_sim.add_campaign(NOW, status=status)
    response = fresh_client.stop(campaign["id"])
    assert response.status_code == 200
    assert response.json()["data"]["status"] == "stopped"
    assert fresh_client.get(campaign["id"]).json()["data"]["status"] == "stopped"
    again = fresh_client.stop(campaign["id"])
    assert again.status_code == 422
    assert again.json() == {"message": "Invalid campaign status", "errors": []}


@pytest.mark.parametrize("status", ["creation", "done", "stopped", "spam"])
def test_stop_from_other_statuses_is_422(fresh_sim: BsgSimulator, fresh_client: Client, status: str) -> None:
    campaign = fresh_sim.add_campaign(NOW, status=status)
    response = fresh_client.stop(campaign["id"])
    assert response.status_code == 422
    assert response.json() == {"message": "Invalid campaign status", "errors": []}
    assert fresh_client.get(campaign["id"]).json()["data"]["status"] == status


def test_stop_of_a_started_campaign_sets_finished_at(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    campaign = fresh_sim.add_campaign(NOW, final_status="sending", status_step_seconds=0.01)
    time.sleep(0.05)  # five 10 ms status steps of the campaign's own clock
    data = fresh_client.stop(campaign["id"]).json()["data"]
    assert data["real_start_at"] and data["finished_at"]
    never_started = fresh_sim.add_campaign(NOW, status="scheduled")
    data = fresh_client.stop(never_started["id"]).json()["data"]
    assert data["real_start_at"] is None and data["finished_at"] is None


def _watch(sim: BsgSimulator, campaign_id: int, seconds: float) -> list[dict]:
    seen: list[dict] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        current = sim.campaign(campaign_id)
        if not seen or seen[-1]["status"] != current["status"]:
            seen.append(current)
        time.sleep(0.02)  # samples the status as it moves
    return seen


def test_status_progresses_in_real_time(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    created = fresh_sim.now()
    campaign = fresh_sim.add_campaign(
        created, status_step_seconds=0.15, statistics={"sent": 10, "delivered": 7}
    )
    assert campaign["status"] == "creation"
    assert campaign["real_start_at"] is None and campaign["finished_at"] is None
    seen = _watch(fresh_sim, campaign["id"], 0.8)
    assert [c["status"] for c in seen] == ["creation", "moderation", "scheduled", "sending", "done"]
    assert seen[2]["real_start_at"] is None
    assert seen[3]["real_start_at"] is not None and seen[3]["finished_at"] is None
    assert seen[4]["finished_at"] is not None
    # The API shows the live status too, not a stale cached rendering.
    listed = fresh_client.list(window(created, created)).json()["data"]
    assert [row["status"] for row in listed if row["id"] == campaign["id"]] == ["done"]


def test_spam_skips_scheduling(fresh_sim: BsgSimulator) -> None:
    campaign = fresh_sim.add_campaign(fresh_sim.now(), final_status="spam", status_step_seconds=0.1)
    seen = _watch(fresh_sim, campaign["id"], 0.4)
    assert [c["status"] for c in seen] == ["creation", "moderation", "spam"]
    assert seen[-1]["real_start_at"] is None and seen[-1]["finished_at"] is None
    assert seen[-1]["statistics"] == {"delivered": 0, "sent": 0}


def test_list_sees_status_changes(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    campaign_id = min(fresh_sim.ground_truth_ids(NOW - timedelta(days=60), NOW))
    created = fresh_sim.campaign(campaign_id)["created_at"]
    params = {"filter[from]": created, "filter[to]": created}

    def status() -> str:
        rows = fresh_client.list(params).json()["data"]
        return next(row["status"] for row in rows if row["id"] == campaign_id)

    status()  # warm any cache
    fresh_sim.set_status(campaign_id, "paused")
    assert status() == "paused"
    assert fresh_client.get(campaign_id).json()["data"]["status"] == "paused"


def test_add_and_delete(fresh_sim: BsgSimulator, fresh_client: Client) -> None:
    highest = max(fresh_sim.ground_truth_ids(NOW - timedelta(days=500), NOW + timedelta(days=1)))
    added = fresh_sim.add_campaign(NOW - timedelta(days=1), sender="Shop", name="Autumn sale")
    assert added["id"] == highest + 1
    assert (added["sender"], added["name"]) == ("Shop", "Autumn sale")
    chosen = fresh_sim.add_campaign(NOW - timedelta(days=1), id=99_000_000, message_type="rcs")
    assert chosen["id"] == 99_000_000 and chosen["message_type"] == "rcs"
    with pytest.raises(ValueError):
        fresh_sim.add_campaign(NOW, id=99_000_000)
    with pytest.raises(TypeError):
        fresh_sim.add_campaign(NOW, colour="red")
    with pytest.raises(ValueError):
        fresh_sim.add_campaign(NOW.replace(tzinfo=None))
    fresh_sim.delete_campaign(added["id"])
    assert fresh_client.get(added["id"]).status_code == 404
    assert fresh_sim.campaign(added["id"]) is None
    with pytest.raises(KeyError):
        fresh_sim.delete_campaign(added["id"])


@pytest.mark.parametrize("timestamp_format", ["plain", "iso", "mixed"])
def test_timestamp_formats(timestamp_format: str) -> None:
    with BsgSimulator(
        campaigns=200, timestamp_format=timestamp_format, timezone="Europe/Berlin", now=NOW
    ) as s:
        api = Client(s.url, s.api_key)
        api.login()
        rows, _ = api.pages({"filter[from]": "2025-03-15 12:00:00", "filter[to]": "2025-06-15 12:00:00"})
    stamps = [row[key] for row in rows for key in ("start_at", "created_at", "real_start_at") if row[key]]
    assert all(re.fullmatch(API_TIMESTAMP, stamp) for stamp in stamps)
    with_offset = {bool(re.search(r"[+-]\d{2}:\d{2}$", stamp)) for stamp in stamps}
    assert with_offset == {"plain": {False}, "iso": {True}, "mixed": {False, True}}[timestamp_format]
    if timestamp_format != "plain":
        assert any(stamp.endswith("+02:00") for stamp in stamps)
