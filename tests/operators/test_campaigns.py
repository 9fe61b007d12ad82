"""BsgExtractCampaignsOperator against the simulator over real HTTP, writing real files."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, ObjectStoragePath

from bsg_provider.client.connection import DEFAULT_MAX_CONCURRENCY
from bsg_provider.errors import BsgConfigError, BsgServerError
from bsg_provider.extraction.records import CSV_COLUMNS
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator, lineage_dataset_names
from bsg_provider.simulator import BsgSimulator
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env
from tests.reliability.conftest import faulted_fetches

UTC = timezone.utc
TIMESTAMPS = ("start_at", "real_start_at", "finished_at", "created_at")


def extract(conn_id: str, path: str, context: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Run the operator once, as a task would after rendering its templates."""
    operator = BsgExtractCampaignsOperator(task_id="extract", output_path=path, bsg_conn_id=conn_id, **kwargs)
    return operator.execute(context or {})


def read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.name.endswith(".gz") else data


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read_bytes(path).decode().splitlines()]


def read_csv(path: Path) -> list[dict[str, str]]:
    reader = csv.DictReader(io.StringIO(read_bytes(path).decode(), newline=""))
    assert tuple(reader.fieldnames or ()) == CSV_COLUMNS
    return list(reader)


def past_interval(sim: BsgSimulator, days: int) -> tuple[datetime, datetime]:
    """``days`` days ending two days ago on whole UTC days, where every campaign's status has settled."""
    end = sim.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    return end - timedelta(days=days), end


def api_instant(text: str, tz: str) -> datetime:
    """
    What an API timestamp means (its own offset, else the account's timezone; a repeated wall
    time its first occurrence), in UTC: Python never finds a time of a repeated hour equal to a
    time of another zone (PEP 495), even the same instant.
    """
    moment = datetime.fromisoformat(text)
    return (moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(tz))).astimezone(timezone.utc)


# -- intervals and windows ---------------------------------------------------------------------


def test_a_seven_month_interval_is_read_in_three_windows_exactly(simulator, bsg_conn_id, tmp_path):
    start, end = past_interval(simulator, 213)
    summary = extract(bsg_conn_id, f"file://{tmp_path}/7m.jsonl", start=start, end=end)

    ids = [record["id"] for record in read_jsonl(tmp_path / "7m.jsonl")]
    expected = simulator.ground_truth_ids(start, end)
    assert len(expected) > 1000
    assert ids == sorted(expected)
    assert summary["windows"] == 3
    assert summary["records"] == len(expected)
    assert summary["requests"] == simulator.count("list") + simulator.count("login")


def test_a_fault_free_run_logs_in_once_and_sends_one_list_request_per_page(simulator, bsg_conn_id, tmp_path):
    start, end = past_interval(simulator, 213)
    operator = BsgExtractCampaignsOperator(
        task_id="extract",
        output_path=f"file://{tmp_path}/r.jsonl",
        bsg_conn_id=bsg_conn_id,
        start=start,
        end=end,
    )
    summary = operator.execute({})
    windows = BsgHook(bsg_conn_id).plan(start, end).windows
    # ceil(records / 500) per window, and one request for an empty window; each request asks
    # for a second more on each side of its window.
    second = timedelta(seconds=1)
    pages = sum(
        max(1, math.ceil(len(simulator.ground_truth_ids(w.start - second, w.end + second)) / 500))
        for w in windows
    )
    assert (simulator.count("login"), simulator.count("list"), simulator.count("any")) == (
        1,
        pages,
        pages + 1,
    )
    assert (summary["logins"], summary["requests"], summary["retries"]) == (1, pages + 1, 0)


