"""Start the simulator CLI in its own process, so it never competes with the code being measured."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
API_KEY = "test_benchmark_key"


@contextlib.contextmanager
def running_simulator(campaigns: int, *extra: str, cpus: set[int] | None = None) -> Iterator[str]:
    """
    Yield the base URL of a simulator serving ``campaigns`` campaigns on 127.0.0.1.

    :param campaigns: campaigns to generate.
    :param extra: more CLI arguments.
    :param cpus: the cores it may run on (all its threads); None for any.
    """
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bsg_provider.simulator",
            "--port",
            "0",
            "--campaigns",
            str(campaigns),
            "--api-key",
            API_KEY,
            *extra,
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        preexec_fn=None if cpus is None else pinned_to(cpus),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise RuntimeError(f"simulator did not start: {line!r}")
        yield line.rsplit(" ", 1)[-1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def pinned_to(cpus: set[int]) -> Callable[[], None]:
    """A ``preexec_fn`` that pins the child, before it starts any thread, to ``cpus``."""
    return lambda: os.sched_setaffinity(0, cpus)


def connection_env(conn_id: str, url: str) -> dict[str, str]:
    """The environment variable defining a ``bsg`` connection to the simulator."""
    import json

    value = json.dumps({"conn_type": "bsg", "host": url, "password": API_KEY, "extra": {"timeout": 60}})
    return {f"AIRFLOW_CONN_{conn_id.upper()}": value}
