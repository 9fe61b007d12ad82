"""
Eight extractions at once against one simulator, each of its own overlapping interval:
every file is exactly its ground truth, and no request is spent twice.

That they ran at once is shown by what the simulator saw, not by the clock: each extraction
stops after its first page until all eight have one, and at that moment the simulator has
seen eight logins and eight list requests, so all eight were in the middle of their work.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env
from tests.reliability.conftest import extract, window_pages

TASKS = 8
PAGE_SIZE = 30
STAGGER = timedelta(days=27)
SPAN = timedelta(days=45)


def overlapping_intervals(sim: BsgSimulator) -> list[tuple[datetime, datetime]]:
    """
    Six months ending two days ago (settled campaigns): five staggered 45-day intervals, two of
    them twice, and the whole six months (two API windows) over all of them.
    """
    end = sim.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    start = end - timedelta(days=180)
    staggered = [(start + k * STAGGER, start + k * STAGGER + SPAN) for k in range(5)]
    return [*staggered, staggered[2], staggered[4], (start, end)]


#: How long a run waits at the meeting point for the others; only a hung run ever reaches it.
MEETING_TIMEOUT = 120
#: Read timeout of the test's connection: eight clients and the in-process simulator share the
#: CPU, so on a busy machine an answer can take longer than the usual 2 s of the tests; a
#: timeout would then be retried, and the test counts retries.
PATIENT_TIMEOUT = 60


@pytest.fixture
def patient_conn_id(simulator: BsgSimulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection to the simulator that waits :data:`PATIENT_TIMEOUT` for an answer."""
    extras = {**FAST_RETRY_EXTRAS, "timeout": PATIENT_TIMEOUT}
    name, value = bsg_connection_env("bsg_patient", host=simulator.url, api_key=simulator.api_key, **extras)
    monkeypatch.setenv(name, value)
    return "bsg_patient"


def meet_after_the_first_page(
    monkeypatch: pytest.MonkeyPatch, simulator: BsgSimulator, seen: list[tuple[int, int]]
) -> None:
    """
    Make each extraction wait, once its first list answer is in, until all :data:`TASKS` have one.

    An extraction is told by its hook's session (its pages may come from several threads, but
    its first page is always fetched alone). When the last one arrives, ``seen`` gets the
    simulator's (login, list) request counts.
    """
    meeting = threading.Barrier(
        TASKS, action=lambda: seen.append((simulator.count("login"), simulator.count("list")))
    )
    met: set[int] = set()
    lock = threading.Lock()
    send = requests.Session.send

    def send_then_meet(self: requests.Session, request: requests.PreparedRequest, **kwargs: Any):
        response = send(self, request, **kwargs)
        if request.path_url.startswith("/api/campaigns?"):
            with lock:
                first = id(self) not in met
                met.add(id(self))
            if first:
                meeting.wait(timeout=MEETING_TIMEOUT)
        return response

    monkeypatch.setattr(requests.Session, "send", send_then_meet)


def test_eight_concurrent_extractions_of_overlapping_intervals_are_each_exact(
    simulator, patient_conn_id, tmp_path, monkeypatch
):
    intervals = overlapping_intervals(simulator)
    assert len(intervals) == TASKS
    assert len(set(intervals)) == TASKS - 2, "two intervals are extracted twice at once"
    seen: list[tuple[int, int]] = []
    meet_after_the_first_page(monkeypatch, simulator, seen)

    def run(index: int) -> dict[str, Any]:
        start, end = intervals[index]
        return extract(
            patient_conn_id,
            tmp_path / f"part-{index}.jsonl",
            start=start,
            end=end,
            page_size=PAGE_SIZE,
            convert_timestamps=False,
        )

    with ThreadPoolExecutor(TASKS) as pool:
        summaries = list(pool.map(run, range(TASKS)))

    # All eight had logged in and read exactly one page, and each had more to read: they overlapped.
    assert seen == [(TASKS, TASKS)]
    expected_pages = []
    for index, ((start, end), summary) in enumerate(zip(intervals, summaries, strict=True)):
        lines = (tmp_path / f"part-{index}.jsonl").read_text().splitlines()
        records = [json.loads(line) for line in lines]
        truth = simulator.ground_truth(start, end)
        assert records == truth, f"task {index}: {start:%Y-%m-%d}..{end:%Y-%m-%d} is not its ground truth"
        assert len(truth) > 100
        pages = sum(window_pages(simulator, start, end, PAGE_SIZE))
        assert pages > 1, "a run still had pages to read when the eight met"
        expected_pages.append(pages)
        assert (summary["records"], summary["logins"], summary["retries"]) == (len(truth), 1, 0)
        assert summary["requests"] == pages + 1
    assert summaries[-1]["windows"] == 2
    assert simulator.count("login") == TASKS
    assert simulator.count("list") == sum(expected_pages)
    assert simulator.count("refresh") == 0
    assert all(record.status == 200 for record in simulator.requests)
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(f"part-{i}.jsonl" for i in range(TASKS))
