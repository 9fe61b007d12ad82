"""BsgCampaignStatusTrigger run as an async generator against the simulator over real HTTP."""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import warnings
from datetime import datetime, timedelta, timezone

import pytest
from airflow.triggers.base import TriggerEvent

import bsg_provider.simulator.dataset as simulator_dataset
from bsg_provider.errors import BsgConfigError
from bsg_provider.hooks import metrics
from bsg_provider.hooks.bsg_async import shared_client_users
from bsg_provider.simulator import BsgSimulator
from bsg_provider.triggers.campaign import BsgCampaignStatusTrigger
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env

CANARY = "test_CANARY_9f8e7d6c5b"
FAST = 0.05  # seconds per status step / between polls


def _times_logged(caplog, out: str, needle: str) -> int:
    """How often a message was logged: Airflow 3.0 logs through stdlib logging, 3.3 to stdout, or both."""
    return max(caplog.text.count(needle), out.count(needle))


def _reads(sim: BsgSimulator, campaign_id: int) -> int:
    path = f"/api/campaigns/{campaign_id}"
    return sum(1 for r in sim.requests if r.endpoint == "get" and r.path == path)


async def _set_status_after(sim: BsgSimulator, campaign_id: int, status: str, *, reads: int) -> None:
    """Move a campaign once the trigger has read it ``reads`` times: waiting is then certain."""
    while _reads(sim, campaign_id) < reads:
        await asyncio.sleep(0.005)  # polls what the simulator saw
    sim.set_status(campaign_id, status)