def test_an_interval_ending_60_days_ahead_is_clipped_and_says_so(simulator, bsg_conn_id, tmp_path, task_log):
    now = simulator.now()
    start, end = now - timedelta(days=20), now + timedelta(days=60)
    summary = extract(bsg_conn_id, f"file://{tmp_path}/ahead.jsonl", start=start, end=end)

    assert summary["clipped"] is True
    clipped_end = datetime.fromisoformat(summary["interval_end"])
    assert now + timedelta(days=29) < clipped_end <= now + timedelta(days=30)
    log = task_log()
    assert "30 days ahead" in log and summary["interval_end"] in log
    ids = [record["id"] for record in read_jsonl(tmp_path / "ahead.jsonl")]
    assert ids == sorted(simulator.ground_truth_ids(start, end))
    assert ids, "the last 20 days hold campaigns"


def test_lookback_moves_the_start_back_and_the_summary_says_so(simulator, bsg_conn_id, tmp_path, task_log):
    start, end = past_interval(simulator, 5)
    context = {"data_interval_start": start, "data_interval_end": end}
    summary = extract(bsg_conn_id, f"file://{tmp_path}/lb.jsonl", context, lookback=timedelta(days=3))

    log = task_log()
    assert "interval from data_interval_start and data_interval_end, lookback 3 days." in log
    assert "lookback 3 days, 0:00:00" not in log, "a duration in words, not a timedelta"

    assert summary["interval_start"] == (start - timedelta(days=3)).isoformat()
    assert summary["interval_end"] == end.isoformat()
    ids = [record["id"] for record in read_jsonl(tmp_path / "lb.jsonl")]
    assert ids == sorted(simulator.ground_truth_ids(start - timedelta(days=3), end))
    assert set(ids) > simulator.ground_truth_ids(start, end)


# -- what the files hold -----------------------------------------------------------------------


def test_jsonl_with_raw_timestamps_is_the_api_data_in_id_order(simulator, bsg_conn_id, tmp_path):
    start, end = past_interval(simulator, 40)
    extract(bsg_conn_id, f"file://{tmp_path}/raw.jsonl", start=start, end=end, convert_timestamps=False)

    records = read_jsonl(tmp_path / "raw.jsonl")
    truth = simulator.ground_truth(start, end)
    assert records == truth
    assert [list(record) for record in records] == [list(record) for record in truth], "same key order"


def test_jsonl_timestamps_are_utc_iso_8601_in_an_account_timezone(tmp_path, monkeypatch):
    tz = "Europe/Berlin"
    with BsgSimulator(campaigns=800, seed=3, timezone=tz, timestamp_format="mixed") as sim:
        name, value = bsg_connection_env(
            "bsg_berlin", host=sim.url, api_key=sim.api_key, api_timezone=tz, **FAST_RETRY_EXTRAS
        )
        monkeypatch.setenv(name, value)
        start, end = past_interval(sim, 120)
        extract("bsg_berlin", f"file://{tmp_path}/berlin.jsonl.gz", start=start, end=end)
        truth = sim.ground_truth(start, end)

    records = read_jsonl(tmp_path / "berlin.jsonl.gz")
    assert [record["id"] for record in records] == [campaign["id"] for campaign in truth]
    assert any("+" not in campaign["created_at"] for campaign in truth), "some naive API timestamps"
    for record, campaign in zip(records, truth, strict=True):
        for field in TIMESTAMPS:
            if campaign[field] is None:
                assert record[field] is None
                continue
            assert record[field].endswith("+00:00") and "T" in record[field]
            assert datetime.fromisoformat(record[field]) == api_instant(campaign[field], tz)
        rest = {key: value for key, value in record.items() if key not in TIMESTAMPS}
        assert rest == {key: value for key, value in campaign.items() if key not in TIMESTAMPS}


