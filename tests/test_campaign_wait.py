"""The poll step the sensor and the trigger share, on scripted reads: outcomes, outages, deadlines."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bsg_provider.client.campaign_wait import (
    CampaignWait,
    Failure,
    NotFound,
    Pending,
    Refused,
    Success,
    TimedOut,
)
from bsg_provider.client.statuses import CampaignIds, StatusGate
from bsg_provider.errors import (
    BsgApiError,
    BsgAuthError,
    BsgNotFoundError,
    BsgRateLimitError,
    BsgServerError,
    BsgTransportError,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)


class Reads:
    """Campaign reads answered from ``statuses``, or by an error set for the next reads."""

    def __init__(self, **statuses: str) -> None:
        self.statuses = {int(k.lstrip("c")): v for k, v in statuses.items()}
        self.error: BsgApiError | None = None
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, campaign_id: int, retries: bool) -> Any:
        self.calls.append((campaign_id, retries))
        if self.error is not None:
            raise self.error
        return {"id": campaign_id, "status": self.statuses[campaign_id]}


def _poll(wait: CampaignWait, reads: Reads) -> Any:
    """One poll as the sensor and the trigger run it: read what is not settled, stop at an error."""
    campaigns = {}
    for campaign_id in wait.to_read():
        try:
            campaigns[campaign_id] = reads(campaign_id, wait.retries)
        except BsgApiError as exc:
            return wait.failed(campaign_id, exc)
    return wait.answered(campaigns)


def _wait(*ids: int, deadline: datetime | None = None, clock: list[datetime] | None = None) -> CampaignWait:
    clock = clock or [NOW]
    return CampaignWait(
        CampaignIds(ids, single=len(ids) == 1),
        StatusGate(),
        "bsg_test",
        deadline,
        logging.getLogger("test_campaign_wait"),
        now=lambda: clock[0],
    )


def test_success_gives_the_records_in_the_given_order_and_settled_ones_are_not_read_again():
    reads = Reads(c1="sending", c2="done")
    wait = _wait(1, 2, 1)
    assert isinstance(_poll(wait, reads), Pending)
    reads.statuses[1] = "stopped"
    outcome = _poll(wait, reads)
    assert outcome == Success(
        [{"id": 1, "status": "stopped"}, {"id": 2, "status": "done"}, {"id": 1, "status": "stopped"}]
    )
    assert [campaign_id for campaign_id, _ in reads.calls] == [1, 2, 1]
    assert outcome.event()["status"] == "success"


def test_a_failure_status_wins_over_waiting():
    outcome = _poll(_wait(1, 2), Reads(c1="sending", c2="spam"))
    assert isinstance(outcome, Failure)
    assert (outcome.campaign_id, outcome.campaign_status) == (2, "spam")
    assert outcome.event() == {
        "status": "failure",
        "campaign_id": 2,
        "campaign_status": "spam",
        "message": outcome.message,
    }


@pytest.mark.parametrize(
    ("error", "outcome_type"),
    [
        (BsgNotFoundError("HTTP 404", status=404), NotFound),
        (BsgAuthError("refused (HTTP 401)", status=401), Refused),
        (BsgApiError("HTTP 400", status=400), Refused),
    ],
)
def test_permanent_failures_end_the_wait_at_once(error, outcome_type):
    reads = Reads(c1="sending")
    reads.error = error
    outcome = _poll(_wait(1, deadline=NOW + timedelta(hours=12)), reads)
    assert isinstance(outcome, outcome_type)
    assert outcome.event()["status"] == outcome_type.status


@pytest.mark.parametrize(
    "error",
    [
        BsgServerError("HTTP 503", status=503, reason="503"),
        BsgRateLimitError("HTTP 429", status=429, reason="429"),
        BsgTransportError("no answer", reason="timeout"),
    ],
)
def test_a_transient_failure_is_not_known_yet_logged_once_per_outage(error, caplog):
    reads = Reads(c1="sending")
    wait = _wait(1, deadline=NOW + timedelta(hours=12))
    with caplog.at_level(logging.INFO, logger="test_campaign_wait"):
        assert isinstance(_poll(wait, reads), Pending)
        reads.error = error
        assert [type(_poll(wait, reads)) for _ in range(3)] == [Pending] * 3
        reads.error = None
        assert isinstance(_poll(wait, reads), Pending)
        reads.error = error
        assert isinstance(_poll(wait, reads), Pending)
    # The first read of an outage uses the hook's retries; the next ones try once.
    assert [retries for _, retries in reads.calls] == [True, True, False, False, False, True]
    assert caplog.text.count(f"BSG One API did not answer ({error.reason})") == 2
    assert caplog.text.count("BSG One API answers again, after 3 unanswered poll(s)") == 1


def test_the_deadline_gives_a_timeout_after_a_last_look_and_says_when_the_api_went_quiet():
    clock = [NOW]
    reads = Reads(c1="sending")
    wait = _wait(1, deadline=NOW + timedelta(minutes=10), clock=clock)
    assert isinstance(_poll(wait, reads), Pending)
    clock[0] = NOW + timedelta(minutes=5)
    reads.error = BsgServerError("HTTP 503", status=503, reason="503")
    assert isinstance(_poll(wait, reads), Pending)
    clock[0] = NOW + timedelta(minutes=10)
    outcome = _poll(wait, reads)
    assert isinstance(outcome, TimedOut)
    assert outcome.message.startswith(
        f"Timed out at {(NOW + timedelta(minutes=10)).isoformat()} waiting for BSG campaign(s) 1 (sending) "
        "to reach done or stopped; the API has not answered since "
        f"{(NOW + timedelta(minutes=5)).isoformat()} (2 poll(s)), last error: HTTP 503"
    )
    assert len(reads.calls) == 3


def test_a_campaign_never_seen_before_an_outage_is_named_as_unknown():
    reads = Reads()
    reads.error = BsgServerError("HTTP 503", status=503, reason="503")
    outcome = _poll(_wait(4, deadline=NOW), reads)
    assert isinstance(outcome, TimedOut)
    assert "BSG campaign(s) 4 (status unknown)" in outcome.message


def test_a_campaign_done_at_the_deadline_is_a_success_not_a_timeout():
    assert isinstance(_poll(_wait(1, deadline=NOW - timedelta(seconds=1)), Reads(c1="done")), Success)


def test_without_a_deadline_the_wait_never_times_out():
    clock = [NOW]
    wait = _wait(1, clock=clock)
    clock[0] = NOW + timedelta(days=3650)
    assert isinstance(_poll(wait, Reads(c1="sending")), Pending)
