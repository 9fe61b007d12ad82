"""The readings of the unstated list rules over real HTTP: bounds, precision, span, field, formats."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest
import requests

from bsg_provider.simulator import BsgSimulator

from .helpers import NOW, SECOND, UTC, Client, wall, window
from .test_cli import ROOT, cli

MS = timedelta(milliseconds=1)
T = NOW + timedelta(days=2, hours=5)


@contextmanager
def reading(**options: Any) -> Iterator[tuple[BsgSimulator, Client]]:
    """A small simulator serving one reading, and a logged-in client."""
    with BsgSimulator(campaigns=300, seed=5, api_key="test_reading_key", now=NOW, **options) as sim:
        api = Client(sim.url, sim.api_key)
        api.login()
        yield sim, api


def ids(response: requests.Response) -> list[int]:
    assert response.status_code == 200, response.text
    return [row["id"] for row in response.json()["data"]]


def error_fields(response: requests.Response) -> list[str]:
    assert response.status_code == 422, response.text
    return sorted(response.json()["errors"])


def _edge_campaigns(sim: BsgSimulator) -> tuple[int, int, int]:
    """Campaigns at T, T + 5 s and T + 10 s; the window [T, T + 10 s] has them on both bounds."""
    return tuple(sim.add_campaign(T + timedelta(seconds=s))["id"] for s in (0, 5, 10))  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("from_bound", "to_bound", "kept"),
    [
        ("inclusive", "inclusive", (0, 1, 2)),
        ("exclusive", "inclusive", (1, 2)),
        ("inclusive", "exclusive", (0, 1)),
        ("exclusive", "exclusive", (1,)),
    ],
)
def test_bounds(from_bound: str, to_bound: str, kept: tuple[int, ...]) -> None:
    with reading(from_bound=from_bound, to_bound=to_bound) as (sim, api):
        edge = _edge_campaigns(sim)
        assert ids(api.list(window(T, T + timedelta(seconds=10)))) == [edge[i] for i in kept]
        # A one-instant window [x, x] holds x only when both bounds include it.
        expected = [edge[0]] if (from_bound, to_bound) == ("inclusive", "inclusive") else []
        assert ids(api.list(window(T, T))) == expected


def test_bound_readings_are_refused_when_unknown() -> None:
    for options in ({"from_bound": "open"}, {"to_bound": ""}, {"span_rule": "3m"}, {"filter_field": "id"}):
        with pytest.raises(ValueError, match=next(iter(options))):
            BsgSimulator(**options)
    for formats in ((), ("rfc2822",), "plain,xml"):
        with pytest.raises(ValueError, match="filter_formats"):
            BsgSimulator(filter_formats=formats)


def test_subsecond_created_at_is_truncated_when_plain_and_filtered_at_full_precision() -> None:
    with reading(created_precision="subsecond") as (sim, api):
        late = sim.add_campaign(T + 900 * MS + timedelta(microseconds=250))
        assert late["created_at"] == wall(T)  # rendered in whole seconds
        assert sim.created_at(late["id"]) == T + 900 * MS  # stored to the millisecond
        # filter[to] = T (inclusive) compares against T.900: the campaign shown as "T" is not in [.., T].
        assert late["id"] not in ids(api.list(window(T - timedelta(seconds=5), T)))
        assert late["id"] in ids(api.list(window(T, T + SECOND)))
        assert late["id"] not in ids(api.list(window(T + SECOND, T + timedelta(seconds=5))))
        assert sim.ground_truth_ids(T + 900 * MS, T + 901 * MS) == {late["id"]}
        assert sim.ground_truth_ids(T, T + 900 * MS) == set()


def test_subsecond_iso_timestamps_carry_milliseconds() -> None:
    with reading(created_precision="subsecond", timestamp_format="iso") as (sim, api):
        late = sim.add_campaign(T + 250 * MS)
        assert late["created_at"] == f"{wall(T)}.250+00:00"
        rows = api.list({"page[limit]": 500, "filter[to]": wall(NOW)}).json()["data"]
        fractions = {row["created_at"][19:23] for row in rows}
        assert len(fractions) > 50  # generated campaigns have real fractions, not .000 only
        assert all(row["created_at"][19] == "." and row["created_at"].endswith("+00:00") for row in rows)


def test_second_precision_iso_keeps_todays_form() -> None:
    with reading(timestamp_format="iso") as (sim, _):
        assert sim.add_campaign(T + 250 * MS)["created_at"] == f"{wall(T)}+00:00"


def test_subsecond_data_is_deterministic_and_has_day_end_campaigns() -> None:
    def created(seed: int) -> list[datetime]:
        with BsgSimulator(campaigns=2000, seed=seed, now=NOW, created_precision="subsecond") as sim:
            return [sim.created_at(i) for i in sorted(sim.dataset.ids())]

    first = created(3)
    assert first == created(3) != created(4)
    assert any(at.microsecond for at in first)
    # Some sit in the last second of a UTC day, at least half a second in: a "to = end - 1 s" misses them.
    day_end = [at for at in first if at.time() >= datetime(2000, 1, 1, 23, 59, 59, 500000).time()]
    assert len(day_end) >= 2
    assert any(at.hour == at.minute == at.second == at.microsecond == 0 for at in first)


def test_second_precision_data_did_not_change() -> None:
    # Other suites pin ids and timestamps by seed: the default reading must generate what it always did
    # (the digest was taken from the simulator before it learned the readings).
    with BsgSimulator(campaigns=300, seed=5, now=NOW) as sim:
        rows = [sim.campaign(i) for i in sorted(sim.dataset.ids())]
        assert all(sim.created_at(row["id"]).microsecond == 0 for row in rows)
    text = "".join(f"{r['id']} {r['created_at']} {r['start_at']} {r['status']}\n" for r in rows)
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == "481a9edf78881cadb80863cbd1fa150f7ff3e812354ab244bc88b63c804e04fb"


def test_calendar_span_allows_three_calendar_months_and_no_more() -> None:
    with reading() as (_, api):
        # 2025-03-01 .. 2025-06-01 is 92 days.
        assert api.list({"filter[from]": "2025-03-01 00:00:00", "filter[to]": "2025-06-01 00:00:00"}).ok
        refused = api.list({"filter[from]": "2025-02-28 23:59:59", "filter[to]": "2025-06-01 00:00:00"})
        assert error_fields(refused) == ["filter[from]"]
        assert "3 months" in refused.json()["errors"]["filter[from]"][0]


def test_90_day_span() -> None:
    with reading(span_rule="90d") as (sim, api):
        assert api.list({"filter[from]": "2025-03-03 00:00:00", "filter[to]": "2025-06-01 00:00:00"}).ok
        for start in ("2025-03-02 23:59:59", "2025-03-01 00:00:00"):  # 90 days + 1 s; 3 calendar months
            refused = api.list({"filter[from]": start, "filter[to]": "2025-06-01 00:00:00"})
            assert error_fields(refused) == ["filter[from]"]
            assert "90 days" in refused.json()["errors"]["filter[from]"][0]
        # Without filter[from] the window is the 90 days before filter[to].
        end = datetime(2025, 6, 1, tzinfo=UTC)
        total = api.list({"filter[to]": wall(end)}).json()["meta"]["page"]["total"]
        assert total == len(sim.ground_truth_ids(end - timedelta(days=90), end + SECOND))


def test_filter_on_start_at() -> None:
    with reading(filter_field="start_at") as (sim, api):
        scheduled = sim.add_campaign(T, start_at=T + timedelta(hours=2))["id"]
        at_once = sim.add_campaign(T + timedelta(minutes=1))["id"]
        assert ids(api.list(window(T + timedelta(hours=1), T + timedelta(hours=3)))) == [scheduled]
        assert ids(api.list(window(T, T + timedelta(minutes=30)))) == [at_once]
        # Generated campaigns are selected on start_at too (some start minutes after creation).
        rows, _ = api.pages({"filter[from]": "2025-01-01 00:00:00", "filter[to]": "2025-03-31 00:00:00"})
        starts = sorted(row["start_at"] for row in rows)
        assert starts[0] >= "2025-01-01 00:00:00" and starts[-1] <= "2025-03-31 00:00:00"
        assert any(row["start_at"] != row["created_at"] for row in rows)
        assert [row["id"] for row in rows] == sorted(row["id"] for row in rows)


def test_filter_on_created_at_by_default() -> None:
    with reading() as (sim, api):
        scheduled = sim.add_campaign(T, start_at=T + timedelta(hours=2))["id"]
        assert ids(api.list(window(T + timedelta(hours=1), T + timedelta(hours=3)))) == []
        assert ids(api.list(window(T, T))) == [scheduled]


ISO_FORMS = [
    "2025-06-17T17:00:00.000000+0000",  # the vendor SDK's form
    "2025-06-17T17:00:00+00:00",
    "2025-06-17T17:00:00Z",
    "2025-06-17T19:00:00.000+02:00",
    "2025-06-17 17:00:00+00:00",
]


@pytest.mark.parametrize("form", ISO_FORMS)
def test_iso_filters_when_accepted(form: str) -> None:
    with reading(filter_formats=("iso",)) as (sim, api):
        at = datetime(2025, 6, 17, 17, tzinfo=UTC)
        campaign = sim.add_campaign(at)["id"]
        assert ids(api.list({"filter[from]": form, "filter[to]": form})) == [campaign]
        assert error_fields(api.list({"filter[from]": wall(at), "filter[to]": form})) == ["filter[from]"]


def test_iso_fraction_compares_at_full_precision() -> None:
    with reading(filter_formats="iso", created_precision="subsecond") as (sim, api):
        campaign = sim.add_campaign(T + 400 * MS)["id"]
        stamp = (T + 400 * MS).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
        before = (T + 399 * MS).strftime("%Y-%m-%dT%H:%M:%S.%f+0000")
        assert ids(api.list({"filter[from]": stamp, "filter[to]": stamp})) == [campaign]
        assert ids(api.list({"filter[from]": before, "filter[to]": before})) == []


def test_both_formats() -> None:
    with reading(filter_formats="plain,iso") as (sim, api):
        campaign = sim.add_campaign(T)["id"]
        assert ids(api.list({"filter[from]": wall(T), "filter[to]": T.isoformat()})) == [campaign]


@pytest.mark.parametrize(
    "value", ["2025-06-17T17:00:00", "2025-06-17T17:00:00+25:00", "2025-06-17T17:00:00.1234567Z"]
)
def test_iso_without_offset_or_malformed_is_refused(value: str) -> None:
    with reading(filter_formats="iso") as (_, api):
        refused = api.list({"filter[to]": value})
        assert error_fields(refused) == ["filter[to]"]
        assert "ISO 8601" in refused.json()["errors"]["filter[to]"][0]


def test_iso_is_refused_by_default() -> None:
    with reading() as (_, api):
        refused = api.list({"filter[to]": "2025-06-15T00:00:00.000000+0000"})
        assert error_fields(refused) == ["filter[to]"]
        assert "Y-m-d H:i:s" in refused.json()["errors"]["filter[to]"][0]


def test_page_offset_can_be_omitted() -> None:
    with reading(page_offset_in_meta=False) as (_, api):
        meta = api.list({"page[offset]": 30, "page[limit]": 30}).json()["meta"]["page"]
        assert set(meta) == {"total", "limit"}
    with reading() as (_, api):
        assert api.list({"page[offset]": 30, "page[limit]": 30}).json()["meta"]["page"]["offset"] == 30


def test_config_endpoint_describes_the_readings() -> None:
    with reading(to_bound="exclusive", filter_formats=("iso", "plain"), timezone="Europe/Berlin") as (sim, _):
        config = requests.get(f"{sim.url}/_simulator/config", timeout=5).json()
    assert config == {
        "timezone": "Europe/Berlin",
        "timestamp_format": "plain",
        "from_bound": "inclusive",
        "to_bound": "exclusive",
        "created_precision": "second",
        "span_rule": "calendar",
        "filter_field": "created_at",
        "filter_formats": ["plain", "iso"],
        "page_offset_in_meta": True,
    }


def test_control_ground_truth_and_created_at_at_full_precision() -> None:
    with reading(created_precision="subsecond") as (sim, _):
        campaign = sim.add_campaign(T + 500 * MS)["id"]
        control = f"{sim.url}/_simulator"
        stamp = requests.get(f"{control}/campaigns/{campaign}/created-at", timeout=5).json()["created_at"]
        assert datetime.fromisoformat(stamp) == T + 500 * MS
        truth = requests.get(
            f"{control}/ground-truth",
            params={"start": (T + 500 * MS).isoformat(), "end": (T + 501 * MS).isoformat()},
            timeout=5,
        ).json()
        assert truth == {"ids": [campaign], "count": 1}
        assert requests.get(f"{control}/campaigns/1/created-at", timeout=5).status_code == 404


def test_cli_flags_set_the_readings() -> None:
    flags = [
        "--campaigns", "50", "--from-bound", "exclusive", "--to-bound", "exclusive",
        "--created-precision", "subsecond", "--span-rule", "90d", "--filter-field", "start_at",
        "--filter-formats", "plain,iso", "--omit-page-offset",
    ]  # fmt: skip
    with cli(*flags) as (process, url, _):
        config = requests.get(f"{url}/_simulator/config", timeout=5).json()
        api = Client(url, "test_simulator_key")
        api.login()
        meta = api.list({"filter[to]": "2025-06-15T00:00:00Z"}).json()["meta"]["page"]
        process.terminate()
        assert process.wait() == 0  # bounded by pytest's timeout, not by a guess
    assert config["from_bound"] == config["to_bound"] == "exclusive"
    assert (config["created_precision"], config["span_rule"], config["filter_field"]) == (
        "subsecond",
        "90d",
        "start_at",
    )
    assert (config["filter_formats"], config["page_offset_in_meta"]) == (["plain", "iso"], False)
    assert "offset" not in meta


@pytest.mark.parametrize(
    "args",
    [["--from-bound", "open"], ["--span-rule", "3m"], ["--filter-formats", "xml"], ["--filter-field", "id"]],
)
def test_cli_refuses_unknown_readings(args: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bsg_provider.simulator", "--port", "0", *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        timeout=10,
        cwd=ROOT,
    )
    assert result.returncode == 2, result.stderr
    assert args[0] in result.stderr or "filter_formats" in result.stderr