def test_csv_gz_round_trips_to_the_ground_truth(simulator, bsg_conn_id, tmp_path):
    start, end = past_interval(simulator, 40)
    summary = extract(bsg_conn_id, f"file://{tmp_path}/c.csv.gz", start=start, end=end)
    assert summary["format"] == "csv+gzip"

    rows = read_csv(tmp_path / "c.csv.gz")
    truth = simulator.ground_truth(start, end)
    assert len(rows) == len(truth) > 20
    for row, campaign in zip(rows, truth, strict=True):
        assert int(row["id"]) == campaign["id"]
        for field in ("name", "sender", "status", "message_type"):
            assert row[field] == campaign[field]
        assert int(row["statistics_delivered"]) == campaign["statistics"]["delivered"]
        assert int(row["statistics_sent"]) == campaign["statistics"]["sent"]
        price = campaign["calculated_price"]
        assert row["calculated_price"] == ("" if price is None else repr(price))
        assert row["currency"] == (campaign["currency"] or "")
        assert datetime.fromisoformat(row["created_at"]) == api_instant(campaign["created_at"], "UTC")
        assert row["extra_fields"] == ""


@pytest.mark.parametrize("name", ["empty.jsonl", "empty.csv", "empty.jsonl.gz", "empty.csv.gz"])
def test_no_campaigns_give_an_empty_but_valid_file(simulator, bsg_conn_id, tmp_path, name):
    end = simulator.now() - timedelta(days=500)  # before the simulator's first campaign
    start = end - timedelta(days=10)
    assert simulator.ground_truth_ids(start, end) == set()
    summary = extract(bsg_conn_id, f"file://{tmp_path}/{name}", start=start, end=end)

    assert summary["records"] == 0
    expected = (",".join(CSV_COLUMNS) + "\n").encode() if ".csv" in name else b""
    assert read_bytes(tmp_path / name) == expected
    assert os.listdir(tmp_path) == [name]


@pytest.mark.parametrize("name", ["again.jsonl.gz", "again.csv"])
def test_rerunning_an_interval_gives_a_byte_identical_file(simulator, bsg_conn_id, tmp_path, name):
    start, end = past_interval(simulator, 100)
    extract(bsg_conn_id, f"file://{tmp_path}/{name}", start=start, end=end)
    first = (tmp_path / name).read_bytes()
    extract(bsg_conn_id, f"file://{tmp_path}/{name}", start=start, end=end, page_size=30)
    assert (tmp_path / name).read_bytes() == first
    assert len(first) > 10_000


def test_the_compression_level_is_the_users_and_the_same_level_gives_the_same_bytes(
    simulator, bsg_conn_id, tmp_path
):
    start, end = past_interval(simulator, 100)
    files = {}
    for level in (1, 9, 1):
        extract(bsg_conn_id, f"file://{tmp_path}/out.csv.gz", start=start, end=end, compression_level=level)
        data = (tmp_path / "out.csv.gz").read_bytes()
        if level in files:
            assert data == files[level], f"level {level} wrote other bytes on rerun"
        files[level] = data
    extract(bsg_conn_id, f"file://{tmp_path}/out.csv.gz", start=start, end=end)
    default = (tmp_path / "out.csv.gz").read_bytes()
    assert len(files[1]) > len(default) > len(files[9]) > 10_000, "level 1 is largest, 9 smallest, 6 between"
    assert gzip.decompress(files[1]) == gzip.decompress(files[9]) == gzip.decompress(default)
    # gzip's header says how hard it compressed (XFL: 4 fastest, 2 best, 0 otherwise).
    assert (files[1][8], default[8], files[9][8]) == (4, 0, 2)


# -- failures ----------------------------------------------------------------------------------


