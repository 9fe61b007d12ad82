"""The campaign gate, run by ``dag.test()`` against the simulator: it defers, then opens or fails."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime

import pytest

from bsg_provider.simulator import BsgSimulator
from tests.dag_helpers import register_dag, task_states, xcom_return_value
from tests.dags_examples.conftest import without_retries


@pytest.fixture
def example_simulator():
    """
    The gate's simulator runs on the real clock, as the API does: the gate extracts a campaign's
    messages from its creation until now, our now, which a clock pinned in the past would refuse
    as more than 30 days ahead.
    """
    with BsgSimulator(
        campaigns=200, seed=23, api_key="test_examples_key_8642", period_days=60, messages_per_campaign=50
    ) as sim:
        yield sim


def run_gate(examples, campaign_id: int):
    dag = without_retries(examples.dags["bsg_campaign_gate"])
    register_dag(dag)
    return dag.test(run_conf={"campaign_id": campaign_id})


def finish_after_first_poll(sim, campaign_id: int, status: str) -> threading.Thread:
    """Set the campaign's final status once the gate has seen it unfinished, however long start-up took."""

    def finish() -> None:
        deadline = time.monotonic() + 60
        while sim.count("get") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # polls what the simulator saw
        sim.set_status(campaign_id, status)

    thread = threading.Thread(target=finish, daemon=True)
    thread.start()
    return thread


def test_gate_waits_for_the_campaign_then_extracts_its_messages_and_reports(
    examples, example_simulator, example_env, airflow_db, tmp_path
):
    sim = example_simulator
    # Stuck in "sending" until the gate has polled once; then it is done.
    campaign = sim.add_campaign(sim.now(), final_status="sending", status_step_seconds=0.1)
    finisher = finish_after_first_poll(sim, campaign["id"], "done")

    dag_run = run_gate(examples, campaign["id"])
    finisher.join()

    assert task_states(dag_run) == {
        "wait_for_campaign": "success",
        "extract_messages": "success",
        "report_delivery": "success",
    }
    assert sim.count("get") >= 2  # it kept polling until the campaign was done
    finished = sim.campaign(campaign["id"])
    report = xcom_return_value(dag_run, "report_delivery")
    assert report["campaign_id"] == campaign["id"]
    assert report["status"] == "done"
    assert (report["sent"], report["delivered"]) == (
        finished["statistics"]["sent"],
        finished["statistics"]["delivered"],
    )
    # The delivery report is the details endpoint's, which counts the campaign's messages.
    counts = sim.message_counts(campaign["id"])
    assert report["messages_by_status"] == counts["statistics"]
    by_status = report["messages_by_status"]
    assert sum(by_status.values()) == report["total_messages"] == counts["total_messages"] > 0
    assert (report["total_phones"], report["total_price"], report["currency"]) == (
        counts["total_phones"],
        counts["total_price"],
        counts["currency"],
    )
    assert sim.count("detail") == 1
    # The campaign's messages, each once, phones hashed and texts dropped.
    extract = xcom_return_value(dag_run, "extract_messages")
    assert extract["path"] == f"file://{tmp_path}/data/campaign_messages/{campaign['id']}.jsonl"
    assert (extract["campaigns"], extract["phone"], extract["text"]) == (1, "hash", "drop")
    lines = [
        json.loads(line)
        for line in (tmp_path / "data" / "campaign_messages")
        .joinpath(f"{campaign['id']}.jsonl")
        .read_text()
        .splitlines()
    ]
    truth = sim.message_ground_truth_ids(
        datetime.fromisoformat(extract["interval_start"]),
        datetime.fromisoformat(extract["interval_end"]),
        campaign_id=campaign["id"],
    )
    assert [line["id"] for line in lines] == truth
    assert len(truth) == counts["total_messages"]
    assert all(len(line["phone_hash"]) == 64 and "phone" not in line and "text" not in line for line in lines)
    assert report["messages_extracted"] == extract["records"] == len(truth)


def test_gate_fails_on_spam_and_skips_the_report(examples, example_simulator, example_env, airflow_db):
    sim = example_simulator
    campaign = sim.add_campaign(sim.now(), final_status="spam", status_step_seconds=0.1)

    dag_run = run_gate(examples, campaign["id"])

    assert task_states(dag_run) == {
        "wait_for_campaign": "failed",
        "extract_messages": "upstream_failed",
        "report_delivery": "upstream_failed",
    }
    assert sim.count("messages") == sim.count("detail") == 0
