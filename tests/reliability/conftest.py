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

from bsg_provider.client.connection import DEFAULT_MAX_CONCURRENCY
from bsg_provider.extraction.windows import plan_windows
from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from bsg_provider.simulator import BsgSimulator
from tests.conftest import bsg_connection_env

#: Records per list request: small enough that seven months take more than ten pages.
PAGE_SIZE = 100
#: A read timeout short enough to keep the timeout cases fast. On a loaded machine an ordinary
#: answer can outlast it too, so :func:`assert_retries` lets the timeout case retry more than once.
SHORT_TIMEOUT = 0.5
#: The matrix runs at the connection's default concurrency; the one-fault cases also at 1.
CONCURRENCIES = (1, DEFAULT_MAX_CONCURRENCY)


def possible_requests(skip: int, concurrency: int, requests: int) -> range:
    """
    Which request of a clean run (by its index in the sequential order) can be the one the
    simulator sees as its ``skip``-th (0-based), when no request before it failed.

    One at a time, it is request ``skip`` itself. With ``concurrency`` in flight the hook sends
    requests in the sequential order, but request ``k`` only once request ``k - 2 x concurrency``
    was answered and consumed (at most that many pages in flight or held:
    :class:`~bsg_provider.extraction.prefetch.PagePrefetcher`), so the simulator may see them in another
    order, within ``2 x concurrency - 1`` places either way.

    :param skip: how many requests the simulator let pass first.
    :param concurrency: the hook's ``max_concurrency``.
    :param requests: requests of a clean run.
    """
    places = 0 if concurrency == 1 else 2 * concurrency - 1
    return range(max(0, skip - places), min(requests, skip + places + 1))


def faulted_fetches(concurrency: int) -> int:
    """
    Page fetches that can meet a fault which never clears: the first page it fails and those
    after it, up to the ``2 x concurrency`` pages that can be outstanding (in flight or held)
    while the consumer waits for that first one; one page at a time, that page alone.
    """
    return 1 if concurrency == 1 else 2 * concurrency


def assert_requests_until_failure(count: int, skip: int, attempts: int, concurrency: int) -> None:
    """
    The list requests of a run that failed on a fault that never clears: the first failed page
    used all ``attempts``; with concurrency, other pages in flight may have used theirs too.
    """
    assert skip + attempts <= count <= skip + faulted_fetches(concurrency) * attempts, count


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


#: Retries for a read timeout that never clears: each attempt waits :data:`SHORT_TIMEOUT` of the
#: real clock, so the case that proves the budget ends keeps it at two attempts.
NEVER_CLEARS_TIMEOUT_RETRIES = 1


def _short_timeout_connection(
    sim: BsgSimulator, monkeypatch: pytest.MonkeyPatch, conn_id: str, retries: int
) -> str:
    """A connection giving up on an answer after :data:`SHORT_TIMEOUT`, with ``retries`` retries."""
    name, value = bsg_connection_env(
        conn_id,
        host=sim.url,
        api_key=sim.api_key,
        timeout=SHORT_TIMEOUT,
        max_retries=retries,
        retry_max_wait=0.02,
    )
    monkeypatch.setenv(name, value)
    return conn_id


@pytest.fixture
def slow_conn_id(simulator: BsgSimulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """A connection to :func:`simulator` that gives up on an answer after :data:`SHORT_TIMEOUT`."""
    return _short_timeout_connection(simulator, monkeypatch, "bsg_short_timeout", retries=4)


@pytest.fixture
def stubborn_timeout_conn_id(simulator: BsgSimulator, monkeypatch: pytest.MonkeyPatch) -> str:
    """Like :func:`slow_conn_id`, with :data:`NEVER_CLEARS_TIMEOUT_RETRIES` retries."""
    return _short_timeout_connection(
        simulator, monkeypatch, "bsg_stubborn_timeout", retries=NEVER_CLEARS_TIMEOUT_RETRIES
    )