def test_a_failure_mid_extraction_leaves_nothing_and_a_rerun_writes_all(simulator, bsg_conn_id, tmp_path):
    start, end = past_interval(simulator, 213)
    # Three pages pass, then every request fails: beyond the 4 retries of the connection.
    simulator.inject("status", status=503, skip=3, times=None)
    with pytest.raises(BsgServerError, match="HTTP 503"):
        extract(bsg_conn_id, f"file://{tmp_path}/out.jsonl", start=start, end=end, page_size=30)
    # The failing page used its 5 attempts; with pages in flight, up to 2 x 8 pages may have met
    # the fault (tests/reliability/conftest.py, faulted_fetches).
    assert 3 + 5 <= simulator.count("list") <= 3 + faulted_fetches(DEFAULT_MAX_CONCURRENCY) * 5
    assert os.listdir(tmp_path) == [], "no partial file, no temporary file"

    simulator.clear_faults()
    summary = extract(bsg_conn_id, f"file://{tmp_path}/out.jsonl", start=start, end=end, page_size=30)
    ids = [record["id"] for record in read_jsonl(tmp_path / "out.jsonl")]
    assert ids == sorted(simulator.ground_truth_ids(start, end))
    assert summary["records"] == len(ids) > 30 * 3
    assert os.listdir(tmp_path) == ["out.jsonl"]


def test_a_failed_rerun_keeps_the_previous_file(simulator, bsg_conn_id, tmp_path):
    start, end = past_interval(simulator, 60)
    extract(bsg_conn_id, f"file://{tmp_path}/keep.csv", start=start, end=end, page_size=30)
    before = (tmp_path / "keep.csv").read_bytes()

    simulator.inject("status", status=500, skip=1, times=None)
    with pytest.raises(BsgServerError):
        extract(bsg_conn_id, f"file://{tmp_path}/keep.csv", start=start, end=end, page_size=30)
    assert (tmp_path / "keep.csv").read_bytes() == before
    assert os.listdir(tmp_path) == ["keep.csv"]


def test_failures_within_the_retry_budget_still_give_the_full_file(simulator, bsg_conn_id, tmp_path):
    start, end = past_interval(simulator, 60)
    simulator.inject("status", status=503, skip=2, times=2)
    simulator.inject("malformed_json", skip=1, times=1)
    summary = extract(bsg_conn_id, f"file://{tmp_path}/t.jsonl", start=start, end=end, page_size=30)
    assert summary["retries"] == 3
    ids = [record["id"] for record in read_jsonl(tmp_path / "t.jsonl")]
    assert ids == sorted(simulator.ground_truth_ids(start, end))


def test_campaigns_removed_mid_paging_are_not_skipped_and_the_file_stays_sorted(
    simulator, bsg_conn_id, tmp_path, task_log
):
    start, end = past_interval(simulator, 60)
    before = simulator.ground_truth_ids(start, end)
    # The second page's request first deletes the window's two lowest ids (already read on page 1):
    # offsets shift left and one campaign would fall between pages.
    simulator.inject("delete", skip=1, times=1, count=2)
    summary = extract(bsg_conn_id, f"file://{tmp_path}/d.jsonl", start=start, end=end, page_size=30)

    after = simulator.ground_truth_ids(start, end)
    deleted = before - after
    assert len(deleted) == 2
    ids = [record["id"] for record in read_jsonl(tmp_path / "d.jsonl")]
    assert ids == sorted(after | deleted), "everything read, the two deleted ones included, in id order"
    assert summary["records"] == len(ids)
    assert "sorting them" in task_log()


def test_campaigns_added_mid_paging_in_an_early_window_end_up_in_id_order(simulator, bsg_conn_id, tmp_path):
    start, end = past_interval(simulator, 213)
    before = simulator.ground_truth_ids(start, end)
    # New campaigns get the highest ids but land in the first window, before later windows' ids.
    simulator.inject("insert", skip=1, times=1, count=3)
    extract(bsg_conn_id, f"file://{tmp_path}/i.jsonl", start=start, end=end, page_size=100)

    after = simulator.ground_truth_ids(start, end)
    assert len(after - before) == 3
    ids = [record["id"] for record in read_jsonl(tmp_path / "i.jsonl")]
    assert ids == sorted(after)


# -- the run's interval and bad arguments ------------------------------------------------------

