"""BsgExtractCampaignsOperator under the simulator's readings of the vendor's rules (issue 12)."""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
from airflow.providers.common.compat.sdk import DAG, AirflowFailException
from airflow.timetables.interval import CronDataIntervalTimetable

from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env
from tests.dag_helpers import run_dag, task_states, xcom_return_value

UTC = timezone.utc
NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
STRICT = {
    "from_bound": "exclusive",
    "to_bound": "exclusive",
    "created_precision": "subsecond",
    "span_rule": "90d",
}


def _connection(monkeypatch, sim: BsgSimulator, conn_id: str = "bsg_strict") -> str:
    name, value = bsg_connection_env(conn_id, host=sim.url, api_key=sim.api_key, **FAST_RETRY_EXTRAS)
    monkeypatch.setenv(name, value)
    return conn_id


@pytest.fixture
def strict_simulator() -> Iterator[BsgSimulator]:
    """Both bounds exclusive, sub-second created_at, a 90-day span: every reading against the defaults."""
    with BsgSimulator(campaigns=400, seed=21, api_key="test_strict_key_001", now=NOW, **STRICT) as sim:
        yield sim


def _ids(path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("from_bound", ["inclusive", "exclusive"])
@pytest.mark.parametrize("to_bound", ["inclusive", "exclusive"])
@pytest.mark.parametrize("created_precision", ["second", "subsecond"])
def test_files_of_consecutive_days_hold_each_campaign_once(
    monkeypatch, tmp_path, from_bound, to_bound, created_precision
):
    reading = {"from_bound": from_bound, "to_bound": to_bound, "created_precision": created_precision}
    with BsgSimulator(campaigns=200, seed=8, api_key="test_days_key_0001", now=NOW, **reading) as sim:
        conn_id = _connection(monkeypatch, sim)
        days = [datetime(2026, 11, d, tzinfo=UTC) for d in range(1, 5)]
        for day in days:
            for delta in (timedelta(seconds=-1), timedelta(milliseconds=-1), timedelta(0)):
                sim.add_campaign(day + delta)
        written = []
        for lo, hi in itertools.pairwise(days):
            path = tmp_path / f"{lo:%Y-%m-%d}.jsonl"
            summary = BsgExtractCampaignsOperator(
                task_id="extract", output_path=f"file://{path}", bsg_conn_id=conn_id, start=lo, end=hi
            ).execute({})
            ids = _ids(path)
            assert ids == sorted(sim.ground_truth_ids(lo, hi))
            assert summary["records"] == len(ids)
            written.extend(ids)
        assert len(written) == len(set(written))
        assert set(written) == sim.ground_truth_ids(days[0], days[-1])


def test_a_refused_span_shrinks_the_windows_and_the_summary_counts_them(
    monkeypatch, tmp_path, strict_simulator, caplog, capfd
):
    caplog.set_level(logging.INFO)
    conn_id = _connection(monkeypatch, strict_simulator)
    start, end = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)
    path = tmp_path / "7m.jsonl"
    summary = BsgExtractCampaignsOperator(
        task_id="extract", output_path=f"file://{path}", bsg_conn_id=conn_id, start=start, end=end
    ).execute({})
    assert _ids(path) == sorted(strict_simulator.ground_truth_ids(start, end))
    assert summary["windows"] == 3  # 88-day windows after the first refused one: 213 days in 3
    assert sum(r.status == 422 for r in strict_simulator.requests) == 1
    learned = "its span limit is shorter than 3 calendar months"
    out = capfd.readouterr()
    # Airflow 3.0 logs through stdlib logging, 3.3 through structlog to stdout; some setups both.
    assert max(caplog.text.count(learned), (out.out + out.err).count(learned)) == 1


