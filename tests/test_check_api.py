"""The API probe against the simulator: it says ``holds`` for the default reading and names each other one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.probe.checks import ASSUMPTIONS, CANNOT_TELL, CONTRADICTED, HOLDS
from bsg_provider.probe.run import MAX_REQUESTS, ApiProbe, main
from bsg_provider.simulator import BsgSimulator
from tests.conftest import bsg_connection_env

ROOT = Path(__file__).resolve().parents[1]
CANARY = "test_canary_key_7f3a9c1e5b"
CONN_ID = "bsg_probe"
Probe = Callable[..., tuple[int, dict[str, dict[str, str]], str]]


@contextmanager
def simulated(**options: Any) -> Iterator[BsgSimulator]:
    """A simulator on the real clock (the probe measures the 30-day limit against it)."""
    with BsgSimulator(campaigns=3000, seed=7, api_key=CANARY, **options) as sim:
        yield sim


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Probe:
    """Run ``main(["--conn-id", CONN_ID, "--json"])`` against a simulator; return status, verdicts, output."""

    def run(sim: BsgSimulator, api_timezone: str = "UTC", api_key: str | None = None) -> tuple[int, Any, str]:
        name, value = bsg_connection_env(
            CONN_ID,
            host=sim.url,
            api_key=api_key or sim.api_key,
            api_timezone=api_timezone,
            max_retries=1,
            retry_max_wait=0.01,
            timeout=5,
        )
        monkeypatch.setenv(name, value)
        status = main(["--conn-id", CONN_ID, "--json"])
        out, err = capsys.readouterr()
        verdicts = {v["assumption"]: v for v in json.loads(out)["verdicts"]} if out.strip() else {}
        return status, verdicts, out + err

    return run


def assert_verdicts(verdicts: dict[str, dict[str, str]], expected: dict[str, str]) -> None:
    got = {key: verdicts[key]["verdict"] for key in ASSUMPTIONS}
    assert got == {key: expected.get(key, HOLDS) for key in ASSUMPTIONS}, json.dumps(verdicts, indent=1)


def assert_read_only_and_within_budget(sim: BsgSimulator) -> None:
    assert {(r.method, r.endpoint) for r in sim.requests} <= {
        ("POST", "login"),
        ("GET", "list"),
        ("GET", "messages"),
    }
    assert sim.count("any") <= MAX_REQUESTS
    assert sim.count("login") == 1


def test_default_reading_holds(probe: Probe) -> None:
    with simulated() as sim:
        status, verdicts, output = probe(sim)
        assert_read_only_and_within_budget(sim)
        messages_requests = sim.count("messages")
    assert status == 0
    assert_verdicts(verdicts, {})
    assert CANARY not in output and "eyJ" not in output
    # The messages' window rules: evidence, two field windows, three spans, two future limits.
    assert messages_requests == 8
    assert (
        "a window of the delivery +/- 1 s did not return it" in verdicts["messages_filter_field"]["evidence"]
    )
    assert "3 calendar months and 1 s back: refused" in verdicts["messages_span_rule"]["evidence"]
    assert "the messages' limit is the campaigns' limit" in verdicts["messages_future_limit"]["evidence"]


READINGS = [
    pytest.param({"from_bound": "exclusive"}, {"from_bound": CONTRADICTED}, "exclusive", id="from-exclusive"),
    pytest.param(
        {"to_bound": "exclusive"},
        {"to_bound": CONTRADICTED, "precision": CANNOT_TELL},
        "filter[to] is exclusive",
        id="to-exclusive",
    ),
    pytest.param(
        {"from_bound": "exclusive", "to_bound": "exclusive"},
        {"from_bound": CONTRADICTED, "to_bound": CONTRADICTED},
        "exclusive",
        id="both-exclusive",
    ),
    pytest.param(
        {"created_precision": "subsecond", "timestamp_format": "iso"},
        {"precision": CONTRADICTED, "to_bound": CANNOT_TELL},
        "fraction of a second",
        id="subsecond-shown",
    ),
    pytest.param(
        {"created_precision": "subsecond"},
        {"to_bound": CONTRADICTED, "precision": CANNOT_TELL},
        "a fraction of a second the API does not show",
        id="subsecond-hidden",
    ),
    # The messages endpoint follows the campaigns' window rules in the simulator, as assumed.
    pytest.param(
        {"span_rule": "90d"},
        {"span_rule": CONTRADICTED, "messages_span_rule": CONTRADICTED},
        "90 days",
        id="90-days",
    ),
    pytest.param(
        {"filter_field": "start_at"}, {"filter_field": CONTRADICTED}, "select on start_at", id="start_at"
    ),
    pytest.param({"filter_formats": "iso"}, {"date_formats": CONTRADICTED}, "ISO 8601 only", id="iso-only"),
    pytest.param(
        {"timezone": "Europe/Berlin"},
        {"timezone": CONTRADICTED, "future_limit": CANNOT_TELL},
        "UTC+01:00",
        id="account-in-berlin",
    ),
]


@pytest.mark.parametrize(("reading", "expected", "explanation"), READINGS)
def test_each_reading_is_named(probe: Probe, reading: dict, expected: dict, explanation: str) -> None:
    with simulated(**reading) as sim:
        status, verdicts, output = probe(sim)
        assert_read_only_and_within_budget(sim)
    assert status == 1
    assert_verdicts(verdicts, expected)
    contradicted = [v["evidence"] for v in verdicts.values() if v["verdict"] == CONTRADICTED]
    assert any(explanation in evidence for evidence in contradicted), contradicted
    assert CANARY not in output and "eyJ" not in output


def test_both_formats_accepted_holds(probe: Probe) -> None:
    with simulated(filter_formats=("plain", "iso")) as sim:
        status, verdicts, _ = probe(sim)
    assert status == 0
    assert_verdicts(verdicts, {})
    assert "ISO 8601" in verdicts["date_formats"]["evidence"]
    assert "was accepted" in verdicts["date_formats"]["evidence"].split(";")[1]


def test_missing_page_offset_does_not_disturb_the_probe(probe: Probe) -> None:
    with simulated(page_offset_in_meta=False) as sim:
        status, verdicts, _ = probe(sim)
    assert status == 0
    assert_verdicts(verdicts, {})


def test_connection_timezone_behind_the_account(probe: Probe) -> None:
    with simulated() as sim:  # the account is UTC; the connection says New York
        status, verdicts, _ = probe(sim, api_timezone="America/New_York")
    assert status == 1
    assert_verdicts(verdicts, {"timezone": CONTRADICTED, "future_limit": CANNOT_TELL})
    assert "UTC+00:00" in verdicts["timezone"]["evidence"]


def test_matching_non_utc_timezone_holds(probe: Probe) -> None:
    with simulated(timezone="Asia/Tokyo", timestamp_format="mixed") as sim:
        status, verdicts, _ = probe(sim, api_timezone="Asia/Tokyo")
    assert status == 0
    assert_verdicts(verdicts, {})
    assert "offsets matching Asia/Tokyo" in verdicts["timezone"]["evidence"]


def test_offsets_in_timestamps_contradict_the_timezone(probe: Probe) -> None:
    with simulated(timezone="Asia/Tokyo", timestamp_format="iso") as sim:
        status, verdicts, _ = probe(sim, api_timezone="UTC")
    assert status == 1
    assert verdicts["timezone"]["verdict"] == CONTRADICTED
    assert "UTC+09:00" in verdicts["timezone"]["evidence"]


def test_empty_account_cannot_tell_what_needs_campaigns(probe: Probe) -> None:
    with BsgSimulator(campaigns=0, api_key=CANARY) as sim:
        status, verdicts, _ = probe(sim)
        assert_read_only_and_within_budget(sim)
    assert status == 0
    needs_campaigns = ("filter_field", "from_bound", "to_bound", "precision", "messages_filter_field")
    assert_verdicts(verdicts, dict.fromkeys(needs_campaigns, CANNOT_TELL))


def test_wrong_key_exits_2_without_printing_it(probe: Probe) -> None:
    with simulated() as sim:
        status, verdicts, output = probe(sim, api_key="live_wrong_canary_3e1d")
    assert status == 2 and verdicts == {}
    assert "Cannot check connection 'bsg_probe'" in output and "401" in output
    assert "live_wrong_canary_3e1d" not in output


def test_unreachable_api_exits_2(probe: Probe) -> None:
    with simulated() as sim:
        sim.inject("status", status=503, times=None)
        status, _, output = probe(sim)
        assert sim.count("any") <= 4  # login, then one list request and its retry: nothing more
    assert status == 2 and "503" in output


def test_budget_is_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    with simulated() as sim:
        name, value = bsg_connection_env(CONN_ID, host=sim.url, api_key=sim.api_key)
        monkeypatch.setenv(name, value)
        hook = BsgHook(CONN_ID)
        try:
            verdicts = ApiProbe(hook, max_requests=8).run()
        finally:
            hook.close()
        assert sim.count("any") <= 8
    by_key = {v.key: v for v in verdicts}
    assert by_key["date_formats"].verdict == HOLDS
    assert by_key["future_limit"].verdict == CANNOT_TELL
    assert "budget of 8 requests" in by_key["future_limit"].evidence


def test_text_report_and_command_line() -> None:
    with simulated() as sim:
        name, value = bsg_connection_env(CONN_ID, host=sim.url, api_key=sim.api_key, max_retries=1)
        result = subprocess.run(
            [sys.executable, "-m", "bsg_provider.check_api", "--conn-id", CONN_ID],
            capture_output=True,
            text=True,
            env={**os.environ, name: value, "PYTHONPATH": str(ROOT)},
            timeout=120,
            cwd=ROOT,
        )
        assert_read_only_and_within_budget(sim)
    assert result.returncode == 0, result.stdout + result.stderr
    for key in ASSUMPTIONS:
        assert f"holds         {key}: " in result.stdout
    assert "11 hold, 0 contradicted, 0 cannot tell" in result.stdout
    assert CANARY not in result.stdout + result.stderr
    assert "eyJ" not in result.stdout + result.stderr


def test_command_line_exits_1_on_a_contradiction() -> None:
    with simulated(span_rule="90d") as sim:
        name, value = bsg_connection_env(CONN_ID, host=sim.url, api_key=sim.api_key, max_retries=1)
        result = subprocess.run(
            [sys.executable, "-m", "bsg_provider.check_api", "--conn-id", CONN_ID],
            capture_output=True,
            text=True,
            env={**os.environ, name: value, "PYTHONPATH": str(ROOT)},
            timeout=120,
            cwd=ROOT,
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "contradicted  span_rule: " in result.stdout
    assert CANARY not in result.stdout + result.stderr


def test_unknown_connection_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--conn-id", "bsg_no_such_connection"]) == 2
    assert "Cannot check connection 'bsg_no_such_connection'" in capsys.readouterr().err
