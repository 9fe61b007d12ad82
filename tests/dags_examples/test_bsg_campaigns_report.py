"""The downstream example: queued by the nightly load's asset event, it reports the file the event names."""

from __future__ import annotations

import importlib.util
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType

from tests.dag_helpers import register_dag, run_dag, task_states, xcom_return_value
from tests.dags_examples.conftest import EXAMPLES_FOLDER, without_retries

DAY = datetime(2025, 6, 12, tzinfo=timezone.utc)


def test_report_is_scheduled_on_the_campaigns_asset_alone(examples):
    from airflow.providers.common.compat.sdk import Asset

    report = examples.dags["bsg_campaigns_report"]
    nightly = examples.dags["bsg_campaigns_nightly"]
    asset = Asset("bsg://bsg_default/campaigns")
    assert list(report.timetable.asset_condition.objects) == [asset]
    # The nightly load names no outlet: the operator's default asset is the link.
    assert nightly.get_task("extract_campaigns").outlets == [asset]


def report_module() -> ModuleType:
    """``dags_examples/bsg_campaigns_report.py`` imported as a module, for its helpers."""
    spec = importlib.util.spec_from_file_location(
        "example_campaigns_report", EXAMPLES_FOLDER / "bsg_campaigns_report.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_run_triggered_by_several_events_reports_the_newest_whatever_their_order():
    # The scheduler gives one run every event queued since the last (a backfill's days); the
    # execution API hands them over in no set order. The newest by timestamp is the one reported.
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    module = report_module()

    def event(day: int) -> AssetEventDagRunReferenceResult:
        return AssetEventDagRunReferenceResult(
            asset={"name": module.CAMPAIGNS.name, "uri": module.CAMPAIGNS.uri, "extra": {}},
            extra={"path": f"file:///data/campaigns/2025-06-{day:02d}.jsonl", "records": day},
            source_task_id="extract_campaigns",
            source_dag_id="bsg_campaigns_nightly",
            source_run_id=f"backfill__2025-06-{day:02d}T00:00:00+00:00",
            source_map_index=-1,
            source_aliases=[],
            timestamp=datetime(2025, 6, 20, 0, day, tzinfo=timezone.utc),
        )

    for days in ((11, 13, 12), (13, 11, 12), (12, 11, 13)):
        events = TriggeringAssetEventsAccessor.build(event(day) for day in days)
        assert module.latest_extra(events, inlet_events=None)["records"] == 13


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
