"""
The sensor in a real Airflow run (``dag.test()``, SQLite metadata DB) against the simulator.

Each mode waits for a campaign the test moves to its final status only after the sensor has
read it a few times, so a pass means the sensor really waited; deferrable runs execute the
trigger in-process, as ``dag.test()`` does.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from airflow.providers.common.compat.sdk import DAG

from bsg_provider.sensors.campaign import BsgCampaignStatusSensor
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env
from tests.dag_helpers import register_dag, task_states, xcom_return_value
from tests.sensors.status_flip import reads_of

MODES = {
    "poke": {"mode": "poke"},
    "reschedule": {"mode": "reschedule"},
    "deferrable": {"deferrable": True},
}


@pytest.fixture(autouse=True)
def _reschedule_dates(parsed_reschedule_dates):
    """Every run here may reschedule; see ``parsed_reschedule_dates`` in conftest."""


def _dag_id(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", request.node.name)[:200]


def _run(request, conn_id: str, *, upstream_ids: list[int] | None = None, **sensor_kwargs):
    """Build a one-sensor DAG (optionally fed ids by an upstream task's XCom), register it and run it."""
    from airflow.providers.standard.operators.python import PythonOperator

    sensor_kwargs.setdefault("poke_interval", 0.2)
    sensor_kwargs.setdefault("timeout", 60)
    with DAG(_dag_id(request), schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)) as dag:
        sensor = BsgCampaignStatusSensor(task_id="wait", bsg_conn_id=conn_id, **sensor_kwargs)
        if upstream_ids is not None:
            PythonOperator(task_id="send", python_callable=lambda: upstream_ids) >> sensor
    register_dag(dag)
    return dag.test()


@pytest.mark.parametrize("mode", list(MODES))
def test_waits_until_the_campaign_is_done(airflow_db, simulator, bsg_conn_id, flip, request, mode):
    campaign = simulator.add_campaign(simulator.now(), status="sending")
    flipper = flip(campaign["id"], "done", after_reads=2)

    dag_run = _run(request, bsg_conn_id, campaign_id=campaign["id"], **MODES[mode])

    assert task_states(dag_run) == {"wait": "success"}
    assert flipper.reads_before is not None, "the sensor stopped before the campaign was done"
    assert flipper.stopped_promptly()
    assert xcom_return_value(dag_run, "wait") == simulator.campaign(campaign["id"])


@pytest.mark.parametrize("mode", list(MODES))
def test_fails_fast_without_retries_when_the_campaign_is_spam(
    airflow_db, simulator, bsg_conn_id, flip, request, mode
):
    campaign = simulator.add_campaign(simulator.now(), status="moderation")
    flipper = flip(campaign["id"], "spam", after_reads=2)

    # Retries are allowed, yet a spam verdict is final: no read after it, so no retry waited it out.
    dag_run = _run(request, bsg_conn_id, campaign_id=campaign["id"], retries=2, timeout=600, **MODES[mode])

    assert task_states(dag_run) == {"wait": "failed"}
    assert flipper.reads_before is not None
    assert flipper.stopped_promptly(), "it read on after the verdict (a retry?)"


def test_a_list_from_an_upstream_xcom_waits_for_the_slowest(
    airflow_db, simulator, bsg_conn_id, flip, request
):
    quick = simulator.add_campaign(simulator.now(), status="done")
    slow = simulator.add_campaign(simulator.now(), status="sending")
    flipper = flip(slow["id"], "stopped", after_reads=3)

    # Rendered without render_template_as_native_obj, the XCom list arrives as the text "[a, b]".
    dag_run = _run(
        request,
        bsg_conn_id,
        upstream_ids=[slow["id"], quick["id"]],
        campaign_id="{{ ti.xcom_pull(task_ids='send') }}",
        deferrable=True,
    )

    assert task_states(dag_run) == {"send": "success", "wait": "success"}
    assert flipper.stopped_promptly()
    records = xcom_return_value(dag_run, "wait")
    assert [(r["id"], r["status"]) for r in records] == [(slow["id"], "stopped"), (quick["id"], "done")]
    # Once by the poke before deferring, once by the trigger; never again once it is known to be done.
    assert reads_of(simulator, quick["id"]) == 2


@pytest.mark.parametrize("mode", list(MODES))
def test_an_outage_longer_than_the_retry_budget_does_not_end_the_wait(
    airflow_db, simulator, flip, request, capfd, monkeypatch, mode
):
    campaign = simulator.add_campaign(simulator.now(), status="sending")
    # A budget of two attempts keeps the outage short; it still outlasts three budgets.
    name, value = bsg_connection_env(
        "bsg_small_budget",
        host=simulator.url,
        api_key=simulator.api_key,
        **{**FAST_RETRY_EXTRAS, "max_retries": 1},
    )
    monkeypatch.setenv(name, value)
    budget = 2
    # After the first read, three retry budgets' worth of 503s, then the API recovers.
    simulator.inject("status", endpoint="get", status=503, skip=1, times=3 * budget)
    flipper = flip(campaign["id"], "done", after_reads=3 * budget + 2)

    dag_run = _run(request, "bsg_small_budget", campaign_id=campaign["id"], **MODES[mode])

    assert task_states(dag_run) == {"wait": "success"}
    assert flipper.reads_before is not None, "the sensor stopped before the outage was over"
    assert [r.status for r in simulator.requests if r.endpoint == "get"].count(503) == 3 * budget
    assert xcom_return_value(dag_run, "wait")["status"] == "done"
    out = capfd.readouterr().out
    # Reschedule mode starts a fresh wait on every check, so it may say so once per check.
    times = out.count("BSG One API did not answer (503)")
    assert times >= 1 if mode == "reschedule" else times == 1


@pytest.mark.parametrize("mode", list(MODES))
def test_an_unknown_campaign_fails_at_once_without_retries(airflow_db, simulator, bsg_conn_id, request, mode):
    dag_run = _run(request, bsg_conn_id, campaign_id=987654321, retries=2, timeout=600, **MODES[mode])

    assert task_states(dag_run) == {"wait": "failed"}
    assert simulator.count("get") == 1, "a 404 was read again (a task retry?)"


@pytest.mark.parametrize(("soft_fail", "state"), [(False, "failed"), (True, "skipped")])
def test_the_timeout_bounds_a_deferred_wait(
    airflow_db, simulator, bsg_conn_id, request, capfd, soft_fail, state
):
    campaign = simulator.add_campaign(simulator.now(), status="sending")

    dag_run = _run(
        request, bsg_conn_id, campaign_id=campaign["id"], deferrable=True, timeout=1, soft_fail=soft_fail
    )

    assert task_states(dag_run) == {"wait": state}
    out = capfd.readouterr().out
    found = re.search(
        rf"Timed out at (\S+) waiting for BSG campaign\(s\) {campaign['id']} \(sending\) "
        "to reach done or stopped",
        out,
    )
    assert found, "no timeout message"
    # Whenever the machine let each poll run, the wait ended with one look at or after the deadline.
    deadline = datetime.fromisoformat(found.group(1)).timestamp()
    reads = [r.received_at for r in simulator.requests if r.endpoint == "get"]
    assert reads, "it timed out without looking"
    assert sum(1 for received in reads if received >= deadline) <= 1
