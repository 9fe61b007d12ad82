"""
BsgHook against every reading of the vendor's unstated list rules (issue 12).

Each reading is a simulator option: bound inclusiveness, sub-second created_at, the span
rule, the filter field, the filter formats, meta.page.offset. The extraction must be exact
under all of them, with campaigns placed exactly on every cut point.
"""

from __future__ import annotations

import itertools
import logging
from datetime import datetime, timedelta, timezone

import pytest

from bsg_provider.errors import BsgAssumptionError
from bsg_provider.extraction.windows import ceil_to_second
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env

UTC = timezone.utc
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
READINGS = [
    {"from_bound": f, "to_bound": t, "created_precision": p, "span_rule": s}
    for f, t, p, s in itertools.product(
        ("inclusive", "exclusive"), ("inclusive", "exclusive"), ("second", "subsecond"), ("calendar", "90d")
    )
]


def _name(reading: dict) -> str:
    return "-".join(str(v)[:4] for v in reading.values())


def _connect(monkeypatch, sim: BsgSimulator, tz: str = "UTC") -> BsgHook:
    name, value = bsg_connection_env(
        "bsg_reading", host=sim.url, api_key=sim.api_key, api_timezone=tz, **FAST_RETRY_EXTRAS
    )
    monkeypatch.setenv(name, value)
    return BsgHook("bsg_reading")


def _ids(hook: BsgHook, start: datetime, end: datetime, **kwargs) -> list[int]:
    return [c["id"] for c in hook.iter_campaigns(start, end, **kwargs)]


def _truth(sim: BsgSimulator, start: datetime, end: datetime) -> set[int]:
    # The extraction covers [start, end) rounded up to whole seconds (docs/operator.md).
    return sim.ground_truth_ids(ceil_to_second(start), ceil_to_second(end))


def _log_count(caplog, capfd, text: str) -> int:
    """How often ``text`` was logged: via stdlib logging (Airflow 3.0), structlog (3.3), or both."""
    out = capfd.readouterr()
    return max(caplog.text.count(text), (out.out + out.err).count(text))


@pytest.mark.parametrize("reading", READINGS, ids=_name)
def test_consecutive_intervals_are_exact_under_every_reading(monkeypatch, caplog, capfd, reading):
    with BsgSimulator(campaigns=300, seed=12, api_key="test_readings_key", now=NOW, **reading) as sim:
        hook = _connect(monkeypatch, sim)
        c0 = datetime(2026, 7, 1, tzinfo=UTC)
        # 100 days: one window of 3 calendar months (92 days, refused by a 90-day rule) and the rest.
        cuts = [c0, c0 + timedelta(days=100), c0 + timedelta(days=101), c0 + timedelta(days=102)]
        edges = {*cuts[1:-1], *(w.end for w in hook.plan(cuts[0], cuts[1]).windows)}
        for edge in edges:
            for delta in (-timedelta(seconds=1), -MS, timedelta(0), MS):
                sim.add_campaign(edge + delta)
        seen: list[int] = []
        with caplog.at_level(logging.WARNING):
            for lo, hi in itertools.pairwise(cuts):
                got = _ids(hook, lo, hi, page_size=30)
                assert len(got) == len(set(got)), "a campaign came twice within one run"
                assert set(got) == _truth(sim, lo, hi), (lo, hi)
                seen.extend(got)
        assert len(seen) == len(set(seen)), "a campaign landed in two consecutive intervals"
        assert set(seen) == _truth(sim, cuts[0], cuts[-1])
        assert all(sim.created_at(i) >= cuts[0] for i in seen)
        refused = [r for r in sim.requests if r.status == 422]
        learned = _log_count(caplog, capfd, "its span limit is shorter than 3 calendar months")
        if reading["span_rule"] == "90d":
            assert len(refused) == learned == 1, "one refusal, said once, then shorter windows"
        else:
            assert refused == [] and learned == 0


@pytest.mark.parametrize("timestamp_format", ["iso", "plain"])
@pytest.mark.parametrize("bounds", [("inclusive", "inclusive"), ("exclusive", "exclusive")], ids="-".join)
def test_hourly_intervals_across_the_repeated_hour_of_a_wall_clock_api(monkeypatch, timestamp_format, bounds):
    """Europe/Berlin, 2026-10-25: 02:00-02:59 happens twice (00:00Z-01:00Z and 01:00Z-02:00Z)."""
    with BsgSimulator(
        campaigns=30,
        seed=4,
        api_key="test_dst_key_0001",
        now=NOW,
        timezone="Europe/Berlin",
        timestamp_format=timestamp_format,
        from_bound=bounds[0],
        to_bound=bounds[1],
    ) as sim:
        hook = _connect(monkeypatch, sim, tz="Europe/Berlin")
        first = datetime(2026, 10, 24, 23, 0, tzinfo=UTC)
        for minute in range(0, 4 * 60, 5):
            sim.add_campaign(first + timedelta(minutes=minute))
        cuts = [first + timedelta(minutes=30 * i) for i in range(9)]
        for cut in cuts:
            sim.add_campaign(cut - timedelta(seconds=1))
        files = []
        for lo, hi in itertools.pairwise(cuts):
            got = _ids(hook, lo, hi)
            assert len(got) == len(set(got))
            files.append(set(got))
            assert _truth(sim, lo, hi) <= set(got), "nothing is lost"
        every = [i for ids in files for i in ids]
        assert set(every) == _truth(sim, cuts[0], cuts[-1])
        twice = {i for i in every if every.count(i) > 1}
        if timestamp_format == "iso":
            assert twice == set(), "with an offset, each campaign is in exactly one interval"
        else:
            # Without an offset a wall time of the repeated hour names two instants: documented.
            repeated = (datetime(2026, 10, 25, 0, tzinfo=UTC), datetime(2026, 10, 25, 2, tzinfo=UTC))
            assert twice and all(repeated[0] <= sim.created_at(i) < repeated[1] for i in twice)
        whole = _ids(hook, cuts[0], cuts[-1])
        assert len(whole) == len(set(whole)) and set(whole) == _truth(sim, cuts[0], cuts[-1])
        assert all(r.status == 200 for r in sim.requests), "no inverted or refused window"