async def _events(trigger: BsgCampaignStatusTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


def _trigger(conn_id: str, ids, **kwargs) -> BsgCampaignStatusTrigger:
    kwargs.setdefault("poll_interval", FAST)
    return BsgCampaignStatusTrigger(ids if isinstance(ids, list) else [ids], bsg_conn_id=conn_id, **kwargs)


@pytest.fixture
def canary_sim(monkeypatch):
    """A simulator with a canary key and tokens that need renewal 0.2 s after they are issued."""
    with BsgSimulator(campaigns=50, seed=9, api_key=CANARY, token_ttl=30.2) as sim:
        name, value = bsg_connection_env("bsg_canary", host=sim.url, api_key=CANARY, **FAST_RETRY_EXTRAS)
        monkeypatch.setenv(name, value)
        yield sim


def test_serialize_round_trips_as_json_without_secrets(canary_sim):
    deadline = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc).isoformat()
    trigger = BsgCampaignStatusTrigger(
        [3, 1, 3],
        bsg_conn_id="bsg_canary",
        target_statuses=("done",),
        failure_statuses=("spam", "paused"),
        poll_interval=7,
        deadline=deadline,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "bsg_provider.triggers.campaign.BsgCampaignStatusTrigger"
    assert kwargs == {
        "campaign_ids": [3, 1, 3],
        "bsg_conn_id": "bsg_canary",
        "target_statuses": ["done"],
        "failure_statuses": ["spam", "paused"],
        "poll_interval": 7.0,
        "deadline": deadline,
    }
    text = json.dumps(kwargs)
    assert CANARY not in text
    assert "eyJ" not in text
    again = BsgCampaignStatusTrigger(**json.loads(text))
    assert again.serialize() == (classpath, kwargs)


def test_bad_arguments_fail_at_construction():
    with pytest.raises(BsgConfigError, match="target_statuses is empty"):
        BsgCampaignStatusTrigger([1], target_statuses=())
    with pytest.raises(BsgConfigError, match="must carry a UTC offset"):
        BsgCampaignStatusTrigger([1], deadline="2030-01-01T00:00:00")


async def test_waits_through_token_expiry_and_a_503_burst_and_yields_one_event(canary_sim, caplog, capfd):
    sim = canary_sim
    campaign = sim.add_campaign(sim.now(), status="sending")
    # Mid-wait: every token issued so far is revoked (read 3), then the API fails four times in a
    # row (reads 5 to 8); the campaign is done once all of that is behind the trigger.
    sim.inject("expire_token", endpoint="get", skip=2)
    sim.inject("status", endpoint="get", status=503, skip=1, times=4)
    with caplog.at_level(logging.DEBUG):
        events, _ = await asyncio.gather(
            _events(_trigger("bsg_canary", campaign["id"])),
            _set_status_after(sim, campaign["id"], "done", reads=9),
        )

    assert len(events) == 1
    payload = events[0].payload
    assert payload["status"] == "success"
    assert [c["id"] for c in payload["campaigns"]] == [campaign["id"]]
    assert payload["campaigns"][0]["status"] == "done"

    gets = [r for r in sim.requests if r.endpoint == "get"]
    assert [r.status for r in gets].count(503) == 4
    assert [r.status for r in gets].count(401) == 1
    assert sim.count("login") == 2  # the first one, and one after the revocation
    assert sim.count("refresh") >= 1  # tokens aged past the renewal margin during the wait
    assert shared_client_users() == 0

    out, err = capfd.readouterr()
    haystack = "\n".join([caplog.text, out, err, json.dumps(payload)])
    assert CANARY not in haystack
    assert "eyJ" not in haystack
    # Each status change is logged once, not each poll.
    assert _times_logged(caplog, out, f"BSG campaign {campaign['id']} has status sending.") == 1
    assert _times_logged(caplog, out, "changed from sending to done.") == 1


async def test_a_spam_verdict_is_a_failure_event(simulator, bsg_conn_id):
    campaign = simulator.add_campaign(simulator.now(), final_status="spam", status_step_seconds=FAST)
    events = await _events(_trigger(bsg_conn_id, campaign["id"]))
    assert [e.payload for e in events] == [
        {
            "status": "failure",
            "campaign_id": campaign["id"],
            "campaign_status": "spam",
            "message": (
                f"BSG campaign {campaign['id']} has status 'spam', one of the failure statuses (spam); "
                "it will not reach done or stopped."
            ),
        }
    ]


async def test_an_unknown_campaign_is_a_not_found_event(simulator, bsg_conn_id):
    events = await _events(_trigger(bsg_conn_id, 987654321))
    assert len(events) == 1
    assert events[0].payload["status"] == "not_found"
    assert events[0].payload["campaign_id"] == 987654321
    assert "was not found" in events[0].payload["message"]
    assert simulator.count("get") == 1


async def test_a_list_waits_for_the_slowest_and_keeps_the_given_order(simulator, bsg_conn_id):
    fast = simulator.add_campaign(simulator.now(), status="sending")
    slow = simulator.add_campaign(simulator.now(), status="sending")
    events, *_ = await asyncio.gather(
        _events(_trigger(bsg_conn_id, [slow["id"], fast["id"], slow["id"]])),
        _set_status_after(simulator, fast["id"], "stopped", reads=2),
        _set_status_after(simulator, slow["id"], "done", reads=5),
    )
    assert len(events) == 1
    campaigns = events[0].payload["campaigns"]
    assert [(c["id"], c["status"]) for c in campaigns] == [
        (slow["id"], "done"),
        (fast["id"], "stopped"),
        (slow["id"], "done"),
    ]
    # The fast one is not read again once it settled; the slow one is read each poll until done.
    assert 3 <= _reads(simulator, fast["id"]) <= 4
    assert _reads(simulator, slow["id"]) >= 6


async def test_a_list_fails_as_soon_as_one_campaign_fails(simulator, bsg_conn_id):
    waiting = simulator.add_campaign(simulator.now(), status="sending")
    rejected = simulator.add_campaign(simulator.now(), final_status="spam", status_step_seconds=FAST)
    events = await _events(_trigger(bsg_conn_id, [waiting["id"], rejected["id"]]))
    assert len(events) == 1
    assert events[0].payload["status"] == "failure"
    assert events[0].payload["campaign_id"] == rejected["id"]


async def test_the_deadline_ends_the_wait_with_a_timeout_event(simulator, bsg_conn_id):
    campaign = simulator.add_campaign(simulator.now(), status="sending")
    deadline = datetime.now(timezone.utc) + timedelta(seconds=0.4)
    events = await _events(
        _trigger(bsg_conn_id, campaign["id"], poll_interval=10, deadline=deadline.isoformat())
    )
    finished = datetime.now(timezone.utc)
    assert len(events) == 1
    assert events[0].payload["status"] == "timeout"
    assert f"{campaign['id']} (sending)" in events[0].payload["message"]
    assert finished - deadline < timedelta(seconds=3), "the 10 s poll interval delayed the deadline"
    reads = [r for r in simulator.requests if r.endpoint == "get"]
    # One poll at the start, one at the deadline (just one if starting up took longer than 0.4 s).
    assert 1 <= len(reads) <= 2
    assert reads[-1].received_at >= deadline.timestamp() - 0.01, "it gave up without a last look"


async def test_an_outage_beyond_the_retry_budget_keeps_the_wait_going(simulator, bsg_conn_id, caplog, capfd):
    campaign = simulator.add_campaign(simulator.now(), status="sending")
    budget = FAST_RETRY_EXTRAS["max_retries"] + 1
    # Three polls' worth of 503s: the first poll spends the whole retry budget, the next ones try once.
    simulator.inject("status", endpoint="get", status=503, skip=1, times=budget + 2)
    with caplog.at_level(logging.INFO):
        events, _ = await asyncio.gather(
            _events(_trigger(bsg_conn_id, campaign["id"])),
            _set_status_after(simulator, campaign["id"], "done", reads=budget + 4),
        )
    assert [e.payload["status"] for e in events] == ["success"]
    assert events[0].payload["campaigns"][0]["status"] == "done"
    assert [r.status for r in simulator.requests if r.endpoint == "get"].count(503) == budget + 2
    assert shared_client_users() == 0
    out, _ = capfd.readouterr()
    assert _times_logged(caplog, out, "BSG One API did not answer (503)") == 1
    assert _times_logged(caplog, out, "BSG One API answers again, after 3 unanswered poll(s)") == 1


async def test_an_outage_until_the_deadline_is_a_timeout_that_says_so(simulator, bsg_conn_id):
    campaign = simulator.add_campaign(simulator.now(), status="sending")
    simulator.inject("status", endpoint="get", status=503, times=None)
    # A deadline already passed (a triggerer that restarted late): one look, then the verdict.
    deadline = datetime.now(timezone.utc).isoformat()
    events = await _events(_trigger(bsg_conn_id, campaign["id"], deadline=deadline))
    assert [e.payload["status"] for e in events] == ["timeout"]
    message = events[0].payload["message"]
    assert message.startswith(f"Timed out at {deadline} waiting for BSG campaign(s) {campaign['id']}")
    assert "the API has not answered since" in message and "HTTP 503" in message
    assert simulator.count("get") == FAST_RETRY_EXTRAS["max_retries"] + 1


async def test_a_token_refused_after_a_fresh_login_is_a_refused_event(simulator, bsg_conn_id):
    campaign = simulator.add_campaign(simulator.now(), status="sending")
    simulator.inject("status", endpoint="get", status=401, times=None)
    events = await _events(_trigger(bsg_conn_id, campaign["id"]))
    assert [e.payload["status"] for e in events] == ["refused"]
    assert "HTTP 401" in events[0].payload["message"]
    assert [r.endpoint for r in simulator.requests] == ["login", "get", "login", "get"]


async def test_a_missing_connection_is_an_error_event():
    events = await _events(_trigger("bsg_does_not_exist", 1))
    assert len(events) == 1
    assert events[0].payload["status"] == "error"
    assert "bsg_does_not_exist" in events[0].payload["message"]


async def test_an_unknown_status_keeps_waiting_and_warns_once(
    simulator, bsg_conn_id, monkeypatch, caplog, capfd
):
    # The simulated vendor learns a status this provider has never heard of.
    monkeypatch.setattr(simulator_dataset, "STATUSES", (*simulator_dataset.STATUSES, "archived"))
    campaign = simulator.add_campaign(simulator.now(), status="archived")
    with caplog.at_level(logging.INFO):
        events, _ = await asyncio.gather(
            _events(_trigger(bsg_conn_id, campaign["id"])),
            _set_status_after(simulator, campaign["id"], "done", reads=4),
        )
    assert [e.payload["status"] for e in events] == ["success"]
    out, _ = capfd.readouterr()
    assert _times_logged(caplog, out, "'archived', which this provider does not know") == 1
    assert simulator.count("get") >= 4


async def test_cancellation_stops_cleanly_and_closes_the_client(simulator, bsg_conn_id):
    campaign = simulator.add_campaign(simulator.now(), status="sending")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        task = asyncio.ensure_future(_events(_trigger(bsg_conn_id, campaign["id"])))
        while simulator.count("get") < 2:
            await asyncio.sleep(0.01)  # polls what the simulator saw
        assert shared_client_users() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert shared_client_users() == 0
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(_events(_trigger(bsg_conn_id, campaign["id"])), timeout=0.2)
        assert shared_client_users() == 0
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning) or "nclosed" in str(w.message)]
    gets = simulator.count("get")
    await asyncio.sleep(0.2)  # a poll would have come by now: 0.2 s is many poll intervals
    assert simulator.count("get") == gets, "a cancelled trigger kept polling"


