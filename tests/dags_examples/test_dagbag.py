"""The example DAGs load in a DagBag as the DAG processor would, with the settings the docs promise."""

from __future__ import annotations

from datetime import timedelta

from tests.dags_examples.conftest import GATE_POKE_SECONDS


def test_examples_import_without_errors(examples):
    assert examples.import_errors == {}
    assert {"bsg_campaigns_nightly", "bsg_campaign_gate", "bsg_campaigns_report"} <= set(examples.dag_ids)


def test_nightly_dag_is_a_daily_data_interval_load(examples):
    from airflow.timetables.interval import CronDataIntervalTimetable

    dag = examples.dags["bsg_campaigns_nightly"]
    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    assert dag.timetable.summary == "0 0 * * *"
    assert str(dag.timetable._timezone) == "UTC"
    assert dag.catchup is False
    assert dag.max_active_runs == 2

    for kind in ("campaigns", "messages"):
        extract = dag.get_task(f"extract_{kind}")
        load = dag.get_task(f"load_{kind}")
        assert extract.downstream_task_ids == {f"load_{kind}"}
        assert extract.pool == "bsg_api"
        assert extract.lookback == timedelta(days=1)
        assert f"/{kind}/{{{{ day_to_load(dag_run).start | ds }}}}" in extract.output_path
        assert "bsg_data_url" in extract.output_path
        for task in (extract, load):
            assert task.retries == 2
            assert task.retry_delay == timedelta(minutes=5)
    messages = dag.get_task("extract_messages")
    # Personal data: phones hashed with the key of a connection, texts dropped.
    assert (messages.phone, messages.text, messages.pii_key_conn_id) == ("hash", "drop", "bsg_pii_key")


def test_gate_dag_defers_on_the_campaign_id_param(examples):
    dag = examples.dags["bsg_campaign_gate"]
    assert type(dag.timetable).__name__ == "NullTimetable"  # runs when triggered, never on a schedule
    assert "campaign_id" in dag.params
    sensor = dag.get_task("wait_for_campaign")
    assert sensor.deferrable is True
    assert sensor.campaign_id == "{{ params.campaign_id }}"
    assert sensor.target_statuses == ("done", "stopped")
    assert sensor.failure_statuses == ("spam",)
    assert sensor.poke_interval == float(GATE_POKE_SECONDS)
    assert sensor.downstream_task_ids == {"extract_messages", "report_delivery"}
    messages = dag.get_task("extract_messages")
    assert "wait_for_campaign" in messages.campaign_id
    assert (messages.phone, messages.text, messages.pii_key_conn_id) == ("hash", "drop", "bsg_pii_key")
    assert messages.downstream_task_ids == {"report_delivery"}
