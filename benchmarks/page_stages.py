"""
CPU per record of each step a page of campaigns goes through, a page at a time against record by record.

Reads ``--pages`` pages of 500 campaigns from a simulator in its own process once, then times
each step on them in this process (best of ``--repeat``): decoding, the page checks, the
pager's bookkeeping, the window's cut, JSON Lines and CSV encoding. Each step that has a
page-at-a-time path is timed on it and on the record-by-record path it replaces (the path an
unusual page still takes), and the ratio of the two is printed. Both give the same records
and bytes (tests/test_file_formats.py, tests/test_paging.py, tests/test_window_filter.py).

The last rows are the extraction's own pages, decoded straight into structs
(:mod:`bsg_provider.client.usual_page`). :mod:`timeit` runs with the garbage collector off, so
these rows leave out what tracked dicts cost it in a process that imported Airflow; see
``cpu_per_record.py`` for the whole.

Usage: ``.venv/bin/python benchmarks/page_stages.py [--pages 20] [--repeat 7]``
"""

from __future__ import annotations

import argparse
import csv
import sys
import timeit
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
import requests

# This checkout's package, not whichever one the environment installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))
from _simulator import API_KEY, running_simulator

from bsg_provider.client.api import check_campaign, parse_list_page
from bsg_provider.client.usual_page import USUAL_CAMPAIGN_PAGE
from bsg_provider.extraction.file_formats import CsvEncoder, JsonLinesEncoder, _Collector, plain_csv_text
from bsg_provider.extraction.paging import WindowPager
from bsg_provider.extraction.records import RecordShaper
from bsg_provider.extraction.window_filter import WindowFilter
from bsg_provider.extraction.windows import plan_windows

PAGE_SIZE = 500


def fetch_bodies(pages: int) -> tuple[list[bytes], Any]:
    """The raw bodies of ``pages`` consecutive pages of one window, and that window."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with running_simulator(pages * PAGE_SIZE * 3, "--period-days", "200", "--now", now.isoformat()) as url:
        session = requests.Session()
        token = session.post(f"{url}/api/auth/login", json={"api_key": API_KEY}).json()["bearer"]
        session.headers["Authorization"] = f"Bearer {token}"
        window = plan_windows(
            now - timedelta(days=180), now - timedelta(days=100), tz="UTC", now=now
        ).windows[0]
        api_from, api_to = window.api_bounds("UTC")
        bodies = []
        for page in range(pages):
            params = {
                "filter[type]": "sms",
                "filter[from]": api_from,
                "filter[to]": api_to,
                "page[offset]": page * PAGE_SIZE,
                "page[limit]": PAGE_SIZE,
            }
            response = session.get(f"{url}/api/campaigns", params=params)
            response.raise_for_status()
            bodies.append(response.content)
    return bodies, window


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    bodies, window = fetch_bodies(args.pages)
    decoder = msgspec.json.Decoder()
    payloads = [decoder.decode(body) for body in bodies]
    pages = [parse_list_page(payload) for payload in payloads]
    records = sum(len(page.records) for page in pages)
    typed = [USUAL_CAMPAIGN_PAGE.decode(body).data for body in bodies]
    if records < PAGE_SIZE:
        raise SystemExit(f"only {records} campaigns in the window; the simulator's data changed")

    def micros(step: Callable[[], object]) -> float:
        return min(timeit.repeat(step, number=1, repeat=args.repeat)) / records * 1e6

    def pager_pass(one_by_one: bool) -> None:
        pager = WindowPager(PAGE_SIZE)
        if one_by_one:
            pager._fresh_usual_page = lambda page_records, ids: None  # type: ignore[method-assign]
        for page in pages:
            pager.accept(page)

    window_filter = WindowFilter(tz="UTC")
    window_filter.window(window)

    shaper = RecordShaper()
    jsonl, csv_encoder = JsonLinesEncoder(shaper), CsvEncoder(shaper)
    csv_columns = [shaper.csv_cell_columns(page.records) for page in pages]
    csv_rows = [list(zip(*columns, strict=True)) for columns in csv_columns]
    written: list[str] = []
    writer = csv.writer(_Collector(written.append), lineterminator="\n")

    def csv_writer_lines() -> None:
        for rows in csv_rows:
            writer.writerows(rows)
        written.clear()

    steps: list[tuple[str, Callable[[], object], Callable[[], object] | None]] = [
        ("decode the body (msgspec)", lambda: [decoder.decode(body) for body in bodies], None),
        (
            "check ids and types",
            lambda: [parse_list_page(payload) for payload in payloads],
            lambda: [[check_campaign(record, "list") for record in page.records] for page in pages],
        ),
        ("pager: new records, pass count", lambda: pager_pass(False), lambda: pager_pass(True)),
        (
            "cut to the window, check filters",
            lambda: [window_filter.keep(page.records) for page in pages],
            lambda: [window_filter._keep_each(page.records, window_filter._bounds) for page in pages],
        ),
        (
            "JSON Lines values",
            lambda: [shaper.json_columns(page.records) for page in pages],
            lambda: [list(map(shaper.json_record, page.records)) for page in pages],
        ),
        (
            "JSON Lines bytes (objects included)",
            lambda: [jsonl.encode_page(page.records) for page in pages],
            None,
        ),
        (
            "CSV cells",
            lambda: [shaper.csv_cell_columns(page.records) for page in pages],
            lambda: [list(map(shaper.csv_row, page.records)) for page in pages],
        ),
        (
            "CSV lines from cells",
            lambda: [_plain(columns) for columns in csv_columns],
            csv_writer_lines,
        ),
        (
            "CSV bytes (cells included)",
            lambda: [csv_encoder.encode_page(page.records) for page in pages],
            None,
        ),
        # The extraction's pages: decoded into structs (client.usual_page), against dicts above.
        ("decode the body into structs", lambda: [USUAL_CAMPAIGN_PAGE.decode(body) for body in bodies], None),
        ("JSON Lines bytes, typed page", lambda: [jsonl.encode_page(page) for page in typed], None),
        ("CSV bytes, typed page", lambda: [csv_encoder.encode_page(page) for page in typed], None),
    ]
    print(
        f"{records:,} campaigns in {len(pages)} pages; microseconds of CPU per record, best of {args.repeat}"
    )
    print(f"{'step':38} {'page path':>10} {'record path':>12} {'ratio':>7}")
    for name, page_path, record_path in steps:
        fast = micros(page_path)
        if record_path is None:
            print(f"{name:38} {fast:10.2f} {'':>12} {'':>7}")
            continue
        slow = micros(record_path)
        print(f"{name:38} {fast:10.2f} {slow:12.2f} {fast / slow:7.2f}")
    return 0


def _plain(columns: list[Any]) -> str:
    text = plain_csv_text(columns)
    if text is None:
        raise SystemExit(
            "a page of usual campaigns needed the csv writer; the benchmark measures the other path"
        )
    return text


if __name__ == "__main__":
    sys.exit(main())