def test_a_live_window_under_steady_inserts_completes_without_rescans(monkeypatch, caplog, capfd):
    with BsgSimulator(campaigns=3000, seed=9, api_key="test_busy_key_0001") as sim:
        hook = _connect(monkeypatch, sim)
        end = sim.now()
        start = end - timedelta(days=20)
        before = sim.ground_truth_ids(start, end)
        assert len(before) > 4 * 30
        sim.inject("insert", endpoint="list", times=None, count=1)
        with caplog.at_level(logging.INFO):
            got = _ids(hook, start, end, page_size=30)
        assert len(got) == len(set(got))
        assert before <= set(got) <= sim.ground_truth_ids(start, end)
        assert _log_count(caplog, capfd, "reading the window again") == 0
        # Pages overlap by one row; each request appended one campaign, read as well if it fell inside.
        assert sim.count("list") <= 2 + (len(got) + sim.count("list")) // 29


def test_a_delete_in_a_live_window_under_inserts_still_rescans(monkeypatch):
    with BsgSimulator(campaigns=3000, seed=9, api_key="test_busy_key_0002") as sim:
        hook = _connect(monkeypatch, sim)
        end = sim.now()
        start = end - timedelta(days=20)
        before = sim.ground_truth_ids(start, end)
        sim.inject("insert", endpoint="list", times=None, count=1)
        sim.inject("delete", endpoint="list", skip=1, count=1)
        got = _ids(hook, start, end, page_size=30)
        assert len(got) == len(set(got))
        assert sim.ground_truth_ids(start, end) & before <= set(got)


def test_an_api_filtering_on_start_at_fails_before_anything_is_yielded(monkeypatch):
    with BsgSimulator(
        campaigns=300, seed=3, api_key="test_field_key_0001", now=NOW, filter_field="start_at"
    ) as sim:
        hook = _connect(monkeypatch, sim)
        day = datetime(2026, 11, 1, tzinfo=UTC)
        scheduled = sim.add_campaign(day - timedelta(days=5), start_at=day + timedelta(hours=3))
        with pytest.raises(BsgAssumptionError) as info:
            list(hook.iter_pages(hook.plan(day, day + timedelta(days=1))))
        message = str(info.value)
        assert info.value.assumption == "filter_field"
        assert f"campaign {scheduled['id']}" in message
        assert "filter[from]='2026-10-31 23:59:59' filter[to]='2026-11-02 00:00:00'" in message
        assert f"created_at {scheduled['created_at']!r}" in message
        assert f"start_at {scheduled['start_at']!r}" in message
        assert "select on created_at" in message
        assert "python -m bsg_provider.check_api --conn-id bsg_reading" in message


def test_pages_without_meta_page_offset_are_read(monkeypatch):
    with BsgSimulator(
        campaigns=800, seed=5, api_key="test_meta_key_0001", now=NOW, page_offset_in_meta=False
    ) as sim:
        hook = _connect(monkeypatch, sim)
        start, end = NOW - timedelta(days=120), NOW - timedelta(days=1)
        got = _ids(hook, start, end, page_size=30)
        assert len(got) == len(set(got)) and set(got) == sim.ground_truth_ids(start, end)


def test_fault_free_requests_cost_at_most_one_more_per_window_than_before(monkeypatch):
    """Before issue 12: one request per page of [start, end - 1 s] per window, 3 calendar months each."""
    with BsgSimulator(campaigns=3000, seed=7, api_key="test_count_key_0001", now=NOW) as sim:
        hook = _connect(monkeypatch, sim)
        start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)
        _ids(hook, start, end, page_size=100)
        month = [datetime(2026, m, 1, tzinfo=UTC) for m in (1, 4, 7)]
        old_windows = [(month[0], month[1]), (month[1], month[2])]
        old_windows.append((datetime(2026, 7, 1, tzinfo=UTC), end))
        before = sum(max(1, -(-len(sim.ground_truth_ids(lo, hi)) // 100)) for lo, hi in old_windows)
        assert before <= sim.count("list") <= before + len(old_windows)
        assert sim.count("login") == 1