ZERO_WIDTH_MESSAGE = (
    "The run has no data interval to extract (data_interval_start == data_interval_end == "
    '2025-06-01T00:00:00+00:00): Airflow 3\'s cron schedules (schedule="@daily", CronTriggerTimetable) give '
    "zero-width intervals, and manual or asset-triggered runs may have none. Use a data-interval timetable, "
    'e.g. schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"), or pass start and end, e.g. '
    'start="{{ data_interval_start - macros.timedelta(days=1) }}", end="{{ data_interval_end }}".'
)


def test_a_zero_width_interval_fails_before_any_request_explaining_why(simulator, bsg_conn_id, tmp_path):
    moment = datetime(2025, 6, 1, tzinfo=UTC)
    context = {"data_interval_start": moment, "data_interval_end": moment}
    with pytest.raises(AirflowFailException) as caught:
        extract(bsg_conn_id, f"file://{tmp_path}/z.jsonl", context)
    assert str(caught.value) == ZERO_WIDTH_MESSAGE
    assert simulator.count("any") == 0
    assert os.listdir(tmp_path) == []


def test_a_run_without_data_interval_fails_naming_it(simulator, bsg_conn_id, tmp_path):
    context = {"data_interval_start": None, "data_interval_end": None}
    with pytest.raises(AirflowFailException, match=r"^The run has no data interval to extract \(data_inter"):
        extract(bsg_conn_id, f"file://{tmp_path}/z.jsonl", context)
    assert simulator.count("any") == 0


def test_start_after_end_fails_before_any_request(simulator, bsg_conn_id, tmp_path):
    with pytest.raises(AirflowFailException, match=r"^start 2025-06-02T00:00:00\+00:00 is after end "):
        extract(bsg_conn_id, f"file://{tmp_path}/x.jsonl", start="2025-06-02T00:00Z", end="2025-06-01T00:00Z")
    assert simulator.count("any") == 0


def test_naive_start_is_refused_when_parsed_or_rendered(simulator, bsg_conn_id, tmp_path):
    with pytest.raises(BsgConfigError, match=r"^start 2025-06-01T00:00:00 has no timezone"):
        BsgExtractCampaignsOperator(task_id="t", output_path="file:///x.jsonl", start=datetime(2025, 6, 1))
    operator = BsgExtractCampaignsOperator(
        task_id="t", output_path=f"file://{tmp_path}/x.jsonl", bsg_conn_id=bsg_conn_id, start="{{ ds }}"
    )
    operator.start = "2025-06-01"  # what "{{ ds }}" renders to
    context = {"data_interval_start": None, "data_interval_end": datetime(2025, 6, 2, tzinfo=UTC)}
    with pytest.raises(AirflowFailException, match=r"^start 2025-06-01T00:00:00 has no timezone.*UTC offset"):
        operator.execute(context)
    assert simulator.count("any") == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"lookback": timedelta(hours=-1)}, r"^lookback must not be negative"),
        ({"page_size": 1000}, r"^page_size must be from 30 to 500 \(the API's page\[limit\] range\)"),
        ({"file_format": "parquet"}, r"^file_format must be one of jsonl, csv"),
        ({"campaign_type": "fax"}, r"^campaign_type must be one of sms, rcs, whatsapp, got 'fax'\.$"),
        ({"max_concurrency": 0}, r"^max_concurrency must be a whole number from 1 to 32 .*got 0\.$"),
        ({"max_concurrency": "4"}, r"^max_concurrency must be a whole number from 1 to 32 .*got '4'\.$"),
        ({"compression_level": 0}, r"^compression_level must be a whole number from 1 \(fastest\) to 9"),
        ({"compression_level": "9"}, r"^compression_level must be a whole number .* got '9'; it applies to"),
    ],
)
def test_bad_literal_arguments_fail_when_the_dag_is_parsed(kwargs, message):
    with pytest.raises(BsgConfigError, match=message):
        BsgExtractCampaignsOperator(task_id="t", output_path="file:///tmp/x.jsonl", **kwargs)


