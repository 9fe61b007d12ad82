"""BsgHook.iter_messages and get_campaign_details against the simulator over real HTTP."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bsg_provider.errors import BsgConfigError, BsgNotFoundError
from bsg_provider.extraction.windows import ceil_to_second
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env

UTC = timezone.utc
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
READINGS = [
    dict(zip(("from_bound", "to_bound", "created_precision", "span_rule"), values, strict=True))
    for values in (
        ("inclusive", "inclusive", "second", "calendar"),
        ("exclusive", "exclusive", "subsecond", "90d"),
        ("inclusive", "exclusive", "subsecond", "calendar"),
    )
]


def _connect(monkeypatch: pytest.MonkeyPatch, sim: BsgSimulator) -> BsgHook:
    name, value = bsg_connection_env("bsg_msg", host=sim.url, api_key=sim.api_key, **FAST_RETRY_EXTRAS)
    monkeypatch.setenv(name, value)
    return BsgHook("bsg_msg")


def _truth(sim: BsgSimulator, start: datetime, end: datetime, campaign_id: int | None = None) -> list[int]:
    # The extraction covers [start, end) rounded up to whole seconds (docs/operator.md).
    return sim.message_ground_truth_ids(ceil_to_second(start), ceil_to_second(end), campaign_id)


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[BsgSimulator, BsgHook]]:
    with BsgSimulator(
        campaigns=300, seed=5, api_key="test_messages_hook", now=NOW, messages_per_campaign=20
    ) as sim:
        yield sim, _connect(monkeypatch, sim)


def _campaigns_with_messages(sim: BsgSimulator, start: datetime, end: datetime) -> list[int]:
    return sorted(sim.ground_truth_ids(start, end))


@pytest.mark.parametrize("reading", READINGS, ids=lambda r: "-".join(str(v)[:4] for v in r.values()))
def test_consecutive_intervals_give_every_message_exactly_once(monkeypatch, reading):
    with BsgSimulator(
        campaigns=300, seed=12, api_key="test_messages_hook", now=NOW, messages_per_campaign=10, **reading
    ) as sim:
        hook = _connect(monkeypatch, sim)
        c0 = datetime(2026, 6, 1, tzinfo=UTC)
        # More than three months: several windows, and a 90-day rule refuses the first one.
        cuts = [c0, c0 + timedelta(days=100), c0 + timedelta(days=100, hours=7), NOW - timedelta(days=1)]
        seen: list[int] = []
        for lo, hi in itertools.pairwise(cuts):
            page_size = 15 if hi - lo < timedelta(days=2) else 500
            got = [m["id"] for m in hook.iter_messages(lo, hi, page_size=page_size)]
            assert len(got) == len(set(got)), "a message came twice within one run"
            assert sorted(got) == _truth(sim, lo, hi), (lo, hi)
            seen.extend(got)
        assert len(seen) == len(set(seen)) > 1000, "a message landed in two consecutive intervals"
        assert sorted(seen) == _truth(sim, cuts[0], cuts[-1])
        refused = [r for r in sim.requests if r.status == 422]
        assert len(refused) == (1 if reading["span_rule"] == "90d" else 0)


def test_one_campaign_and_a_list_of_campaigns(served):
    sim, hook = served
    start, end = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)
    ids = _campaigns_with_messages(sim, start, end)[:3]
    one = [m["id"] for m in hook.iter_messages(start, end, campaign_id=ids[0])]
    assert one == _truth(sim, start, end, ids[0]) and len(one) == 20
    listed = [r for r in sim.requests if r.endpoint == "messages"]
    assert listed and all(r.query.get("filter[campaign_id]") == str(ids[0]) for r in listed)
    sim.clear_requests()
    # A repeated id is read once; digit strings are ids too.
    got = [m["id"] for m in hook.iter_messages(start, end, campaign_id=[ids[0], str(ids[1]), ids[2], ids[0]])]
    expected = sorted(itertools.chain.from_iterable(_truth(sim, start, end, i) for i in ids))
    assert sorted(got) == expected and len(got) == len(set(got)) == 60
    sent = {r.query.get("filter[campaign_id]") for r in sim.requests if r.endpoint == "messages"}
    assert sent == {str(i) for i in ids}


def test_bad_arguments_fail_before_any_request(served):
    sim, hook = served
    start, end = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)
    sim.clear_requests()
    for kwargs, message in [
        ({"page_size": 14}, r"page_size must be from 15 to 500"),
        ({"campaign_id": []}, r"campaign_id is an empty list"),
        ({"campaign_id": [1, "x"]}, r"A campaign id must be a positive integer, got 'x'"),
    ]:
        with pytest.raises(BsgConfigError, match=message):
            next(hook.iter_messages(start, end, **kwargs))
    assert sim.requests == []
    # Messages take pages of 15, campaigns do not.
    with pytest.raises(BsgConfigError, match=r"page_size must be from 30 to 500"):
        next(hook.iter_campaigns(start, end, page_size=15))


def test_retries_and_drift_mid_paging_keep_the_result_exact(served):
    sim, hook = served
    start, end = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 7, 1, tzinfo=UTC)
    before = set(_truth(sim, start, end))
    sim.inject("status", endpoint="messages", status=503, skip=1)
    sim.inject("malformed_json", endpoint="messages", skip=3)
    sim.inject("delete", endpoint="messages", skip=5, count=2)
    sim.inject("insert", endpoint="messages", skip=8, count=3)
    got = [m["id"] for m in hook.iter_messages(start, end, page_size=50)]
    assert len(got) == len(set(got))
    after = set(_truth(sim, start, end))
    assert len(after - before) == 3 and len(before - after) == 2
    # Every message there at the end, once; a deleted one only if it was read before it went.
    assert after <= set(got) <= after | before
    assert hook.counters.retries >= 2


def test_campaign_details_equal_the_counts_of_its_messages(served):
    sim, hook = served
    for campaign_id in _campaigns_with_messages(sim, datetime(2026, 1, 1, tzinfo=UTC), NOW)[:5]:
        details = hook.get_campaign_details(campaign_id)
        counts: dict[str, Any] = sim.message_counts(campaign_id)
        assert details["id"] == campaign_id
        assert details["statistics"] == counts["statistics"]
        for key in ("total_messages", "total_phones", "total_price", "currency"):
            assert details[key] == counts[key], key
        assert sum(details["statistics"].values()) == details["total_messages"] == 20
    with pytest.raises(BsgNotFoundError):
        hook.get_campaign_details(987654321)
    sim.inject("status", endpoint="detail", status=429)
    assert hook.get_campaign_details(campaign_id)["total_messages"] == 20
