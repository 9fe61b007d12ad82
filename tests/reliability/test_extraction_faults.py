"""
The extraction fault matrix: every fault the simulator can inject, at the first, a middle and
the last list page of a three-window interval, checked on the file the operator writes.

The hook-level matrix (tests/hooks/test_bsg.py) checks the records the hook yields; this one
checks what a data engineer gets: the file at the final path, nothing else in its directory.
"""

from __future__ import annotations

import bisect
import itertools
import os
from dataclasses import dataclass, field
from typing import Any

import pytest

from bsg_provider.client.connection import DEFAULT_MAX_CONCURRENCY as DEFAULT_CONCURRENCY
from bsg_provider.errors import (
    BsgAuthError,
    BsgError,
    BsgMalformedResponseError,
    BsgPagingError,
    BsgRateLimitError,
    BsgServerError,
    BsgTransportError,
)
from bsg_provider.extraction.windows import plan_windows
from tests.conftest import FAST_RETRY_EXTRAS
from tests.reliability.conftest import (
    CONCURRENCIES,
    NEVER_CLEARS_TIMEOUT_RETRIES,
    PAGE_SIZE,
    SHORT_TIMEOUT,
    assert_requests_until_failure,
    assert_retries,
    extract,
    faulted_fetches,
    possible_requests,
    read_ids,
    seven_months,
    window_pages,
)

FILE_NAME = "campaigns.jsonl"
#: Campaigns an insert or delete fault adds or removes at once.
DRIFT = 7
#: What a previous successful run left at the final path, in the cases that have one.
PREVIOUS = b'{"id": 1, "name": "written by an earlier run"}\n'


