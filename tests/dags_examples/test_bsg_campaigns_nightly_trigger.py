"""
The nightly load triggered as ``airflow dags trigger bsg_campaigns_nightly`` does: a run with no
logical date and so no data interval. It loads the last complete day before the trigger, and a
configuration error fails it on the first try although the DAG retries its tasks twice.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from tests.dag_helpers import register_dag, task_states, xcom_return_value

UTC = timezone.utc
#: When the run is triggered: five hours into 2025-06-13, before the simulator's pinned "now".
TRIGGERED_AT = datetime(2025, 6, 13, 5, 0, tzinfo=UTC)
#: The last complete day before it.
DAY = (datetime(2025, 6, 12, tzinfo=UTC), datetime(2025, 6, 13, tzinfo=UTC))


def trigger_without_logical_date(dag):
    """Run ``dag`` once as a CLI trigger without ``--logical-date`` creates it."""
    register_dag(dag)
    dag_run = dag.test(logical_date=None, run_after=TRIGGERED_AT)
    assert dag_run.logical_date is None
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == (None, None)
    return dag_run


def test_a_trigger_without_logical_date_loads_the_last_complete_day(
    examples, example_simulator, example_env, airflow_db, tmp_path
):
    dag_run = trigger_without_logical_date(examples.dags["bsg_campaigns_nightly"])

    assert task_states(dag_run) == {
        "extract_campaigns": "success",
        "load_campaigns": "success",
        "extract_messages": "success",
        "load_messages": "success",
    }
    extract = xcom_return_value(dag_run, "extract_campaigns")
    start, end = DAY
    # The lookback adds the day before, as on a scheduled run.
    assert (extract["interval_start"], extract["interval_end"]) == (
        (start - timedelta(days=1)).isoformat(),
        end.isoformat(),
    )
    assert extract["path"] == f"file://{tmp_path}/data/campaigns/2025-06-12.jsonl"
    lines = (tmp_path / "data" / "campaigns" / "2025-06-12.jsonl").read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == sorted(
        example_simulator.ground_truth_ids(start - timedelta(days=1), end)
    )
    assert xcom_return_value(dag_run, "load_campaigns")["upserted"] == len(lines) > 0
    # The messages of the same day and lookback day.
    messages = xcom_return_value(dag_run, "extract_messages")
    assert (messages["interval_start"], messages["interval_end"]) == (
        extract["interval_start"],
        extract["interval_end"],
    )
    assert messages["records"] == len(
        example_simulator.message_ground_truth_ids(start - timedelta(days=1), end)
    )
    assert xcom_return_value(dag_run, "load_messages")["upserted"] == messages["records"] > 0


def test_a_config_error_on_a_plain_trigger_fails_at_once_with_the_message(
    examples, example_simulator, example_env, airflow_db, tmp_path, monkeypatch
):
    # The connection lacks its API key: the same on every try, so retrying cannot help.
    monkeypatch.setenv(
        "AIRFLOW_CONN_BSG_DEFAULT", json.dumps({"conn_type": "bsg", "host": example_simulator.url})
    )
    # Airflow 3.0's dag.test() logs a task's exception nowhere a test can read; keep what execute raised.
    raised: list[BaseException] = []
    execute = BsgExtractCampaignsOperator.execute

    def recording_execute(self, context):
        try:
            return execute(self, context)
        except BaseException as exc:
            raised.append(exc)
            raise

    monkeypatch.setattr(BsgExtractCampaignsOperator, "execute", recording_execute)
    dag = examples.dags["bsg_campaigns_nightly"]
    assert dag.get_task("extract_campaigns").retries == 2

    dag_run = trigger_without_logical_date(dag)

    assert task_states(dag_run) == {
        "extract_campaigns": "failed",
        "load_campaigns": "upstream_failed",
        "extract_messages": "failed",
        "load_messages": "upstream_failed",
    }
    for extract in [ti for ti in dag_run.get_task_instances() if ti.task_id.startswith("extract_")]:
        assert extract.try_number == 1, f"a config error is not retried ({extract.task_id})"
    (error,) = raised
    assert type(error).__name__ == "AirflowFailException"
    assert "API key" in str(error)
    assert example_simulator.count("any") == 0
    assert not (tmp_path / "data").exists()
