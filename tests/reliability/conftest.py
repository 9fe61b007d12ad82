"""
Shared pieces of the reliability tests: the interval they extract, running the operator,
reading its file back, and how many list requests a clean run sends.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from bsg_provider.simulator import BsgSimulator
from bsg_provider.windows import plan_windows
from tests.conftest import bsg_connection_env

#: Records per list request: small enough that seven months take more than ten pages.
PAGE_SIZE = 100
#: A read timeout short enough to keep the timeout cases fast. On a loaded machine an ordinary
#: answer can outlast it too, so :func:`assert_retries` lets the timeout case retry more than once.
SHORT_TIMEOUT = 0.5


def seven_months(sim: BsgSimulator) -> tuple[datetime, datetime]:
    """213 days ending two days ago on a whole UTC day: three API windows of settled campaigns."""
    end = sim.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    return end - timedelta(days=213), end


def extract(conn_id: str, path: Path, **kwargs: Any) -> dict[str, Any]:
    """Run the operator once, as a task does after rendering its templates; return its summary."""
    operator = BsgExtractCampaignsOperator(
        task_id="extract", output_path=f"file://{path}", bsg_conn_id=conn_id, **kwargs
    )
    return operator.execute({})


def assert_retries(retries: int, fault: str, expected: int) -> None:
    """
    The retries a run made for one injected fault: exactly ``expected``, except that under the
    short read timeout a busy machine may make an unfaulted answer late as well (each such
    retry is still a retry the hook had to make, so at least ``expected`` and within budget).
    """
    if fault == "read_timeout":
        assert expected <= retries <= expected + 3, retries
    else:
        assert retries == expected


def read_ids(path: Path) -> list[int]:
    """The ids of a JSON Lines file, in file order."""
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def window_pages(sim: BsgSimulator, start: datetime, end: datetime, page_size: int) -> list[int]:
    """
    List requests per window of a clean run: one per page, and one for an empty window. Each
    request asks for a second more on each side than its window (filter[from] = start - 1 s,
    filter[to] = end, both inclusive in the default simulator).
    """
    plan = plan_windows(start, end, tz=sim.timezone)
    second = timedelta(seconds=1)
    return [
        max(1, math.ceil(len(sim.ground_truth_ids(w.start - second, w.end + second)) / page_size))
        for w in plan.windows
    ]


@pytest.fixture
def slow_conn_id(simulator: BsgSimulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection to :func:`simulator` that gives up on an answer after :data:`SHORT_TIMEOUT`."""
    name, value = bsg_connection_env(
        "bsg_short_timeout",
        host=simulator.url,
        api_key=simulator.api_key,
        timeout=SHORT_TIMEOUT,
        max_retries=4,
        retry_max_wait=0.02,
    )
    monkeypatch.setenv(name, value)
    return "bsg_short_timeout"
