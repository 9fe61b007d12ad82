"""The campaign gate, run by ``dag.test()`` against the simulator: it defers, then opens or fails."""

from __future__ import annotations

import threading
import time

from tests.dag_helpers import register_dag, task_states, xcom_return_value
from tests.dags_examples.conftest import without_retries


def run_gate(examples, campaign_id: int):
    dag = without_retries(examples.dags["bsg_campaign_gate"])
    register_dag(dag)
    return dag.test(run_conf={"campaign_id": campaign_id})


def finish_after_first_poll(sim, campaign_id: int, status: str) -> threading.Thread:
    """Set the campaign's final status once the gate has seen it unfinished, however long start-up took."""

    def finish() -> None:
        deadline = time.monotonic() + 60
        while sim.count("get") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        sim.set_status(campaign_id, status)

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


def test_gate_waits_for_the_campaign_then_runs_the_report(
    examples, example_simulator, example_env, airflow_db
):
    sim = example_simulator
    # Stuck in "sending" until the gate has polled once; then it is done.
    campaign = sim.add_campaign(sim.now(), final_status="sending", status_step_seconds=0.1)
    finisher = finish_after_first_poll(sim, campaign["id"], "done")

    dag_run = run_gate(examples, campaign["id"])
    finisher.join()

    assert task_states(dag_run) == {"wait_for_campaign": "success", "report_delivery": "success"}
    assert sim.count("get") >= 2  # it kept polling until the campaign was done
    finished = sim.campaign(campaign["id"])
    report = xcom_return_value(dag_run, "report_delivery")
    assert report["campaign_id"] == campaign["id"]
    assert report["status"] == "done"
    assert (report["sent"], report["delivered"]) == (
        finished["statistics"]["sent"],
        finished["statistics"]["delivered"],
    )


def test_gate_fails_on_spam_and_skips_the_report(examples, example_simulator, example_env, airflow_db):
    sim = example_simulator
    campaign = sim.add_campaign(sim.now(), final_status="spam", status_step_seconds=0.1)

    dag_run = run_gate(examples, campaign["id"])

    assert task_states(dag_run) == {"wait_for_campaign": "failed", "report_delivery": "upstream_failed"}