async def test_polls_and_the_outcome_reach_airflow_metrics(simulator, bsg_conn_id, recording_stats):
    campaign = simulator.add_campaign(simulator.now(), status="scheduled")
    events, _ = await asyncio.gather(
        _events(_trigger(bsg_conn_id, campaign["id"])),
        _set_status_after(simulator, campaign["id"], "done", reads=3),
    )
    assert [e.payload["status"] for e in events] == ["success"]
    polls = recording_stats.tags_of(metrics.SENSOR_POLLS)
    assert polls == [{"mode": "deferrable"}] * _reads(simulator, campaign["id"])
    assert recording_stats.tags_of(metrics.SENSOR_OUTCOMES) == [{"outcome": "success"}]
    assert recording_stats.total(metrics.REQUESTS, endpoint="get") >= 4


async def test_triggers_on_one_loop_renew_a_revoked_token_once_and_keep_their_own_events(
    simulator, bsg_conn_id
):
    finishing = [simulator.add_campaign(simulator.now(), status="sending")["id"] for _ in range(6)]
    stuck = simulator.add_campaign(simulator.now(), status="sending")["id"]
    deadline = datetime.now(timezone.utc) + timedelta(seconds=1.0)
    triggers = [_trigger(bsg_conn_id, campaign_id) for campaign_id in finishing]
    triggers.append(_trigger(bsg_conn_id, finishing[0]))  # two triggers wait for one campaign
    triggers.append(_trigger(bsg_conn_id, stuck, deadline=deadline.isoformat()))
    # Once every trigger has read once, every token issued so far is revoked.
    simulator.inject("expire_token", endpoint="get", skip=len(triggers))

    async def finish() -> None:
        while min(_reads(simulator, campaign_id) for campaign_id in finishing) < 3:
            await asyncio.sleep(0.005)  # polls what the simulator saw
        for campaign_id in finishing:
            simulator.set_status(campaign_id, "done")

    *results, _ = await asyncio.gather(*(_events(trigger) for trigger in triggers), finish())

    assert [len(events) for events in results] == [1] * len(triggers)
    payloads = [events[0].payload for events in results]
    for payload, campaign_id in zip(payloads[:-1], [*finishing, finishing[0]], strict=True):
        assert payload["status"] == "success"
        assert [campaign["id"] for campaign in payload["campaigns"]] == [campaign_id]
    assert payloads[-1]["status"] == "timeout"
    assert f"{stuck} (sending)" in payloads[-1]["message"]
    # The revoked token cost one new login for all of them, not one each.
    assert any(r.endpoint == "get" and r.status == 401 for r in simulator.requests)
    assert simulator.count("login") == 2
    assert shared_client_users() == 0
