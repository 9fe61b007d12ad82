"""The command line: start-up lines, serving, faults from flags, and SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from .helpers import Client

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def cli(*args: str) -> Iterator[tuple[subprocess.Popen[str], str, float]]:
    """Run the CLI; yield the process, its URL and the seconds until it printed it."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    }
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "bsg_provider.simulator", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        elapsed = time.monotonic() - started
        prefix = "BSG One API simulator listening on "
        assert first.startswith(prefix), (first, process.stderr.read() if process.poll() is not None else "")
        yield process, first[len(prefix) :].strip(), elapsed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)


def test_cli_serves_and_stops_on_sigterm() -> None:
    with cli(
        "--campaigns", "500", "--seed", "3", "--api-key", "test_cli_key", "--timezone", "Europe/Berlin"
    ) as (process, url, _):
        assert process.stdout.readline().strip() == "API key: test_cli_key"
        assert url.startswith("http://127.0.0.1:") and not url.endswith(":0")
        api = Client(url, "test_cli_key")
        api.login()
        body = api.list({"page[limit]": 30}).json()
        assert body["meta"]["page"]["limit"] == 30 and body["data"]
        process.send_signal(signal.SIGTERM)
        assert process.wait() == 0  # bounded by pytest's timeout, not by a guess


def test_cli_faults_from_flags() -> None:
    with cli(
        "--campaigns", "50", "--fault", "list:status=503:times=2", "--fault", "login:status=429:retry_after=1"
    ) as (process, url, _):
        login = requests.post(f"{url}/api/auth/login", json={"api_key": "test_simulator_key"}, timeout=5)
        assert (login.status_code, login.headers["Retry-After"]) == (429, "1")
        api = Client(url, "test_simulator_key")
        api.login()
        assert [api.list().status_code for _ in range(3)] == [503, 503, 200]
        process.send_signal(signal.SIGINT)
        assert process.wait() == 0  # bounded by pytest's timeout, not by a guess


def test_cli_help_documents_the_fault_grammar() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bsg_provider.simulator", "--help"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
        cwd=ROOT,
    ).stdout
    assert "list:status=503:skip=2:times=3" in out and "retry_after" in out


def test_cli_rejects_bad_arguments() -> None:
    for args in (["--fault", "list:explode"], ["--timezone", "Mars/Base"], ["--timestamp-format", "x"]):
        result = subprocess.run(
            [sys.executable, "-m", "bsg_provider.simulator", "--port", "0", *args],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=10,
            cwd=ROOT,
        )
        assert result.returncode == 2, (args, result.stderr)
