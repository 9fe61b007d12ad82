"""Fixtures for the operator tests: a simulator whose clock is pinned, its connection, the task log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

import pytest

from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env

#: The pinned simulator's "now": campaigns span the 400 days before it.
PINNED_NOW = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def pinned_simulator() -> Iterator[BsgSimulator]:
    """A simulator whose clock starts at :data:`PINNED_NOW`, so dates and ground truth are fixed."""
    with BsgSimulator(campaigns=6000, seed=11, api_key="test_pinned_key_4567", now=PINNED_NOW) as sim:
        yield sim


@pytest.fixture
def pinned_conn_id(pinned_simulator: BsgSimulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``bsg`` connection to :func:`pinned_simulator`, set in the environment the tasks read."""
    name, value = bsg_connection_env(
        "bsg_pinned", host=pinned_simulator.url, api_key=pinned_simulator.api_key, **FAST_RETRY_EXTRAS
    )
    monkeypatch.setenv(name, value)
    return "bsg_pinned"


@pytest.fixture
def task_log(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """
    Everything logged so far, as text.

    Airflow 3.0 logs tasks and hooks through :mod:`logging`; 3.1+ through structlog to stdout.
    """
    caplog.set_level(logging.INFO)
    printed: list[str] = []

    def read() -> str:
        out, err = capfd.readouterr()
        printed.append(out + err)
        return caplog.text + "".join(printed)

    return read


#: The clock of the messages simulators: their campaigns span the 400 days before it.
MESSAGES_NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


@contextmanager
def serving_messages(
    monkeypatch: pytest.MonkeyPatch, conn_id: str, pii_key: str, *, seed: int, messages_per_campaign: int
) -> Iterator[BsgSimulator]:
    """A simulator of 300 campaigns with that many messages each, its connection and the PII key's."""
    with BsgSimulator(
        campaigns=300,
        seed=seed,
        api_key=f"test_{conn_id}_key",
        now=MESSAGES_NOW,
        messages_per_campaign=messages_per_campaign,
    ) as sim:
        name, value = bsg_connection_env(conn_id, host=sim.url, api_key=sim.api_key, **FAST_RETRY_EXTRAS)
        monkeypatch.setenv(name, value)
        key_connection = json.dumps({"conn_type": "generic", "password": pii_key})
        monkeypatch.setenv("AIRFLOW_CONN_BSG_PII_KEY", key_connection)
        yield sim
