"""The latency knob: a delay before every API answer, jitter by seed, concurrent requests served."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest
import requests

from bsg_provider.simulator import BsgSimulator
from bsg_provider.simulator.latency import Latency

from .helpers import NOW, Client
from .test_cli import ROOT, cli


def test_jitter_is_deterministic_by_seed_and_bounded() -> None:
    knobs = [Latency(50, 20, seed) for seed in (1, 1, 2)]
    first, again, other = ([knob.next_delay() for _ in range(200)] for knob in knobs)
    assert first == again != other
    assert all(0.030 <= delay <= 0.070 for delay in first)
    assert len(set(first)) > 100
    assert Latency(200).next_delay() == 0.2 and Latency().next_delay() == 0.0
    wide = Latency(5, 50, 3)
    assert min(wide.next_delay() for _ in range(200)) == 0.0


@pytest.mark.parametrize(("latency", "jitter"), [(-1, 0), (0, -1), (float("nan"), 0)])
def test_bad_latency_is_refused(latency: float, jitter: float) -> None:
    with pytest.raises(ValueError, match="latency_ms and latency_jitter_ms"):
        BsgSimulator(campaigns=1, latency_ms=latency, latency_jitter_ms=jitter)


def test_eight_requests_in_flight_overlap() -> None:
    with BsgSimulator(campaigns=200, seed=3, now=NOW, messages_per_campaign=5, latency_ms=200) as sim:
        api = Client(sim.url, sim.api_key)
        api.login()
        sim.clear_requests()
        barrier = threading.Barrier(8)
        answers: list[int] = []
        lock = threading.Lock()

        def fetch(offset: int) -> None:
            session = requests.Session()
            path = "/api/messages" if offset % 2 else "/api/campaigns"
            barrier.wait()
            response = session.get(
                f"{sim.url}{path}", params={"page[offset]": offset}, headers=api.headers(), timeout=30
            )
            with lock:
                answers.append(response.status_code)

        threads = [threading.Thread(target=fetch, args=(offset,)) for offset in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert answers == [200] * 8
        records = [record for record in sim.requests if record.endpoint in ("list", "messages")]
        assert len(records) == 8 and all(record.finished is not None for record in records)
        # Every request arrived before the first one was answered: all eight were in flight at once.
        assert max(record.started for record in records) < min(record.finished for record in records)


def test_requests_without_latency_are_sequential_in_the_log() -> None:
    with BsgSimulator(campaigns=50, seed=3, now=NOW) as sim:
        api = Client(sim.url, sim.api_key)
        api.login()
        api.list()
        login, listing = sim.requests
        assert login.started < login.finished < listing.started < listing.finished  # type: ignore[operator]


def test_cli_latency_flags() -> None:
    with cli("--campaigns", "20", "--latency-ms", "150", "--latency-jitter-ms", "20") as (_, url, _elapsed):
        api = Client(url, "test_simulator_key")
        api.login()
        assert api.list().status_code == 200
    with cli("--campaigns", "20", "--messages-per-campaign", "7") as (_, url, _elapsed):
        total = requests.get(f"{url}/_simulator/messages/total", timeout=10).json()
        assert total == {"total": 140}


@pytest.mark.parametrize(
    ("flags", "text"),
    [
        (["--latency-ms", "-5"], "latency_ms and latency_jitter_ms must be numbers >= 0"),
        (["--messages-per-campaign", "-1"], "messages_per_campaign must be at least 0"),
    ],
)
def test_cli_refuses_bad_values(flags: list[str], text: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bsg_provider.simulator", "--port", "0", "--campaigns", "5", *flags],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2 and text in result.stderr