@dataclass(frozen=True)
class Fault:
    """A simulator fault, and what the extraction must say when it never stops."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    #: Retried by the hook (each hit costs one retry), as opposed to handled another way.
    retried: bool = True
    error: type[BsgError] = BsgError
    #: A regex the error message must match once the fault outlasts the retry budget.
    message: str = ""


FAULTS = {
    "429": Fault(
        "status", {"status": 429}, error=BsgRateLimitError, message=r"HTTP 429 to GET /api/campaigns \(list\)"
    ),
    "429_retry_after": Fault(
        "status",
        {"status": 429, "retry_after": "1"},
        error=BsgRateLimitError,
        message=r"HTTP 429 to GET /api/campaigns \(list\)",
    ),
    **{
        str(status): Fault(
            "status",
            {"status": status},
            error=BsgServerError,
            message=rf"HTTP {status} to GET /api/campaigns \(list\)",
        )
        for status in (500, 502, 503, 504)
    },
    "reset": Fault(
        "reset",
        error=BsgTransportError,
        message=r"Connection to http://127\.0\.0\.1:\d+ failed during GET /api/campaigns",
    ),
    "read_timeout": Fault(
        "delay",
        {"delay": 3 * SHORT_TIMEOUT},
        error=BsgTransportError,
        message=rf"No answer to GET /api/campaigns from http://127\.0\.0\.1:\d+ within {SHORT_TIMEOUT:g} s",
    ),
    "malformed_json": Fault(
        "malformed_json",
        error=BsgMalformedResponseError,
        message=r"answered GET /api/campaigns with HTTP 200 and a body that is not valid JSON",
    ),
    "html_200": Fault(
        "html",
        error=BsgMalformedResponseError,
        message=r"answered GET /api/campaigns with HTTP 200 but Content-Type 'text/html' instead of JSON",
    ),
    # A 401 costs one new login and a replay; a token refused again right after is not retried.
    "token_expiry": Fault(
        "expire_token",
        retried=False,
        error=BsgAuthError,
        message=r"refused GET /api/campaigns \(list\) \(HTTP 401: .*\); the token was refused",
    ),
    # Rows changing mid-way make the window be read again; a total that never settles gives up.
    "insert": Fault(
        "insert",
        {"count": DRIFT},
        retried=False,
        error=BsgPagingError,
        message=r"Gave up paging a window after 5 re-reads: its total changed from \d+ to \d+ while paging",
    ),
    "delete": Fault(
        "delete",
        {"count": DRIFT},
        retried=False,
        error=BsgPagingError,
        message=r"Gave up paging a window after 5 re-reads: its total changed from \d+ to \d+ while paging",
    ),
}
POSITIONS = ("first", "middle", "last")


@pytest.fixture
def conn_for(request: pytest.FixtureRequest):
    """The connection a fault needs: a short read timeout for the timeout case, fast retries for all."""

    def pick(fault: str) -> str:
        return request.getfixturevalue("slow_conn_id" if fault == "read_timeout" else "bsg_conn_id")

    return pick


def fault_plan(
    simulator, where: str, concurrency: int = DEFAULT_CONCURRENCY
) -> tuple[Any, Any, int, set[int]]:
    """
    The interval, the list request to hit (its index among a clean run's) and the windows it can
    fall in: exactly one at concurrency 1; with pages in flight, those of the requests the
    simulator may see at that place (:func:`~tests.reliability.conftest.possible_requests`).
    """
    start, end = seven_months(simulator)
    pages = window_pages(simulator, start, end, PAGE_SIZE)
    assert len(pages) == 3 and sum(pages) >= 10, pages
    skip = {"first": 0, "middle": sum(pages) // 2, "last": sum(pages) - 1}[where]
    ends = list(itertools.accumulate(pages))
    windows = {bisect.bisect_right(ends, k) for k in possible_requests(skip, concurrency, sum(pages))}
    return start, end, skip, windows


def assert_hit_in_window(simulator, start, end, windows: set[int], kind: str) -> None:
    """The first faulted list request asked for a window we meant: first, a middle one, the last."""
    hit = next(r for r in simulator.requests if r.endpoint == "list" and r.fault == kind)
    plan = plan_windows(start, end, tz=simulator.timezone)
    expected = {plan.windows[window].api_bounds("UTC")[0] for window in windows}
    assert hit.query["filter[from]"] in expected


def assert_sorted_and_unique(ids: list[int]) -> None:
    assert ids == sorted(ids), "the file is sorted by id"
    assert len(ids) == len(set(ids)), "no campaign appears twice"


@pytest.mark.parametrize("concurrency", CONCURRENCIES, ids=lambda c: f"concurrency{c}")
@pytest.mark.parametrize("where", POSITIONS)
@pytest.mark.parametrize("name", sorted(FAULTS))
def test_one_fault_anywhere_still_gives_the_exact_file(
    simulator, conn_for, tmp_path, name, where, concurrency
):
    fault = FAULTS[name]
    conn_id = conn_for(name)
    start, end, skip, windows = fault_plan(simulator, where, concurrency)
    before = simulator.ground_truth_ids(start, end)
    injected = simulator.inject(fault.kind, endpoint="list", skip=skip, times=1, **fault.options)

    summary = extract(
        conn_id, tmp_path / FILE_NAME, start=start, end=end, page_size=PAGE_SIZE, max_concurrency=concurrency
    )

    assert injected.hits == 1
    assert_hit_in_window(simulator, start, end, windows, fault.kind)
    if name != "read_timeout":  # (a timed-out request is still being answered while its retry arrives)
        assert simulator.max_in_flight <= concurrency
    ids = read_ids(tmp_path / FILE_NAME)
    assert_sorted_and_unique(ids)
    # Inserted rows belong to the truth after the run; deleted ones may have been read before they went.
    truth = simulator.ground_truth_ids(start, end)
    if name == "delete":
        assert len(before - truth) == DRIFT
        assert truth <= set(ids) <= before
    else:
        assert set(ids) == truth
    if name == "insert":
        assert len(truth - before) == DRIFT
    assert summary["records"] == len(ids)
    assert_retries(summary["retries"], name, 1 if fault.retried else 0)
    assert summary["logins"] == (2 if name == "token_expiry" else 1)
    assert os.listdir(tmp_path) == [FILE_NAME], "no temporary file left beside the output"


@pytest.mark.parametrize("where", POSITIONS)
@pytest.mark.parametrize("name", sorted(FAULTS))
def test_a_fault_that_never_clears_fails_clearly_and_leaves_the_path_alone(
    simulator, conn_for, request, tmp_path, name, where
):
    fault = FAULTS[name]
    # A read timeout waits the real clock on every attempt: that case runs a smaller budget.
    timeout_case = name == "read_timeout"
    conn_id = request.getfixturevalue("stubborn_timeout_conn_id") if timeout_case else conn_for(name)
    start, end, skip, windows = fault_plan(simulator, where)
    target = tmp_path / FILE_NAME
    # A previous run's file must survive a failed rerun byte for byte; without one, nothing may appear.
    has_previous = where != "first"
    if has_previous:
        target.write_bytes(PREVIOUS)
    simulator.inject(fault.kind, endpoint="list", skip=skip, times=None, **fault.options)

    with pytest.raises(fault.error, match=fault.message):
        extract(conn_id, target, start=start, end=end, page_size=PAGE_SIZE)

    assert_hit_in_window(simulator, start, end, windows, fault.kind)
    if fault.retried:
        retries = NEVER_CLEARS_TIMEOUT_RETRIES if timeout_case else FAST_RETRY_EXTRAS["max_retries"]
        assert_requests_until_failure(simulator.count("list"), skip, retries + 1, DEFAULT_CONCURRENCY)
    if name == "token_expiry":
        # Each failed page: one replay after one new login (shared by the pages refused together), then stop.
        assert_requests_until_failure(simulator.count("list"), skip, 2, DEFAULT_CONCURRENCY)
        assert 2 <= simulator.count("login") <= 1 + faulted_fetches(DEFAULT_CONCURRENCY)
    if has_previous:
        assert target.read_bytes() == PREVIOUS
        assert os.listdir(tmp_path) == [FILE_NAME], "no temporary file left beside the output"
    else:
        assert os.listdir(tmp_path) == [], "no partial or temporary file"

    simulator.clear_faults()
    # The rerun is about the file once the fault has gone, so it needs no short timeout.
    summary = extract(conn_for("clean"), target, start=start, end=end, page_size=PAGE_SIZE)
    ids = read_ids(target)
    assert_sorted_and_unique(ids)
    assert set(ids) == simulator.ground_truth_ids(start, end)
    assert summary["records"] == len(ids) > 1000
    assert summary["retries"] == 0
    assert os.listdir(tmp_path) == [FILE_NAME]
