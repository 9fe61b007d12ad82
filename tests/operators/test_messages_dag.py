"""BsgExtractMessagesOperator in a real Airflow: a DAG file parsed and run with dag.test() on SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bsg_provider.simulator import BsgSimulator
from tests.dag_helpers import run_dag, task_states, xcom_return_value
from tests.operators.conftest import MESSAGES_NOW as NOW
from tests.operators.conftest import serving_messages
from tests.operators.test_campaigns_runtime_args import parse_folder

UTC = timezone.utc
PII_KEY = "dag-test-pii-key-5e0b7c2a9d14"

#: Yesterday's messages by the data interval, and all messages of campaigns an upstream task names.
DAG_FILE = """
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task
from airflow.timetables.interval import CronDataIntervalTimetable

from bsg_provider.operators.messages import BsgExtractMessagesOperator


@dag(
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
)
def bsg_messages_daily():
    @task
    def campaigns():
        return {campaigns!r}

    BsgExtractMessagesOperator(
        task_id="daily",
        output_path="file://{out}/daily/{{{{ ds }}}}.csv.gz",
        bsg_conn_id="bsg_msg_dag",
    )
    BsgExtractMessagesOperator(
        task_id="by_campaign",
        output_path="file://{out}/campaigns.jsonl",
        campaign_id=campaigns(),
        phone="drop",
        text="keep",
        bsg_conn_id="bsg_msg_dag",
        retries=2,
        retry_delay=timedelta(seconds=0),
    )


bsg_messages_daily()
"""


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[BsgSimulator]:
    with serving_messages(monkeypatch, "bsg_msg_dag", PII_KEY, seed=8, messages_per_campaign=25) as simulator:
        yield simulator


def test_a_daily_messages_dag_with_campaign_ids_from_xcom(airflow_db, sim, tmp_path: Path):
    import gzip

    day = datetime(2026, 9, 14, tzinfo=UTC)
    campaigns = sorted(sim.ground_truth_ids(day - timedelta(days=30), day))[:3]
    assert len(campaigns) == 3
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "bsg_messages_daily.py").write_text(DAG_FILE.format(campaigns=campaigns, out=tmp_path / "out"))
    bag = parse_folder(folder)
    assert bag.import_errors == {}

    run = run_dag(bag.dags["bsg_messages_daily"], logical_date=day)

    assert task_states(run) == {"campaigns": "success", "daily": "success", "by_campaign": "success"}
    daily = tmp_path / "out" / "daily" / "2026-09-14.csv.gz"
    lines = gzip.decompress(daily.read_bytes()).decode().splitlines()
    header, rows = lines[0].split(","), lines[1:]
    assert "phone_hash" in header and "text" not in header
    ids = sorted(int(row.split(",", 1)[0]) for row in rows)
    assert ids == sim.message_ground_truth_ids(day - timedelta(days=1), day) and ids
    assert xcom_return_value(run, "daily")["records"] == len(ids)

    records = [json.loads(line) for line in (tmp_path / "out" / "campaigns.jsonl").read_text().splitlines()]
    everything = datetime(2020, 1, 1, tzinfo=UTC), NOW + timedelta(days=1)
    expected = sorted(i for c in campaigns for i in sim.message_ground_truth_ids(*everything, c))
    assert [r["id"] for r in records] == expected and len(expected) == 75
    assert all("phone" not in r and "phone_hash" not in r and r["text"] for r in records)
    summary = xcom_return_value(run, "by_campaign")
    assert summary["records"] == 75 and summary["campaigns"] == 3 and summary["phone"] == "drop"
