"""Asset events of the extract operators in a real Airflow: dag.test() and the metadata database."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from airflow.providers.common.compat.sdk import DAG, Asset
from airflow.providers.common.compat.standard.operators import PythonOperator
from airflow.timetables.interval import CronDataIntervalTimetable

from bsg_provider.assets import campaigns_asset, messages_asset
from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from bsg_provider.operators.messages import BsgExtractMessagesOperator
from tests.dag_helpers import register_dag, run_dag, task_states, xcom_return_value
from tests.operators.conftest import serving_messages

UTC = timezone.utc
START_DATE = datetime(2025, 1, 1, tzinfo=UTC)
NIGHTLY = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")


def asset_events(asset: Asset, dag_id: str) -> list[dict]:
    """The ``extra`` of every event of ``asset`` a run of ``dag_id`` emitted, oldest first."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetModel.uri == asset.uri, AssetEvent.source_dag_id == dag_id)
            .order_by(AssetEvent.id)
            .all()
        )
        return [dict(row.extra) for row in rows]


def queued_for(dag_id: str) -> tuple[bool, bool]:
    """Whether an asset change is queued for ``dag_id``; whether the scheduler would create its run now."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        queued = session.query(AssetDagRunQueue).filter_by(target_dag_id=dag_id).count() > 0
        _, triggered = DagModel.dags_needing_dagruns(session)
        return queued, dag_id in triggered


def downstream_dag(dag_id: str, asset: Asset) -> DAG:
    """A DAG scheduled on ``asset`` alone, registered as the DAG processor would, and unpaused."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with DAG(dag_id, schedule=[asset], start_date=START_DATE, catchup=False) as dag:
        PythonOperator(task_id="consume", python_callable=lambda: None)
    register_dag(dag)
    with create_session() as session:
        # A paused DAG gets no asset-triggered runs.
        session.query(DagModel).filter_by(dag_id=dag_id).update({"is_paused": False})
    return dag


def test_the_campaigns_asset_event_carries_the_file_and_queues_the_downstream_dag(
    airflow_db, pinned_simulator, pinned_conn_id, tmp_path
):
    asset = campaigns_asset(pinned_conn_id)
    downstream_dag("bsg_assets_downstream", Asset(f"bsg://{pinned_conn_id}/campaigns"))
    with DAG("bsg_assets_upstream", schedule=NIGHTLY, start_date=START_DATE, catchup=False) as dag:
        extract = BsgExtractCampaignsOperator(
            task_id="extract",
            output_path=f"file://{tmp_path}/{{{{ ds }}}}.jsonl",
            bsg_conn_id=pinned_conn_id,
            lookback=timedelta(days=1),
        )
    assert extract.outlets == [asset], "no outlets given: the documented default asset"
    assert queued_for("bsg_assets_downstream") == (False, False)

    run = run_dag(dag, logical_date=datetime(2025, 6, 3, tzinfo=UTC))

    assert task_states(run) == {"extract": "success"}
    summary = xcom_return_value(run, "extract")
    (extra,) = asset_events(asset, "bsg_assets_upstream")
    assert extra == {
        "path": summary["path"],
        "records": summary["records"],
        # The interval extracted: the run's day and, through lookback, the day before.
        "data_interval_start": "2025-06-01T00:00:00+00:00",
        "data_interval_end": "2025-06-03T00:00:00+00:00",
        "format": "jsonl",
    }
    assert extra["path"] == f"file://{tmp_path}/2025-06-03.jsonl"
    assert extra["records"] == len((tmp_path / "2025-06-03.jsonl").read_text().splitlines()) > 0
    assert queued_for("bsg_assets_downstream") == (True, True)


def test_a_failed_extraction_emits_no_event(airflow_db, pinned_simulator, pinned_conn_id, tmp_path):
    asset = campaigns_asset(pinned_conn_id)
    downstream_dag("bsg_assets_downstream_of_failure", asset)
    with DAG("bsg_assets_failing", schedule=NIGHTLY, start_date=START_DATE, catchup=False) as dag:
        # A templated campaign type that renders to an unknown one fails the task before any request.
        BsgExtractCampaignsOperator(
            task_id="extract",
            output_path=f"file://{tmp_path}/{{{{ ds }}}}.jsonl",
            bsg_conn_id=pinned_conn_id,
            campaign_type="{{ 'fax' }}",
        )
    run = run_dag(dag, logical_date=datetime(2025, 6, 3, tzinfo=UTC))

    assert task_states(run) == {"extract": "failed"}
    assert asset_events(asset, "bsg_assets_failing") == []
    assert queued_for("bsg_assets_downstream_of_failure") == (False, False)


def test_given_outlets_replace_the_default_and_each_gets_the_extra(airflow_db, monkeypatch, tmp_path):
    warehouse, lake = Asset("warehouse://bsg/messages"), Asset(name="bsg_messages_lake", uri="s3://lake/bsg")
    with serving_messages(monkeypatch, "bsg_msg_assets", "k" * 32, seed=5, messages_per_campaign=3):
        with DAG("bsg_assets_messages", schedule=NIGHTLY, start_date=START_DATE, catchup=False) as dag:
            BsgExtractMessagesOperator(
                task_id="extract",
                output_path=f"file://{tmp_path}/{{{{ ds }}}}.csv",
                bsg_conn_id="bsg_msg_assets",
                outlets=[warehouse, lake],
            )
        run = run_dag(dag, logical_date=datetime(2026, 11, 20, tzinfo=UTC))

    assert task_states(run) == {"extract": "success"}
    summary = xcom_return_value(run, "extract")
    for asset in (warehouse, lake):
        (extra,) = asset_events(asset, "bsg_assets_messages")
        assert extra["path"] == summary["path"] and extra["records"] == summary["records"]
        assert (extra["data_interval_start"], extra["data_interval_end"]) == (
            "2026-11-19T00:00:00+00:00",
            "2026-11-20T00:00:00+00:00",
        )
        json.dumps(extra)  # JSON-safe, as the API server stores it
    assert asset_events(messages_asset("bsg_msg_assets"), "bsg_assets_messages") == []


def test_default_assets_are_one_per_resource_and_connection():
    kwargs = {"output_path": "file:///tmp/x.jsonl"}
    first = BsgExtractCampaignsOperator(task_id="a", **kwargs)
    again = BsgExtractCampaignsOperator(task_id="b", campaign_type="rcs", **kwargs)
    other = BsgExtractCampaignsOperator(task_id="c", bsg_conn_id="bsg_eu", **kwargs)
    messages = BsgExtractMessagesOperator(task_id="d", phone="drop", **kwargs)
    assert first.outlets == again.outlets == [Asset("bsg://bsg_default/campaigns")]
    assert other.outlets == [Asset("bsg://bsg_eu/campaigns")]
    assert messages.outlets == [Asset("bsg://bsg_default/messages")]
    with pytest.raises(ValueError, match="cannot name a default asset"):
        BsgExtractCampaignsOperator(task_id="e", bsg_conn_id="bsg default", **kwargs)
