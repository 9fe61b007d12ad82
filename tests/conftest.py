"""
Test setup shared by the whole suite.

Airflow reads its configuration at import time, so the environment is set here, before
any test module imports Airflow: a private AIRFLOW_HOME with a SQLite metadata database.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="bsg-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(_AIRFLOW_HOME / "dags")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_AIRFLOW_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ.pop("AIRFLOW_CONN_BSG_DEFAULT", None)
(_AIRFLOW_HOME / "dags").mkdir()

from typing import TYPE_CHECKING  # noqa: E402

import pytest  # noqa: E402

if TYPE_CHECKING:
    from bsg_provider.simulator import BsgSimulator


def version_independent(item: pytest.Item) -> str | None:
    """
    Why ``item`` proves nothing about Airflow's or a pinned library's version, or None.

    Such tests run on Airflow 3.3 only; every other test is marked ``compat`` and also runs on
    the floor pins (``-m compat``; README, "Running the tests").
    """
    if item.nodeid.startswith("tests/simulator/"):
        return "the simulator's own rules: it uses the standard library only"
    if item.nodeid.startswith("tests/reliability/test_message_faults.py"):
        # The messages resource through the engine whose fault matrix (the campaigns') runs on
        # every version: the same library calls under the same faults; what this matrix adds (the
        # endpoint's name in each message, the messages' file) depends on no version.
        return "the messages resource on the campaigns' fault matrix's engine, not a library path"
    callspec = getattr(item, "callspec", None)
    if callspec is not None and callspec.params.get("where") in ("first", "last"):
        # The fault matrices: a fault at the first or last page makes the same library calls as
        # at the middle page, which runs everywhere; the position only moves the window it meets.
        return "a page position of a fault matrix, not a library path"
    return None


def runs_tasks_through_airflow(item: pytest.Item) -> bool:
    """
    Whether ``item`` runs tasks through Airflow's own machinery (the ``airflow_db`` fixture:
    ``dag.test()``, the sensor's reschedule and deferral, XCom, asset events, task logs).

    Such ``compat`` tests run on Airflow 3.0.6, the 3.0 line's newest patch; the floor runs the rest
    of ``compat`` and, of these, only the example DAGs (README, "Running the tests"). Between the two
    environments only Airflow's patch level and the libraries' versions differ:

    - the libraries whose floors pyproject promises (requests, tenacity, msgspec, pendulum, httpx,
      asgiref, PyJWT) are called by the client, the hooks, the trigger and the extraction engine,
      whose own tests (the ``compat`` tests without ``airflow_db``) all run on the floor; under
      ``dag.test()`` the same calls are made, only from inside a task;
    - Airflow's task machinery differs only by patch releases between 3.0.2 and 3.0.6; 3.0.6 runs
      it all, and the floor proves 3.0.2's end to end with the example DAGs (the nightly load, the
      deferred gate, the asset-triggered report) and `make smoke`'s components.

    In 3.0.6 the libraries are pinned as in airflow-3.3.txt (PyJWT as in floor.txt), so the tests
    without ``airflow_db`` would prove nothing there that 3.3 and the floor do not.
    """
    return "airflow_db" in item.fixturenames


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """
    Mark every test ``compat`` unless :func:`version_independent` says why it need not be; of
    those, ``oldest`` (the Airflow 3.0.6 run) the ones :func:`runs_tasks_through_airflow`, and
    ``floor`` the others and the example DAGs.
    """
    for item in items:
        if version_independent(item) is not None:
            continue
        item.add_marker(pytest.mark.compat)
        through_airflow = runs_tasks_through_airflow(item)
        if through_airflow:
            item.add_marker(pytest.mark.oldest)
        if not through_airflow or item.nodeid.startswith("tests/dags_examples/"):
            item.add_marker(pytest.mark.floor)


@pytest.fixture(autouse=True)
def _dag_test_polls_quickly(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """
    ``dag.test()`` sleeps a whole second whenever no task is ready, e.g. until a rescheduled
    sensor's next poke. In tests that run DAGs its loop polls every 50 ms instead, so a
    reschedule costs about its ``poke_interval``, not a second of the real clock. Only sleeps
    called by ``dag.test()`` itself are shortened (it imports ``time`` inside the method).
    """
    if "airflow_db" not in request.fixturenames:
        return
    import inspect
    import sys
    import time

    from airflow.sdk import DAG

    loop = inspect.unwrap(DAG.test).__code__
    real_sleep = time.sleep

    def sleep(seconds: float) -> None:
        real_sleep(min(seconds, 0.05) if sys._getframe(1).f_code is loop else seconds)

    monkeypatch.setattr(time, "sleep", sleep)


#: Retries fast enough for tests, still several of them. The timeout is long: a busy machine can make
#: an unfaulted answer take seconds, and a retry the test did not cause would change its counts.
FAST_RETRY_EXTRAS = {"max_retries": 4, "retry_max_wait": 0.02, "timeout": 30}


def bsg_connection_env(conn_id: str, *, host: str, api_key: str, **extra: object) -> tuple[str, str]:
    """The environment variable that defines a ``bsg`` connection, as Airflow reads it."""
    value = json.dumps({"conn_type": "bsg", "host": host, "password": api_key, "extra": extra})
    return f"AIRFLOW_CONN_{conn_id.upper()}", value


@pytest.fixture
def simulator() -> Iterator[BsgSimulator]:
    """A fresh simulator per test: faults and mutations never leak between tests."""
    from bsg_provider.simulator import BsgSimulator

    with BsgSimulator(campaigns=3000, seed=7, api_key="test_fixture_key_0123") as sim:
        yield sim


@pytest.fixture
def bsg_conn_id(simulator: BsgSimulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A ``bsg`` connection pointing at :func:`simulator`, with fast retries."""
    name, value = bsg_connection_env(
        "bsg_test", host=simulator.url, api_key=simulator.api_key, **FAST_RETRY_EXTRAS
    )
    monkeypatch.setenv(name, value)
    return "bsg_test"


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite metadata database for tests that run DAGs with ``dag.test()``."""
    from airflow.utils.db import initdb

    initdb()
    return _AIRFLOW_HOME


class RecordingStats:
    """A Stats backend that keeps what it is sent, standing in for StatsD or OpenTelemetry."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, int]] = []
        self.timings: list[tuple[str, float, dict]] = []

    def incr(self, stat, count=1, rate=1, *, tags=None):
        self.sent.append((stat, tags or {}, count))

    def timing(self, stat, dt, *, tags=None):
        self.timings.append((stat, dt, tags or {}))

    def tags_of(self, stat: str) -> list[dict]:
        """The tags of each increment of ``stat``, in order."""
        return [tags for name, tags, _ in self.sent if name == stat]

    def total(self, stat: str, **tags: str) -> int:
        """The sum of ``stat``'s increments whose tags include ``tags``."""
        return sum(n for name, t, n in self.sent if name == stat and tags.items() <= t.items())


@pytest.fixture
def recording_stats(monkeypatch: pytest.MonkeyPatch) -> RecordingStats:
    """Route the provider's metrics to a :class:`RecordingStats`."""
    from bsg_provider.hooks import metrics

    recorder = RecordingStats()
    monkeypatch.setattr(metrics, "Stats", recorder)
    return recorder
