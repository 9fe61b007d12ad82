"""Fixtures for the operator tests: a simulator whose clock is pinned, its connection, the task log."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
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
