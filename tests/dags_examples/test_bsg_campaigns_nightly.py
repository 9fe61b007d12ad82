"""The nightly load, run by ``dag.test()`` against the simulator into an SQLite warehouse."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.dag_helpers import run_dag, task_states, xcom_return_value
from tests.dags_examples.conftest import without_retries

#: The three days loaded (each run's data interval), all complete before the simulator's "now".
DAYS = [datetime(2025, 6, day, tzinfo=timezone.utc) for day in (10, 11, 12)]
ONE_DAY = timedelta(days=1)


def run_day(dag, day: datetime):
    """Run the DAG for the data interval ``[day, day + 1)``: dag.test() infers it from the end."""
    dag_run = run_dag(dag, logical_date=day + ONE_DAY)
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == (day, day + ONE_DAY)
    assert task_states(dag_run) == {"extract_campaigns": "success", "load_campaigns": "success"}
    return xcom_return_value(dag_run, "extract_campaigns"), xcom_return_value(dag_run, "load_campaigns")


def warehouse_rows(database: Path) -> dict[int, tuple]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT id, status, sent, delivered FROM bsg_campaigns")
        return {row[0]: row[1:] for row in rows}


def test_three_nights_load_exactly_the_campaigns_and_a_rerun_duplicates_nothing(
    examples, example_simulator, example_env, airflow_db, tmp_path
):
    sim = example_simulator
    dag = without_retries(examples.dags["bsg_campaigns_nightly"])

    loaded_so_far: set[int] = set()
    for day in DAYS:
        extract, load = run_day(dag, day)
        # Each file holds the day and, through the one-day lookback, the day before.
        with_lookback = sim.ground_truth_ids(day - ONE_DAY, day + ONE_DAY)
        assert extract["records"] == len(with_lookback) > 0
        assert extract["path"] == f"file://{tmp_path}/data/campaigns/{day:%Y-%m-%d}.jsonl"
        assert Path(tmp_path, "data", "campaigns", f"{day:%Y-%m-%d}.jsonl").is_file()
        assert load["upserted"] == extract["records"]
        assert load["new_rows"] == len(set(with_lookback) - loaded_so_far)
        loaded_so_far |= set(with_lookback)
        assert load["table_rows"] == len(loaded_so_far)

    rows = warehouse_rows(example_env)
    assert set(rows) == set(sim.ground_truth_ids(DAYS[0] - ONE_DAY, DAYS[-1] + ONE_DAY))
    for campaign in sim.ground_truth(DAYS[0] - ONE_DAY, DAYS[-1] + ONE_DAY):
        statistics = campaign["statistics"]
        assert rows[campaign["id"]] == (campaign["status"], statistics["sent"], statistics["delivered"])

    # A status change since the last run, then a rerun of the last day: updated in place, no new row.
    changed = sim.ground_truth(DAYS[-1], DAYS[-1] + ONE_DAY)[0]["id"]
    new_status = "stopped" if rows[changed][0] != "stopped" else "done"
    sim.set_status(changed, new_status)
    _, rerun = run_day(dag, DAYS[-1])
    assert rerun["new_rows"] == 0
    assert rerun["table_rows"] == len(rows)
    after = warehouse_rows(example_env)
    assert len(after) == len(rows)
    assert after[changed][0] == new_status
