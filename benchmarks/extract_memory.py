"""
Peak memory of an extraction as the data grows: 10,000 against 1,000,000 campaigns.

For each size, starts the simulator in its own process, then runs one extraction
(``BsgExtractCampaignsOperator.execute`` to a local JSONL file) in a fresh child process and
reads that child's peak RSS. The growth between the two sizes is what the provider's
streaming must keep flat; Airflow's own import footprint cancels out.

Usage: ``.venv/bin/python benchmarks/extract_memory.py [--small 10000] [--large 1000000]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _simulator import connection_env, running_simulator

TARGET_GROWTH_MB = 30.0

CHILD = r"""
import json, resource, sys
from datetime import timedelta
import pendulum
from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
end = pendulum.now("UTC").start_of("second")
op = BsgExtractCampaignsOperator(task_id="mem", output_path=sys.argv[1], start=end - timedelta(days=400),
                                 end=end, bsg_conn_id="bsg_bench")
summary = op.execute(context={})
print(json.dumps({"records": summary["records"],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def measure(campaigns: int) -> dict[str, float]:
    with running_simulator(campaigns, "--period-days", "399") as url, tempfile.TemporaryDirectory() as tmp:
        out = (Path(tmp) / "campaigns.jsonl").as_uri()
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, out],
            env={**os.environ, **connection_env("bsg_bench", url)},
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    args = parser.parse_args()
    small, large = measure(args.small), measure(args.large)
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    print(f"\n{'campaigns':>10} {'extracted':>10} {'peak RSS MiB':>13}")
    for size, result in ((args.small, small), (args.large, large)):
        print(f"{size:>10} {result['records']:>10} {result['peak_rss_mb']:>13.1f}")
    verdict = "met" if growth < TARGET_GROWTH_MB else "MISSED"
    print(f"growth: {growth:.1f} MiB ({verdict}: < {TARGET_GROWTH_MB:g} MiB)")


if __name__ == "__main__":
    main()
