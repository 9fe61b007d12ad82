"""Metrics reach Airflow's Stats: a recording backend stands in for StatsD/OpenTelemetry."""

from __future__ import annotations

from datetime import timedelta

from bsg_provider.hooks import metrics
from bsg_provider.hooks.bsg import BsgHook


def test_counters_and_timers_after_a_run_with_retries(simulator, bsg_conn_id, recording_stats):
    stats = recording_stats
    simulator.inject("status", endpoint="list", status=503, skip=1)
    simulator.inject("status", endpoint="list", status=429, skip=2)
    simulator.inject("reset", endpoint="list", skip=3)
    hook = BsgHook(bsg_conn_id)
    end = simulator.now()
    start = end - timedelta(days=120)
    records = sum(1 for _ in hook.iter_campaigns(start, end, page_size=30))
    assert records == len(simulator.ground_truth_ids(start, end))

    lists = simulator.count("list")
    assert stats.total(metrics.REQUESTS, endpoint="list") == lists
    assert stats.total(metrics.REQUESTS, endpoint="list", status_class="5xx") == 1
    assert stats.total(metrics.REQUESTS, endpoint="list", status_class="4xx") == 1
    assert stats.total(metrics.REQUESTS, endpoint="list", status_class="none") == 1
    assert stats.total(metrics.REQUESTS, endpoint="list", status_class="2xx") == lists - 3
    assert stats.total(metrics.REQUESTS, endpoint="login", status_class="2xx") == 1
    assert stats.total(metrics.RETRIES) == 3
    assert stats.total(metrics.RETRIES, reason="503") == 1
    assert stats.total(metrics.RETRIES, reason="429") == 1
    assert stats.total(metrics.RETRIES, reason="connection") == 1
    assert stats.total(metrics.LOGINS) == 1
    assert stats.total(metrics.RECORDS_EXTRACTED, campaign_type="sms") == records
    durations = [t for t in stats.timings if t[0] == metrics.REQUEST_DURATION]
    assert len(durations) == lists + 1
    assert all(ms >= 0 for _, ms, _ in durations)
    assert {tags["endpoint"] for _, _, tags in durations} == {"login", "list"}


def test_metric_names_share_one_prefix():
    names = [v for k, v in vars(metrics).items() if k.isupper() and k != "PREFIX"]
    assert names and all(n.startswith(metrics.PREFIX + ".") for n in names)