@pytest.mark.parametrize(
    ("path", "kwargs", "message"),
    [
        ("file://{tmp}/x.txt", {}, r"^Cannot tell the file format of 'x.txt'"),
        ("s3://bucket/bsg/x.jsonl", {}, r"install apache-airflow-providers-amazon\[s3fs\] on the workers"),
        ("{tmp}/x.jsonl", {}, r"has no scheme; give a URL such as file:///"),
        ("file://{tmp}/x.jsonl", {"campaign_type": "{{ params.kind }}"}, r"^campaign_type must be one of"),
    ],
)
def test_bad_rendered_arguments_fail_before_any_request(
    simulator, bsg_conn_id, tmp_path, path, kwargs, message
):
    start, end = past_interval(simulator, 1)
    with pytest.raises(AirflowFailException, match=message):
        extract(bsg_conn_id, path.format(tmp=tmp_path), start=start, end=end, **kwargs)
    assert simulator.count("any") == 0
    assert os.listdir(tmp_path) == []


# -- what the task reports ---------------------------------------------------------------------


def test_the_summary_is_small_and_holds_no_data_or_secret(simulator, bsg_conn_id, tmp_path, task_log):
    start, end = past_interval(simulator, 10)
    summary = extract(bsg_conn_id, f"file://{tmp_path}/s.jsonl", start=start, end=end)

    assert set(summary) == {
        "path", "format", "records", "windows", "requests", "retries", "logins",
        "interval_start", "interval_end", "clipped", "elapsed_seconds",
    }  # fmt: skip
    assert summary["path"] == f"file://{tmp_path}/s.jsonl"
    assert summary["format"] == "jsonl"
    assert (summary["windows"], summary["retries"], summary["logins"], summary["clipped"]) == (1, 0, 1, False)
    assert (summary["interval_start"], summary["interval_end"]) == (start.isoformat(), end.isoformat())
    assert summary["records"] == len(simulator.ground_truth_ids(start, end)) > 0
    assert isinstance(summary["elapsed_seconds"], float) and summary["elapsed_seconds"] >= 0
    text = json.dumps(summary)
    for campaign in simulator.ground_truth(start, end):
        assert str(campaign["id"]) not in text and campaign["name"] not in text
    assert simulator.api_key not in text
    assert simulator.api_key not in task_log()


def test_operator_declares_its_templates_and_colour():
    templated = {"output_path", "start", "end", "campaign_type"}
    assert set(BsgExtractCampaignsOperator.template_fields) == templated
    assert BsgExtractCampaignsOperator.ui_color.startswith("#")


def test_lineage_names_the_endpoint_and_the_file(simulator, bsg_conn_id, tmp_path):
    local = ObjectStoragePath(f"file://{tmp_path}/l.jsonl")
    assert lineage_dataset_names("https://one-api.bsg.world", "rcs", local) == (
        ("https://one-api.bsg.world", "/api/campaigns?filter[type]=rcs"),
        ("file", f"{tmp_path}/l.jsonl"),
    )
    remote = ObjectStoragePath("s3://bucket/bsg/2024-05-01.csv.gz")
    assert lineage_dataset_names("https://one-api.bsg.world", "sms", remote)[1] == (
        "s3://bucket",
        "bsg/2024-05-01.csv.gz",
    )


def test_lineage_is_none_without_the_openlineage_provider(simulator, bsg_conn_id, tmp_path, monkeypatch):
    start, end = past_interval(simulator, 1)
    operator = BsgExtractCampaignsOperator(
        task_id="t", output_path=f"file://{tmp_path}/l.jsonl", bsg_conn_id=bsg_conn_id, start=start, end=end
    )
    operator.execute({})
    # None in sys.modules makes the import fail, as when the provider is not installed.
    monkeypatch.setitem(sys.modules, "airflow.providers.openlineage.extractors", None)
    assert operator.get_openlineage_facets_on_complete(None) is None
