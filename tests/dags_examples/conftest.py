"""Fixtures for the example DAGs: the DAGs as Airflow parses them, a pinned simulator, their connections."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env

EXAMPLES_FOLDER = Path(__file__).resolve().parents[2] / "dags_examples"
#: The simulator's clock at start: campaigns span the 60 days before it.
PINNED_NOW = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)
#: How often the gate polls in tests (the DAG reads it when parsed).
GATE_POKE_SECONDS = "0.3"
#: The phones' HMAC key the examples read from the ``bsg_pii_key`` connection.
PII_KEY = "test-examples-pii-key-8c41d07e"


def parse_examples() -> Any:
    """A DagBag over ``dags_examples/``, parsed the way the DAG processor parses it."""
    try:  # Airflow 3.1+
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BSG_GATE_POKE_SECONDS", GATE_POKE_SECONDS)
        return DagBag(dag_folder=str(EXAMPLES_FOLDER))


@pytest.fixture(scope="module")
def examples() -> Any:
    """The parsed example DAGs (one parse per test module)."""
    return parse_examples()


@pytest.fixture
def example_simulator() -> Iterator[BsgSimulator]:
    """
    A small simulator with a pinned clock, so every run sees the same campaigns. 50 messages a
    campaign (about 2,500 a day loaded, with the lookback) keep the nightly runs quick; the
    engine's volume is the operator tests' and the benchmarks' concern.
    """
    with BsgSimulator(
        campaigns=1500,
        seed=23,
        api_key="test_examples_key_8642",
        period_days=60,
        now=PINNED_NOW,
        messages_per_campaign=50,
    ) as sim:
        yield sim


@pytest.fixture
def example_env(example_simulator: BsgSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """
    What the example DAGs read: ``bsg_default``, ``bsg_pii_key``, ``bsg_warehouse`` (an SQLite
    file) and ``bsg_data_url``.

    :return: the warehouse database file.
    """
    name, value = bsg_connection_env(
        "bsg_default", host=example_simulator.url, api_key=example_simulator.api_key, **FAST_RETRY_EXTRAS
    )
    monkeypatch.setenv(name, value)
    monkeypatch.setenv("AIRFLOW_CONN_BSG_PII_KEY", json.dumps({"conn_type": "generic", "password": PII_KEY}))
    warehouse = tmp_path / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_BSG_WAREHOUSE", f'{{"conn_type": "sqlite", "host": "{warehouse}"}}')
    monkeypatch.setenv("AIRFLOW_VAR_BSG_DATA_URL", f"file://{tmp_path}/data")
    return warehouse


def without_retries(dag: Any) -> Any:
    """
    ``dag`` with its tasks' retries off, so a failing test fails now rather than after the DAG's
    five-minute retry delays (``dag.test()`` waits them out).

    :param dag: a parsed example DAG.
    """
    for task in dag.tasks:
        task.retries = 0
    return dag
