"""BsgExtractCampaignsOperator in a real Airflow: DAGs run with dag.test() on the SQLite metadata database."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime, timedelta, timezone

from airflow.providers.common.compat.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from tests.dag_helpers import run_dag, task_states, xcom_return_value

UTC = timezone.utc
START_DATE = datetime(2025, 1, 1, tzinfo=UTC)


def read_ids(path) -> list[int]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_three_daily_runs_write_each_day_exactly_once(airflow_db, pinned_simulator, pinned_conn_id, tmp_path):
    with DAG(
        "bsg_daily_extract",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=START_DATE,
        catchup=False,
    ) as dag:
        BsgExtractCampaignsOperator(
            task_id="extract",
            output_path=f"file://{tmp_path}/campaigns/{{{{ ds }}}}.jsonl",
            bsg_conn_id=pinned_conn_id,
        )

    files: dict[str, list[int]] = {}
    for day in (1, 2, 3):
        logical_date = datetime(2025, 6, day, tzinfo=UTC)
        run = run_dag(dag, logical_date=logical_date)
        assert task_states(run) == {"extract": "success"}
        # A data-interval timetable's run covers the day before its logical date.
        start, end = logical_date - timedelta(days=1), logical_date
        assert (run.data_interval_start, run.data_interval_end) == (start, end)
        ids = read_ids(tmp_path / "campaigns" / f"2025-06-0{day}.jsonl")
        assert ids == sorted(pinned_simulator.ground_truth_ids(start, end))
        assert ids, "every day of the test holds campaigns"
        summary = xcom_return_value(run, "extract")
        assert summary["records"] == len(ids)
        assert summary["interval_start"] == run.data_interval_start.isoformat()
        assert summary["interval_end"] == run.data_interval_end.isoformat()
        files[f"2025-06-0{day}"] = ids

    every_id = [campaign_id for ids in files.values() for campaign_id in ids]
    assert len(every_id) == len(set(every_id)), "no campaign in two files"
    assert set(every_id) == pinned_simulator.ground_truth_ids(
        datetime(2025, 5, 31, tzinfo=UTC), datetime(2025, 6, 3, tzinfo=UTC)
    ), "no campaign missing between the files"


def test_a_cron_schedule_works_with_the_documented_start_and_end(
    airflow_db, pinned_simulator, pinned_conn_id, tmp_path
):
    with DAG("bsg_cron_extract", schedule="@daily", start_date=START_DATE, catchup=False) as dag:
        BsgExtractCampaignsOperator(
            task_id="extract",
            output_path=f"file://{tmp_path}/{{{{ ds }}}}.csv",
            start="{{ data_interval_start - macros.timedelta(days=1) }}",
            end="{{ data_interval_end }}",
            bsg_conn_id=pinned_conn_id,
        )
    run = run_dag(dag, logical_date=datetime(2025, 6, 2, tzinfo=UTC))

    assert run.data_interval_start == run.data_interval_end, "Airflow 3's cron schedule: zero width"
    assert task_states(run) == {"extract": "success"}
    summary = xcom_return_value(run, "extract")
    start, end = datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC)
    assert (summary["interval_start"], summary["interval_end"]) == (start.isoformat(), end.isoformat())
    with open(tmp_path / "2025-06-02.csv", newline="") as handle:
        ids = [int(row["id"]) for row in csv.DictReader(handle)]
    assert ids == sorted(pinned_simulator.ground_truth_ids(start, end))


def test_a_cron_schedule_alone_fails_at_once_without_retrying(
    airflow_db, pinned_simulator, pinned_conn_id, tmp_path
):
    # The exact message is asserted in test_campaigns.py; here: a real run fails for good, on its first try.
    with DAG("bsg_cron_no_interval", schedule="@daily", start_date=START_DATE, catchup=False) as dag:
        BsgExtractCampaignsOperator(
            task_id="extract",
            output_path=f"file://{tmp_path}/{{{{ ds }}}}.jsonl",
            bsg_conn_id=pinned_conn_id,
            retries=3,
            retry_delay=timedelta(seconds=0),
        )
    run = run_dag(dag, logical_date=datetime(2025, 6, 1, tzinfo=UTC))

    (task_instance,) = run.get_task_instances()
    assert str(task_instance.state) == "failed"
    assert task_instance.try_number == 1, "AirflowFailException: no retry"
    assert pinned_simulator.count("any") == 0
    assert list(tmp_path.iterdir()) == []


def test_an_object_storage_path_is_accepted_as_it_is(airflow_db, pinned_simulator, pinned_conn_id, tmp_path):
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    target = ObjectStoragePath(f"file://{tmp_path}/fixed.csv.gz")
    with DAG(
        "bsg_path_object",
        schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=START_DATE,
        catchup=False,
    ) as dag:
        BsgExtractCampaignsOperator(task_id="extract", output_path=target, bsg_conn_id=pinned_conn_id)
    run = run_dag(dag, logical_date=datetime(2025, 6, 5, tzinfo=UTC))

    assert task_states(run) == {"extract": "success"}
    summary = xcom_return_value(run, "extract")
    assert summary["path"] == str(target) and summary["format"] == "csv+gzip"
    with gzip.open(tmp_path / "fixed.csv.gz", "rt", newline="") as handle:
        ids = [int(row["id"]) for row in csv.DictReader(handle)]
    assert ids == sorted(pinned_simulator.ground_truth_ids(run.data_interval_start, run.data_interval_end))
