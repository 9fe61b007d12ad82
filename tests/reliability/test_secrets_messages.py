"""
The secrets canary for messages: a recognisable HMAC key and the recipients' phones go through
the messages operator's paths, and neither may turn up in logs, errors, XCom, rendered fields
or OpenLineage. The control string proves the searches see those channels (see test_secrets).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import DAG

from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.operators.messages import BsgExtractMessagesOperator
from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env
from tests.dag_helpers import register_dag, task_states
from tests.reliability.test_secrets import (
    CANARY,
    CONN_ID,
    CONTROL,
    UTC,
    Evidence,
    add_run,
    assert_channels_live,
    control_task,
    failing,
    settled_interval,
)

PII_CANARY = "pii_CANARY_KEY_9b4e2c7a15f3"
PII_CONN_ID = "bsg_pii_canary"


@pytest.fixture
def canary_messages(monkeypatch: pytest.MonkeyPatch) -> Iterator[BsgSimulator]:
    with BsgSimulator(campaigns=300, seed=23, api_key=CANARY, messages_per_campaign=15) as sim:
        name, value = bsg_connection_env(CONN_ID, host=sim.url, api_key=CANARY, **FAST_RETRY_EXTRAS)
        monkeypatch.setenv(name, value)
        key_connection = json.dumps({"conn_type": "generic", "password": PII_CANARY})
        monkeypatch.setenv(f"AIRFLOW_CONN_{PII_CONN_ID.upper()}", key_connection)
        yield sim


@pytest.fixture
def evidence(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Evidence:
    caplog.set_level(logging.INFO)
    return Evidence(caplog, capfd)


def phones(start: datetime, end: datetime) -> set[str]:
    hook = BsgHook(CONN_ID)
    try:
        return {str(m["phone"]) for m in hook.iter_messages(start, end)}
    finally:
        hook.close()


def assert_no_personal_data(found: Evidence, raw_phones: set[str]) -> None:
    found.assert_no_secret()
    assert found.where(PII_CANARY) == [], "the HMAC key leaked"
    leaked = [phone for phone in raw_phones if found.where(phone)]
    assert leaked == [], "a phone leaked"


def test_messages_operator_under_dag_test_leaves_no_key_and_no_phone(
    airflow_db, canary_messages, evidence, tmp_path
):
    from airflow.providers.standard.operators.python import PythonOperator

    sim = canary_messages
    start, end = settled_interval(sim, 20)
    raw_phones = phones(start, end)
    assert len(raw_phones) > 100

    def extractor(task_id: str) -> BsgExtractMessagesOperator:
        return BsgExtractMessagesOperator(
            task_id=task_id,
            output_path=f"file://{tmp_path}/{task_id}.csv",
            start="{{ params.start }}",
            end="{{ params.end }}",
            pii_key_conn_id=PII_CONN_ID,
            bsg_conn_id=CONN_ID,
        )

    def break_messages() -> None:
        sim.inject("status", endpoint="messages", status=503, times=None)

    params = {"marker": CONTROL, "start": start.isoformat(), "end": end.isoformat()}
    with DAG(
        "secrets_messages", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC), params=params
    ) as dag:
        (
            control_task()
            >> extractor("messages")
            >> PythonOperator(task_id="break_messages", python_callable=break_messages)
            >> extractor("messages_503")
        )
    register_dag(dag)
    dag_run = dag.test(logical_date=datetime(2025, 6, 1, tzinfo=UTC))
    records = add_run(evidence, dag_run)

    assert task_states(dag_run) == {
        "control": "success",
        "messages": "success",
        "break_messages": "success",
        "messages_503": "failed",
    }
    assert "xcom messages.return_value" in {where for where, _ in records}
    written = (tmp_path / "messages.csv").read_text()
    assert written.count("\n") > 100 and "phone_hash" in written.splitlines()[0]
    assert evidence.where("answered HTTP 503")
    assert_channels_live(evidence, records)
    assert_no_personal_data(evidence, raw_phones)


def test_messages_operator_direct_errors_and_lineage_hold_no_key_or_phone(
    canary_messages, evidence, tmp_path, monkeypatch
):
    sim = canary_messages
    start, end = settled_interval(sim, 10)
    raw_phones = phones(start, end)

    def extract(**kwargs: Any) -> BsgExtractMessagesOperator:
        operator = BsgExtractMessagesOperator(
            task_id="m",
            output_path=f"file://{tmp_path}/m.jsonl",
            start=start,
            end=end,
            pii_key_conn_id=PII_CONN_ID,
            bsg_conn_id=CONN_ID,
            **kwargs,
        )
        evidence.add("summary", operator.execute({}))
        evidence.add("lineage", repr(operator.get_openlineage_facets_on_complete(None)))
        evidence.add("repr(operator)", repr(operator.__dict__))
        return operator

    extract()
    sim.inject("malformed_json", endpoint="messages", times=None)
    failing(evidence, "malformed", extract)
    sim.clear_faults()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{PII_CONN_ID.upper()}", json.dumps({"conn_type": "generic", "password": "pii_CANARY"})
    )
    failing(evidence, "short key", extract)
    evidence.add(CONTROL, CONTROL)
    evidence.read_output()
    assert evidence.where(CONTROL)
    assert_no_personal_data(evidence, raw_phones)
