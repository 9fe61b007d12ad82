"""
The extraction fault matrix for messages: every fault of the campaigns' matrix, hitting a middle
page of a three-window interval of ``GET /api/messages``, checked on the file the operator writes.

The engine is the campaigns' one (tests/reliability/test_extraction_faults.py runs every position);
this checks that the messages resource goes through it with the same outcomes and messages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bsg_provider.client.connection import DEFAULT_MAX_CONCURRENCY
from bsg_provider.operators.messages import BsgExtractMessagesOperator
from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env
from tests.reliability.conftest import (
    NEVER_CLEARS_TIMEOUT_RETRIES,
    SHORT_TIMEOUT,
    assert_requests_until_failure,
    assert_retries,
    read_ids,
    seven_months,
)
from tests.reliability.test_extraction_faults import DRIFT, FAULTS, PREVIOUS, Fault, assert_sorted_and_unique

FILE_NAME = "messages.jsonl"
PAGE_SIZE = 100


def for_messages(fault: Fault) -> Fault:
    """The campaigns' fault with its expected message naming the messages endpoint."""
    message = fault.message.replace(r"/api/campaigns \(list\)", r"/api/messages \(messages\)")
    message = message.replace("/api/campaigns", "/api/messages")
    return Fault(fault.kind, fault.options, fault.retried, fault.error, message)


MESSAGE_FAULTS = {name: for_messages(fault) for name, fault in FAULTS.items()}


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[BsgSimulator]:
    options = {"campaigns": 3000, "seed": 7, "messages_per_campaign": 2}
    with BsgSimulator(api_key="test_message_faults", **options) as simulator:
        connections = (
            ("bsg_msg_faults", {}),
            ("bsg_msg_slow", {"timeout": SHORT_TIMEOUT}),
            # A read timeout that never clears waits the real clock on every attempt: a smaller budget.
            ("bsg_msg_stubborn", {"timeout": SHORT_TIMEOUT, "max_retries": NEVER_CLEARS_TIMEOUT_RETRIES}),
        )
        for conn_id, extra in connections:
            name, value = bsg_connection_env(
                conn_id, host=simulator.url, api_key=simulator.api_key, **{**FAST_RETRY_EXTRAS, **extra}
            )
            monkeypatch.setenv(name, value)
        yield simulator


def extract(name: str, path: Path, start: Any, end: Any, *, conn_id: str | None = None) -> dict[str, Any]:
    operator = BsgExtractMessagesOperator(
        task_id="m",
        output_path=f"file://{path}",
        phone="drop",
        start=start,
        end=end,
        page_size=PAGE_SIZE,
        bsg_conn_id=conn_id or ("bsg_msg_slow" if name == "read_timeout" else "bsg_msg_faults"),
    )
    return operator.execute({})


def middle_request(sim: BsgSimulator, tmp_path: Path) -> tuple[Any, Any, int]:
    """The interval and the index of its middle messages request in a clean run."""
    start, end = seven_months(sim)
    summary = extract("clean", tmp_path / "clean" / FILE_NAME, start, end)
    assert summary["windows"] == 3
    requests = sim.count("messages")
    assert requests >= 10
    sim.clear_requests()
    return start, end, requests // 2


def truth(sim: BsgSimulator, start: Any, end: Any) -> set[int]:
    return set(sim.message_ground_truth_ids(start, end))


@pytest.mark.parametrize("name", sorted(MESSAGE_FAULTS))
def test_one_fault_in_the_middle_still_gives_the_exact_file(sim, tmp_path, name):
    fault = MESSAGE_FAULTS[name]
    start, end, skip = middle_request(sim, tmp_path)
    before = truth(sim, start, end)
    injected = sim.inject(fault.kind, endpoint="messages", skip=skip, times=1, **fault.options)
    out = tmp_path / "out"

    summary = extract(name, out / FILE_NAME, start, end)

    assert injected.hits == 1
    ids = read_ids(out / FILE_NAME)
    assert_sorted_and_unique(ids)
    after = truth(sim, start, end)
    if name == "delete":
        assert len(before - after) == DRIFT and after <= set(ids) <= before
    else:
        assert set(ids) == after
    if name == "insert":
        assert len(after - before) == DRIFT
    assert summary["records"] == len(ids)
    assert_retries(summary["retries"], name, 1 if fault.retried else 0)
    assert os.listdir(out) == [FILE_NAME], "no temporary file left beside the output"


@pytest.mark.parametrize("name", sorted(MESSAGE_FAULTS))
def test_a_fault_that_never_clears_fails_clearly_and_keeps_the_previous_file(sim, tmp_path, name):
    fault = MESSAGE_FAULTS[name]
    start, end, skip = middle_request(sim, tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    target = out / FILE_NAME
    target.write_bytes(PREVIOUS)
    sim.inject(fault.kind, endpoint="messages", skip=skip, times=None, **fault.options)

    timeout_case = name == "read_timeout"
    with pytest.raises(fault.error, match=fault.message):
        extract(name, target, start, end, conn_id="bsg_msg_stubborn" if timeout_case else None)

    if fault.retried:
        retries = NEVER_CLEARS_TIMEOUT_RETRIES if timeout_case else FAST_RETRY_EXTRAS["max_retries"]
        assert_requests_until_failure(sim.count("messages"), skip, retries + 1, DEFAULT_MAX_CONCURRENCY)
    assert target.read_bytes() == PREVIOUS
    assert os.listdir(out) == [FILE_NAME]
    sim.clear_faults()
    extract("clean", target, start, end)
    assert set(read_ids(target)) == truth(sim, start, end)
    assert [json.loads(line)["id"] for line in target.read_text().splitlines()] == sorted(read_ids(target))
