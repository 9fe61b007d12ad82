"""
SIGKILL in the middle of an extraction: the final path is absent or keeps its previous
version, the rerun is complete, and we see where the half-done work was kept.

The extraction runs in a child process (as a task does in a worker) against the simulator
this test serves; the test kills it with SIGKILL, which no cleanup code can intercept.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.reliability.conftest import extract, read_ids, seven_months

FILE_NAME = "campaigns.jsonl"
PAGE_SIZE = 100
PREVIOUS = b'{"id": 1, "name": "written by an earlier run"}\n'
#: How ``bsg_provider.extraction.storage.atomic_write`` names its temporary sibling.
TEMPORARY_NAME = re.compile(rf"\.{re.escape(FILE_NAME)}\.tmp-[0-9a-f]{{32}}")
#: List requests answered before the child is slowed down (and killed).
PAGES_BEFORE_KILL = 4
#: Seconds to wait for the child to reach the point where it is killed (it imports Airflow first).
REACH_TIMEOUT = 60

#: The task's work in a child process. With a marker path as the last argument, it stops right
#: after the spool was copied into the temporary file (before the rename) and says so there:
#: the only way to kill it at that instant every time.
CHILD = textwrap.dedent(
    """
    import sys
    import time

    import bsg_provider.operators.campaigns as campaigns
    import bsg_provider.operators.extraction as extraction

    conn_id, path, start, end, page_size, marker = sys.argv[1:7]

    if marker:
        # The spool of the extraction engine both operators share.
        class HeldSpool(extraction.RecordSpool):
            def copy_to(self, target):
                super().copy_to(target)
                target.flush()
                open(marker, "w").close()
                time.sleep(120)  # holds the child here until the test kills it

        extraction.RecordSpool = HeldSpool

    campaigns.BsgExtractCampaignsOperator(
        task_id="extract", output_path="file://" + path, bsg_conn_id=conn_id,
        start=start, end=end, page_size=int(page_size),
    ).execute({})
    """
)


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start the extraction in a child process with its own temporary directory; kill leftovers."""
    children: list[subprocess.Popen[bytes]] = []

    def start(conn_id: str, target: Path, start: object, end: object, marker: str = "") -> subprocess.Popen:
        env = {**os.environ, "TMPDIR": str(tmp_path / "tmp")}
        log = (tmp_path / "child.log").open("wb")
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, conn_id, str(target), str(start), str(end), str(PAGE_SIZE), marker],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        children.append(child)
        return child

    (tmp_path / "tmp").mkdir()
    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.wait(10)


def wait_for(condition: Callable[[], bool], child: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + REACH_TIMEOUT
    while not condition():
        assert child.poll() is None, f"the child ended early ({child.returncode}):\n{log.read_text()}"
        assert time.monotonic() < deadline, f"the child did not get there in time:\n{log.read_text()}"
        time.sleep(0.02)  # polls the child's progress


def open_deleted_files(pid: int) -> list[str]:
    """Files the process holds open that no longer have a name (Linux /proc)."""
    targets = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
        except OSError:
            continue  # closed meanwhile
    return [target.removesuffix(" (deleted)") for target in targets if target.endswith(" (deleted)")]


def kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    assert child.wait(10) == -signal.SIGKILL


def test_sigkill_while_paging_leaves_no_file_and_no_temporary_data(simulator, bsg_conn_id, spawn, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / FILE_NAME
    start, end = seven_months(simulator)
    # Slow every page after the first few, so the kill lands while pages are still being read.
    simulator.inject("delay", skip=PAGES_BEFORE_KILL, times=None, delay=0.5)
    child = spawn(bsg_conn_id, target, start.isoformat(), end.isoformat())

    wait_for(lambda: simulator.count("list") > PAGES_BEFORE_KILL, child, tmp_path / "child.log")
    # The records read so far sit in the spool: an unlinked file in the temporary directory.
    spool_dir = str(tmp_path / "tmp")
    held = [path for path in open_deleted_files(child.pid) if os.path.dirname(path) == spool_dir]
    assert len(held) == 1, open_deleted_files(child.pid)
    assert os.listdir(spool_dir) == []
    assert os.listdir(out) == []
    kill(child)

    assert not target.exists()
    assert os.listdir(out) == [], "no partial or temporary file beside the output"
    assert os.listdir(spool_dir) == [], "the spool vanished with the process"
    simulator.clear_faults()
    summary = extract(bsg_conn_id, target, start=start, end=end, page_size=PAGE_SIZE)
    assert read_ids(target) == sorted(simulator.ground_truth_ids(start, end))
    assert summary["records"] > 1000
    assert os.listdir(out) == [FILE_NAME]


def test_sigkill_while_paging_keeps_the_previous_version(simulator, bsg_conn_id, spawn, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    target = out / FILE_NAME
    target.write_bytes(PREVIOUS)
    start, end = seven_months(simulator)
    simulator.inject("delay", skip=PAGES_BEFORE_KILL, times=None, delay=0.5)
    child = spawn(bsg_conn_id, target, start.isoformat(), end.isoformat())

    wait_for(lambda: simulator.count("list") > PAGES_BEFORE_KILL, child, tmp_path / "child.log")
    kill(child)

    assert target.read_bytes() == PREVIOUS
    assert os.listdir(out) == [FILE_NAME]
    simulator.clear_faults()
    extract(bsg_conn_id, target, start=start, end=end, page_size=PAGE_SIZE)
    assert read_ids(target) == sorted(simulator.ground_truth_ids(start, end))


def test_sigkill_during_the_final_write_keeps_the_previous_version_and_the_rerun_cleans_up(
    simulator, bsg_conn_id, spawn, tmp_path
):
    out = tmp_path / "out"
    out.mkdir()
    target = out / FILE_NAME
    target.write_bytes(PREVIOUS)
    start, end = seven_months(simulator)
    marker = tmp_path / "copied"
    child = spawn(bsg_conn_id, target, start.isoformat(), end.isoformat(), marker=str(marker))

    wait_for(marker.exists, child, tmp_path / "child.log")
    kill(child)

    assert target.read_bytes() == PREVIOUS, "the previous version is intact"
    # SIGKILL skips atomic_write's cleanup: the complete-but-unrenamed temporary stays, hidden.
    leftovers = sorted(set(os.listdir(out)) - {FILE_NAME})
    assert len(leftovers) == 1 and TEMPORARY_NAME.fullmatch(leftovers[0]), leftovers
    expected = sorted(simulator.ground_truth_ids(start, end))
    assert read_ids(out / leftovers[0]) == expected

    # A fresh leftover may belong to a run still writing the same path: a rerun keeps it.
    extract(bsg_conn_id, target, start=start, end=end, page_size=PAGE_SIZE)
    assert read_ids(target) == expected
    assert sorted(os.listdir(out)) == sorted([FILE_NAME, leftovers[0]])
    # An hour old, it is stale: the next rerun removes it.
    old = time.time() - 2 * 3600
    os.utime(out / leftovers[0], (old, old))
    extract(bsg_conn_id, target, start=start, end=end, page_size=PAGE_SIZE)
    assert os.listdir(out) == [FILE_NAME]
