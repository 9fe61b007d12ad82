"""Fixtures for the sensor tests: campaigns whose status the test moves once the sensor is waiting."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bsg_provider.simulator import BsgSimulator
from tests.sensors.status_flip import StatusFlip


@pytest.fixture
def flip(simulator: BsgSimulator) -> Iterator[Callable[..., StatusFlip]]:
    """Start :class:`StatusFlip` threads on the test's simulator; they stop with the test."""
    started: list[StatusFlip] = []

    def start(campaign_id: int, status: str, *, after_reads: int) -> StatusFlip:
        flipper = StatusFlip(simulator, campaign_id, status, after_reads)
        flipper.start()
        started.append(flipper)
        return flipper

    yield start
    for flipper in started:
        flipper.stop()


@pytest.fixture
def parsed_reschedule_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    """
    Work around an Airflow 3.0 bug that only ``dag.test()`` meets in reschedule mode.

    3.0's API client builds the first reschedule date with ``model_construct``, leaving it an
    unparsed string; a real worker re-parses every supervisor answer, but ``dag.test()``'s
    in-process supervisor hands the object over as is and the sensor's own timeout check fails
    on ``datetime - str``. Airflow 3.1+ validates the answer, which this restores on 3.0 (and
    is a no-op after).
    """
    from airflow.sdk.api.client import TaskInstanceOperations

    original = TaskInstanceOperations.get_reschedule_start_date

    def parsed(self: Any, *args: Any, **kwargs: Any) -> Any:
        answer = original(self, *args, **kwargs)
        return type(answer).model_validate(answer.model_dump())

    monkeypatch.setattr(TaskInstanceOperations, "get_reschedule_start_date", parsed)
