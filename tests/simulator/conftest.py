"""Fixtures for the simulator's own tests: shared read-mostly simulators and fresh ones."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bsg_provider.simulator import BsgSimulator

from .helpers import NOW, Client


@pytest.fixture(scope="module")
def sim() -> Iterator[BsgSimulator]:
    """One simulator per test module, clock pinned at NOW; tests only add campaigns to it."""
    with BsgSimulator(campaigns=2000, seed=11, api_key="test_module_key", now=NOW) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def client(sim: BsgSimulator) -> Client:
    """A logged-in client of :func:`sim`."""
    api = Client(sim.url, sim.api_key)
    api.login()
    return api


@pytest.fixture
def fresh_sim() -> Iterator[BsgSimulator]:
    """A small simulator of its own, for tests that inject faults or change data."""
    with BsgSimulator(campaigns=300, seed=5, api_key="test_fresh_key", now=NOW) as simulator:
        yield simulator


@pytest.fixture
def fresh_client(fresh_sim: BsgSimulator) -> Client:
    """A logged-in client of :func:`fresh_sim`."""
    api = Client(fresh_sim.url, fresh_sim.api_key)
    api.login()
    return api