def test_an_api_filtering_on_another_field_fails_the_task_and_writes_nothing(monkeypatch, tmp_path):
    with BsgSimulator(
        campaigns=300, seed=3, api_key="test_field_key_0002", now=NOW, filter_field="start_at"
    ) as sim:
        conn_id = _connection(monkeypatch, sim)
        day = datetime(2026, 11, 1, tzinfo=UTC)
        late = sim.add_campaign(day - timedelta(days=2), start_at=day + timedelta(hours=1))
        path = tmp_path / "day.jsonl"
        path.write_text("previous file\n")
        with pytest.raises(AirflowFailException) as info:
            BsgExtractCampaignsOperator(
                task_id="extract",
                output_path=f"file://{path}",
                bsg_conn_id=conn_id,
                start=day,
                end=day + timedelta(days=1),
            ).execute({})
        message = str(info.value)
        assert f"campaign {late['id']}" in message and "select on created_at" in message
        assert "Nothing was written" in message
        assert f"python -m bsg_provider.check_api --conn-id {conn_id}" in message
        assert path.read_text() == "previous file\n"
        assert [p.name for p in tmp_path.iterdir()] == ["day.jsonl"]


def test_a_daily_dag_under_the_strict_reading_writes_each_day_once(
    airflow_db, monkeypatch, tmp_path, strict_simulator
):
    conn_id = _connection(monkeypatch, strict_simulator)
    for day in (1, 2, 3):
        strict_simulator.add_campaign(datetime(2026, 11, day, tzinfo=UTC))
        strict_simulator.add_campaign(datetime(2026, 11, day, tzinfo=UTC) - timedelta(milliseconds=1))
    with DAG(
        "bsg_strict_reading",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=datetime(2026, 1, 1, tzinfo=UTC),
        catchup=False,
    ) as dag:
        BsgExtractCampaignsOperator(
            task_id="extract",
            output_path=f"file://{tmp_path}/{{{{ ds }}}}.jsonl",
            bsg_conn_id=conn_id,
        )
    written = []
    for day in (2, 3):
        run = run_dag(dag, logical_date=datetime(2026, 11, day, tzinfo=UTC))
        assert task_states(run) == {"extract": "success"}
        ids = _ids(tmp_path / f"2026-11-0{day}.jsonl")
        interval = (run.data_interval_start, run.data_interval_end)
        assert ids == sorted(strict_simulator.ground_truth_ids(*interval))
        assert xcom_return_value(run, "extract")["records"] == len(ids)
        written.extend(ids)
    assert len(written) == len(set(written))
    assert set(written) == strict_simulator.ground_truth_ids(
        datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 3, tzinfo=UTC)
    )


@pytest.mark.parametrize("timestamp_format", ["iso", "plain"])
def test_hourly_files_across_the_repeated_hour_lose_nothing(monkeypatch, tmp_path, timestamp_format):
    """Berlin's 2026-10-25: hourly files hold every campaign; with an offset, each exactly once."""
    with BsgSimulator(
        campaigns=20,
        seed=6,
        api_key="test_dst_key_0002",
        now=NOW,
        timezone="Europe/Berlin",
        timestamp_format=timestamp_format,
        from_bound="exclusive",
        to_bound="exclusive",
    ) as sim:
        name, value = bsg_connection_env(
            "bsg_berlin", host=sim.url, api_key=sim.api_key, api_timezone="Europe/Berlin", **FAST_RETRY_EXTRAS
        )
        monkeypatch.setenv(name, value)
        first = datetime(2026, 10, 24, 23, 30, tzinfo=UTC)
        for minute in range(0, 3 * 60, 7):
            sim.add_campaign(first + timedelta(minutes=minute))
        cuts = [first + timedelta(hours=h) for h in range(4)]
        written = []
        for lo, hi in itertools.pairwise(cuts):
            path = tmp_path / f"{lo:%H%M}.jsonl"
            BsgExtractCampaignsOperator(
                task_id="extract", output_path=f"file://{path}", bsg_conn_id="bsg_berlin", start=lo, end=hi
            ).execute({})
            ids = _ids(path)
            assert sim.ground_truth_ids(lo, hi) <= set(ids)
            written.extend(ids)
        assert set(written) == sim.ground_truth_ids(cuts[0], cuts[-1])
        if timestamp_format == "iso":
            assert len(written) == len(set(written))
        assert all(r.status == 200 for r in sim.requests)
