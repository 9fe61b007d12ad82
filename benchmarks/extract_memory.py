"""
Peak memory of an extraction as the data grows: 10,000 against 1,000,000 campaigns, or
100,000 against 2,000,000 messages with ``--resource messages``.

For each size, starts the simulator in its own process, then runs one extraction
(``BsgExtractCampaignsOperator.execute``, or the messages operator with its defaults, to a
local JSONL file) in a fresh child process and reads that child's peak RSS. The growth between
the two sizes is what the provider's streaming must keep flat; Airflow's own import footprint
cancels out. The operator runs at its default concurrency (the connection's ``max_concurrency``);
``--concurrency N`` passes ``max_concurrency=N`` instead, where the operator knows it (pages in
flight are what concurrency adds to memory); the output says which was used.

Usage: ``.venv/bin/python benchmarks/extract_memory.py [--resource campaigns|messages]
[--small N] [--large N] [--concurrency N]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _simulator import ROOT, connection_env, running_simulator

TARGET_GROWTH_MB = 30.0
#: Messages per generated campaign in the messages runs: sizes are campaigns times this.
MESSAGES_PER_CAMPAIGN = 1000

CHILD = r"""
import inspect, json, resource, sys
from datetime import timedelta
import pendulum
if sys.argv[2] == "campaigns":
    from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator as Operator
else:
    from bsg_provider.operators.messages import BsgExtractMessagesOperator as Operator
concurrency = None if sys.argv[3] == "default" else int(sys.argv[3])
known = any("max_concurrency" in inspect.signature(k.__init__).parameters for k in Operator.__mro__
            if "__init__" in vars(k))
kwargs = {"max_concurrency": concurrency} if known and concurrency is not None else {}
end = pendulum.now("UTC").start_of("second")
op = Operator(task_id="mem", output_path=sys.argv[1], start=end - timedelta(days=400), end=end,
              bsg_conn_id="bsg_bench", **kwargs)
summary = op.execute(context={})
if known and concurrency is None:
    from bsg_provider.hooks.bsg import BsgHook
    concurrency = f"{BsgHook('bsg_bench').max_concurrency} (default)"
print(json.dumps({"records": summary["records"], "concurrency": concurrency if known else 1,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(resource: str, size: int, concurrency: int | None) -> dict[str, Any]:
    if resource == "campaigns":
        sim = (size, "--period-days", "399")
    else:
        per = min(MESSAGES_PER_CAMPAIGN, size)
        sim = (size // per, "--period-days", "399", "--messages-per-campaign", str(per))
    with running_simulator(*sim) as url, tempfile.TemporaryDirectory() as tmp:
        out = (Path(tmp) / f"{resource}.jsonl").as_uri()
        env = {
            **os.environ,
            **connection_env("bsg_bench", url),
            "AIRFLOW_CONN_BSG_PII_KEY": json.dumps({"conn_type": "generic", "password": "k" * 32}),
            # This checkout's package, not whichever one the environment installed.
            "PYTHONPATH": str(ROOT),
        }
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                out,
                resource,
                "default" if concurrency is None else str(concurrency),
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resource", choices=("campaigns", "messages"), default="campaigns")
    parser.add_argument("--small", type=int, default=None, help="default 10,000 campaigns / 100,000 messages")
    parser.add_argument("--large", type=int, default=None, help="default 1,000,000 / 2,000,000")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="max_concurrency, where supported (default: the operator's)",
    )
    args = parser.parse_args()
    messages = args.resource == "messages"
    small_size = args.small or (100_000 if messages else 10_000)
    large_size = args.large or (2_000_000 if messages else 1_000_000)
    small = measure(args.resource, small_size, args.concurrency)
    large = measure(args.resource, large_size, args.concurrency)
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    print(f"\n{args.resource:>10} {'extracted':>10} {'peak RSS MiB':>13} {'concurrency':>12}")
    for size, result in ((small_size, small), (large_size, large)):
        print(
            f"{size:>10} {result['records']:>10} {result['peak_rss_mb']:>13.1f} {result['concurrency']:>12}"
        )
    verdict = "PASS" if growth < TARGET_GROWTH_MB else "FAIL"
    what = f"from {small_size:,} to {large_size:,} {args.resource}"
    print(f"{verdict}: peak RSS growth {growth:.1f} MiB {what} (< {TARGET_GROWTH_MB:g} MiB)")


if __name__ == "__main__":
    main()
