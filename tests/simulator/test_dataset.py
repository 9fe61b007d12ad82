"""The generated data set and the ground-truth helpers."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from itertools import pairwise

import pytest

from bsg_provider.simulator import BsgSimulator

from .helpers import NOW, SECOND, UTC

ALL = (NOW - timedelta(days=401), NOW + SECOND)
TERMINAL = {"done", "stopped", "spam", "paused"}


def _everything(sim: BsgSimulator) -> list[dict]:
    return [row for kind in ("sms", "rcs", "whatsapp") for row in sim.ground_truth(*ALL, kind)]


def test_same_seed_and_now_give_the_same_campaigns() -> None:
    first = _everything(BsgSimulator(campaigns=500, seed=3, now=NOW))
    assert first == _everything(BsgSimulator(campaigns=500, seed=3, now=NOW))
    assert first != _everything(BsgSimulator(campaigns=500, seed=4, now=NOW))
    assert len(first) == 500


def test_shape_of_the_generated_data() -> None:
    rows = _everything(BsgSimulator(campaigns=2000, seed=11, now=NOW))
    created = {row["id"]: datetime.fromisoformat(row["created_at"] + "+00:00") for row in rows}
    ids = sorted(created)
    assert ids[0] > 53_000_000
    assert all(created[a] <= created[b] for a, b in pairwise(ids))  # ids grow with created_at
    assert any(b - a > 1 for a, b in pairwise(ids))  # ... with gaps
    assert all(NOW - timedelta(days=400) <= at < NOW for at in created.values())
    per_second = Counter(created.values())
    assert any(count > 1 for count in per_second.values()), "some campaigns must share a second"
    midnights = [at for at in created.values() if at.time() == datetime.min.time()]
    assert len(midnights) >= 5
    assert any(per_second[at] > 1 for at in midnights), "a tie exactly at midnight"
    types = Counter(row["message_type"] for row in rows)
    assert types["sms"] > types["rcs"] > 0 and types["whatsapp"] > 0
    statuses = Counter(row["status"] for row in rows)
    assert set(statuses) <= TERMINAL and statuses.most_common(1)[0][0] == "done"
    assert statuses["stopped"] and statuses["spam"]
    for row in rows:
        assert 3 <= len(row["sender"]) <= 11
        assert row["statistics"]["sent"] >= row["statistics"]["delivered"] >= 0
        assert row["currency"] in (None, "USD", "EUR")
        assert row["calculated_price"] is None or isinstance(row["calculated_price"], float)
        assert row["alternative_channels"] is None
        if row["status"] in ("done",):
            assert row["real_start_at"] and row["finished_at"]
        if row["status"] == "spam":
            assert row["real_start_at"] is None and row["finished_at"] is None
    names = {row["name"].split(" / ")[0] for row in rows}
    assert "SMS api campaign" in names and len(names) > 3


def test_ground_truth_is_half_open(sim: BsgSimulator) -> None:
    start = NOW + timedelta(days=5)
    end = start + timedelta(minutes=1)
    at_start, inside, at_end = (sim.add_campaign(t)["id"] for t in (start, start + SECOND, end))
    before = sim.add_campaign(start - SECOND)["id"]
    assert sim.ground_truth_ids(start, end) == {at_start, inside}
    assert [row["id"] for row in sim.ground_truth(start, end)] == [at_start, inside]
    assert sim.ground_truth_ids(start - SECOND, end + SECOND) == {before, at_start, inside, at_end}
    # Fractional bounds: a campaign at second s is at or after start only if s >= start.
    assert sim.ground_truth_ids(start + timedelta(milliseconds=1), end) == {inside}
    assert sim.ground_truth_ids(start, end + timedelta(milliseconds=1)) == {at_start, inside, at_end}
    assert sim.ground_truth_ids(start, start) == set()


def test_ground_truth_accepts_any_offset_and_rejects_naive(sim: BsgSimulator) -> None:
    from zoneinfo import ZoneInfo

    start = NOW - timedelta(days=20)
    berlin = ZoneInfo("Europe/Berlin")
    assert sim.ground_truth_ids(start, NOW) == sim.ground_truth_ids(
        start.astimezone(berlin), NOW.astimezone(berlin)
    )
    with pytest.raises(ValueError):
        sim.ground_truth_ids(start.replace(tzinfo=None), NOW)


def test_clock_is_pinned_but_moves(sim: BsgSimulator) -> None:
    now = sim.now()
    assert now.tzinfo is not None and now.utcoffset() == timedelta(0)
    assert NOW <= now < NOW + timedelta(minutes=5)
    assert sim.now() >= now
    unpinned = BsgSimulator(campaigns=1)
    assert abs((unpinned.now() - datetime.now(UTC)).total_seconds()) < 2


def test_large_data_set_is_built_lazily() -> None:
    # What keeps start-up fast (timed by benchmarks/, not here): no campaign is rendered or even
    # materialized until a request needs it.
    sim = BsgSimulator(campaigns=50_000, seed=1)
    campaigns = [sim.dataset.get(i) for i in sim.dataset.ids()]
    assert len(campaigns) == 50_000
    assert all(c is not None and c.bits is not None and c.cached is None for c in campaigns)
