"""The downstream example: queued by the nightly load's asset event, it reports the file the event names."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.dag_helpers import register_dag, run_dag, task_states, xcom_return_value
from tests.dags_examples.conftest import without_retries

DAY = datetime(2025, 6, 12, tzinfo=timezone.utc)


def test_report_is_scheduled_on_the_campaigns_asset_alone(examples):
    from airflow.providers.common.compat.sdk import Asset

    report = examples.dags["bsg_campaigns_report"]
    nightly = examples.dags["bsg_campaigns_nightly"]
    asset = Asset("bsg://bsg_default/campaigns")
    assert list(report.timetable.asset_condition.objects) == [asset]
    # The nightly load names no outlet: the operator's default asset is the link.
    assert nightly.get_task("extract_campaigns").outlets == [asset]


def test_the_nightly_load_queues_the_report_which_reads_the_file_of_the_event(
    examples, example_simulator, example_env, airflow_db
):
    from airflow.models.asset import AssetDagRunQueue
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    report = examples.dags["bsg_campaigns_report"]
    register_dag(report)
    with create_session() as session:
        session.query(DagModel).filter_by(dag_id="bsg_campaigns_report").update({"is_paused": False})
        session.query(AssetDagRunQueue).filter_by(target_dag_id="bsg_campaigns_report").delete()

    nightly = run_dag(
        without_retries(examples.dags["bsg_campaigns_nightly"]), logical_date=DAY + timedelta(days=1)
    )
    assert set(task_states(nightly).values()) == {"success"}
    extract = xcom_return_value(nightly, "extract_campaigns")

    with create_session() as session:
        assert session.query(AssetDagRunQueue).filter_by(target_dag_id="bsg_campaigns_report").count() == 1

    run = run_dag(without_retries(report), logical_date=DAY + timedelta(days=1, hours=1))
    assert task_states(run) == {"report_campaigns": "success"}
    result = xcom_return_value(run, "report_campaigns")
    lines = Path(extract["path"].removeprefix("file://")).read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert result["path"] == extract["path"]
    assert result["campaigns"] == extract["records"] == len(records) > 0
    assert (result["data_interval_start"], result["data_interval_end"]) == (
        extract["interval_start"],
        extract["interval_end"],
    )
    assert result["sent"] == sum(record["statistics"]["sent"] for record in records)
    assert sum(result["by_status"].values()) == len(records)
    with create_session() as session:
        # Asked last: the question leaves the session in a state dag.test() cannot reuse.
        _, triggered = DagModel.dags_needing_dagruns(session)
        assert "bsg_campaigns_report" in triggered, "the scheduler would create the asset-triggered run"
