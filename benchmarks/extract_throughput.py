"""
Extraction throughput: the operator's full path against a hand-written loop, same pages.

The provider side runs ``BsgExtractCampaignsOperator.execute`` (hook paging, retries machinery,
record conversion, file writing, atomic move). The baseline is a plain ``requests.Session``
loop over the same windows and pages writing ``json.dumps`` lines (gzip for the ``.gz``
variants). Both run in this process, interleaved, against one simulator in its own process;
the table shows the median records/second of several runs and the ratio.

Usage: ``.venv/bin/python benchmarks/extract_throughput.py [--campaigns 200000] [--runs 3]``
(from a worktree, ``PYTHONPATH=.`` makes it import that worktree's package).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _simulator import API_KEY, connection_env, running_simulator

TARGET_RATIO = 0.9


def baseline(url: str, windows, out: Path, gz: bool) -> int:
    """A hand-written extraction: login, page by offset, one json.dumps line per record."""
    import requests

    session = requests.Session()
    token = session.post(f"{url}/api/auth/login", json={"api_key": API_KEY}, timeout=60).json()["bearer"]
    session.headers["Authorization"] = f"Bearer {token}"
    opener = gzip.open if gz else open
    count = 0
    with opener(out, "wt", encoding="utf-8") as fh:
        for api_from, api_to, keep_from, keep_to in windows:
            offset = 0
            while True:
                params = {
                    "filter[type]": "sms",
                    "filter[from]": api_from,
                    "filter[to]": api_to,
                    "page[offset]": offset,
                    "page[limit]": 500,
                    "sort": "id",
                    "way": "asc",
                }
                body = session.get(f"{url}/api/campaigns", params=params, timeout=60).json()
                for record in body["data"]:
                    # Requests ask for a second more on each side; keep [start, end) as the provider does.
                    if keep_from <= record["created_at"] < keep_to:
                        fh.write(json.dumps(record) + "\n")
                        count += 1
                offset += len(body["data"])
                if not body["data"] or offset >= body["meta"]["page"]["total"]:
                    break
    return count


def provider(start, end, out: Path) -> int:
    from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator

    op = BsgExtractCampaignsOperator(
        task_id="bench", output_path=out.as_uri(), start=start, end=end, bsg_conn_id="bsg_bench"
    )
    return op.execute(context={})["records"]


def timed(fn, *args) -> tuple[int, float]:
    started = time.perf_counter()
    records = fn(*args)
    return records, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--campaigns", type=int, default=235_000, help="simulator campaigns (~85%% are sms)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    from bsg_provider.simulator.__main__ import main as _  # noqa: F401 -- fail early if not installed

    with (
        running_simulator(args.campaigns, "--period-days", "360") as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        os.environ.update(connection_env("bsg_bench", url))
        from bsg_provider.extraction.windows import to_api_time
        from bsg_provider.hooks.bsg import BsgHook

        hook = BsgHook("bsg_bench")
        import pendulum

        end = pendulum.now("UTC").start_of("second")
        start = end - timedelta(days=361)
        windows = [
            (*w.api_bounds("UTC"), to_api_time(w.start, "UTC"), to_api_time(w.end, "UTC"))
            for w in hook.plan(start, end).windows
        ]
        baseline(url, windows, Path(tmp) / "warm.jsonl", False)  # warm the simulator's render cache

        rows = []
        for suffix in ("jsonl", "csv", "jsonl.gz", "csv.gz"):
            gz = suffix.endswith(".gz")
            ours, theirs = [], []
            records = 0
            for run in range(args.runs):
                n, dt = timed(baseline, url, windows, Path(tmp) / f"base{run}.jsonl", gz)
                theirs.append(n / dt)
                records, dt = timed(provider, start, end, Path(tmp) / f"ours{run}.{suffix}")
                ours.append(records / dt)
                assert records == n, f"provider wrote {records} records, baseline {n}"
            rows.append((suffix, records, statistics.median(ours), statistics.median(theirs)))

    print(f"\nExtraction throughput, {args.campaigns} campaigns in the simulator, median of {args.runs} runs")
    print(f"{'format':<10} {'records':>8} {'provider rec/s':>15} {'baseline rec/s':>15} {'ratio':>6}  target")
    for suffix, records, ours, theirs in rows:
        ratio = ours / theirs
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        cells = f"{suffix:<10} {records:>8} {ours:>15,.0f} {theirs:>15,.0f} {ratio:>6.2f}"
        print(f"{cells}  {verdict} (>= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
