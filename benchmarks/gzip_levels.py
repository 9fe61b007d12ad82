"""
gzip levels side by side: records/s and bytes of the operator's ``.gz`` output at levels 1, 6 and 9.

Starts the simulator in its own process, then runs ``BsgExtractCampaignsOperator.execute`` (or
the messages operator) to ``.jsonl.gz`` and ``.csv.gz`` at each ``--levels`` and to the
uncompressed file of the same format, interleaved, ``--runs`` times; prints the median
records/s, the ratio to the uncompressed run of the same format and the file's size. Needs a
provider with the ``compression_level`` argument.

Usage: ``.venv/bin/python benchmarks/gzip_levels.py [--resource campaigns|messages]
[--records 100000] [--levels 1,6,9] [--runs 3]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

# This checkout's package, not whichever one the environment installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))
from _simulator import connection_env, running_simulator

PII_KEY = "benchmark-hmac-key-0123456789abcdef"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resource", choices=("campaigns", "messages"), default="campaigns")
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--levels", default="1,6,9")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    levels = [int(level) for level in args.levels.split(",")]
    logging.disable(logging.WARNING)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    if args.resource == "campaigns":
        from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator as Operator

        sim = [str(round(args.records / 0.85)), "--period-days", "200"]
    else:
        from bsg_provider.operators.messages import BsgExtractMessagesOperator as Operator

        sim = [str(max(1, args.records // 100)), "--period-days", "200", "--messages-per-campaign", "100"]
    with (
        running_simulator(int(sim[0]), *sim[1:], "--now", now.isoformat()) as url,
        tempfile.TemporaryDirectory() as tmp,
    ):
        os.environ.update(connection_env("bsg_bench", url))
        os.environ["AIRFLOW_CONN_BSG_PII_KEY"] = json.dumps({"conn_type": "generic", "password": PII_KEY})
        end = now - timedelta(days=1)
        start = end - timedelta(days=198)

        def run(suffix: str, level: int | None) -> tuple[float, int]:
            path = Path(tmp) / f"out.{suffix}"
            kwargs = {} if level is None else {"compression_level": level}
            op = Operator(
                task_id="gz",
                output_path=path.as_uri(),
                start=start,
                end=end,
                bsg_conn_id="bsg_bench",
                **kwargs,
            )
            started = time.perf_counter()
            records = op.execute(context={})["records"]
            return records / (time.perf_counter() - started), path.stat().st_size

        cases = [(fmt, None) for fmt in ("jsonl", "csv")] + [
            (f"{fmt}.gz", lvl) for fmt in ("jsonl", "csv") for lvl in levels
        ]
        run("jsonl", None)  # warm the simulator's render cache
        rates: dict[tuple[str, int | None], list[float]] = {case: [] for case in cases}
        sizes: dict[tuple[str, int | None], int] = {}
        for _ in range(args.runs):
            for case in cases:
                rate, size = run(*case)
                rates[case].append(rate)
                if case in sizes:
                    assert sizes[case] == size, (
                        f"{case}: {size} bytes, {sizes[case]} before: not byte-identical"
                    )
                sizes[case] = size
    print(f"\n{args.resource}, {args.records:,} records asked, median of {args.runs} interleaved runs")
    print(f"{'file':<10} {'level':>5} {'records/s':>10} {'vs plain':>8} {'MB':>8} {'vs plain':>8}")
    for suffix, level in cases:
        plain = (suffix.removesuffix(".gz"), None)
        rate = statistics.median(rates[(suffix, level)])
        base = statistics.median(rates[plain])
        print(
            f"{suffix:<10} {level or '-':>5} {rate:>10,.0f} {rate / base:>8.2f} "
            f"{sizes[(suffix, level)] / 1e6:>8.2f} {sizes[(suffix, level)] / sizes[plain]:>8.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
