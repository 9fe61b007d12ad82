"""
Many deferred sensors at once: CPU per poll and memory per waiting trigger.

Starts the simulator in its own process with campaigns that keep ``sending`` for the whole
run, then runs N ``BsgCampaignStatusTrigger`` instances in one event loop, as a triggerer
would, each polling every ``--interval`` seconds for ``--seconds`` seconds. Prints polls,
CPU seconds of this process per poll, and RSS growth per trigger, and whether the HTTP client
was shared.

``--baseline DIR`` compares: it runs the measurement in fresh processes, alternating the
provider code in DIR (e.g. a ``git worktree`` of main) with this checkout's, ``--rounds`` times
each, and prints the medians and their ratio (same simulator, same harness, same run).

Usage: ``.venv/bin/python benchmarks/sensor_scale.py [--triggers 500] [--seconds 60]
[--baseline DIR [--rounds 3]]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _simulator import ROOT, connection_env, running_simulator

TARGET_CPU_MS_PER_POLL = 1.0
TARGET_KB_PER_TRIGGER = 200.0
WARM_UP_SECONDS = 5.0


def rss_kb() -> float:
    """Current resident set size of this process, in KiB."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return float(line.split()[1])
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def list_polls(url: str) -> int:
    return requests.get(f"{url}/_simulator/stats", timeout=30).json()["requests"].get("get", 0)


async def run(url: str, triggers: int, seconds: float, interval: float) -> dict[str, float]:
    from bsg_provider.hooks import bsg_async
    from bsg_provider.triggers.campaign import BsgCampaignStatusTrigger

    ids = []
    for _ in range(triggers):
        body = {
            "created_at": datetime.now(timezone.utc).isoformat(),
            "final_status": "done",
            "status_step_seconds": 3600,
        }
        ids.append(requests.post(f"{url}/_simulator/campaigns", json=body, timeout=30).json()["id"])

    async def one(campaign_id: int) -> None:
        trigger = BsgCampaignStatusTrigger([campaign_id], bsg_conn_id="bsg_bench", poll_interval=interval)
        async for _event in trigger.run():
            raise RuntimeError(f"campaign {campaign_id} finished during the benchmark")

    rss_before = rss_kb()
    tasks = [asyncio.create_task(one(i)) for i in ids]
    # Measure the steady state: connection lookups and logins happen once per trigger, not per poll.
    await asyncio.sleep(WARM_UP_SECONDS)
    polls_before = list_polls(url)
    cpu_before = cpu_seconds()
    peak = rss_before
    shared = 0
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        await asyncio.sleep(1.0)
        peak = max(peak, rss_kb())
        shared = max(shared, bsg_async.shared_client_users())
    cpu = cpu_seconds() - cpu_before
    polls = list_polls(url) - polls_before
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return {"polls": polls, "cpu": cpu, "rss_growth_kb": peak - rss_before, "shared_users": shared}


def measure(args: argparse.Namespace) -> dict[str, float]:
    """One measurement in this process, with ``bsg_provider`` imported from ``args.code``."""
    sys.path.insert(0, str(args.code))
    with running_simulator(1000) as url:
        os.environ.update(connection_env("bsg_bench", url))
        result = asyncio.run(run(url, args.triggers, args.seconds, args.interval))
    polls = max(result["polls"], 1)
    result["cpu_ms"] = 1000.0 * result["cpu"] / polls
    result["kb_per_trigger"] = result["rss_growth_kb"] / args.triggers
    return result


HEADER = ("code", "polls", "CPU s", "CPU ms/poll", "RSS growth MiB", "KiB/trigger", "shared client users")
WIDTHS = (15, 8, 8, 12, 15, 12, 20)


def row(name: str, result: dict[str, float]) -> str:
    values = (
        name,
        str(int(result["polls"])),
        f"{result['cpu']:.2f}",
        f"{result['cpu_ms']:.3f}",
        f"{result['rss_growth_kb'] / 1024:.1f}",
        f"{result['kb_per_trigger']:.1f}",
        str(int(result["shared_users"])),
    )
    return " ".join(v.rjust(w) for v, w in zip(values, WIDTHS, strict=True))


def verdicts(result: dict[str, float]) -> str:
    cpu_verdict = "met" if result["cpu_ms"] <= TARGET_CPU_MS_PER_POLL else "MISSED"
    kb_verdict = "met" if result["kb_per_trigger"] < TARGET_KB_PER_TRIGGER else "MISSED"
    return (
        f"CPU per poll: {cpu_verdict} (<= {TARGET_CPU_MS_PER_POLL} ms); "
        f"memory per trigger: {kb_verdict} (< {TARGET_KB_PER_TRIGGER:g} KiB)"
    )


def in_child(args: argparse.Namespace, code: Path) -> dict[str, float]:
    command = [
        sys.executable,
        __file__,
        "--json",
        "--code",
        str(code),
        "--triggers",
        str(args.triggers),
        "--seconds",
        str(args.seconds),
        "--interval",
        str(args.interval),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True, cwd=code).stdout
    return json.loads(out.strip().splitlines()[-1])


def compare(args: argparse.Namespace) -> None:
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "this": []}
    codes = {"baseline": args.baseline.resolve(), "this": ROOT}
    print(
        f"\n{args.triggers} triggers, one event loop, poll every {args.interval:g} s for {args.seconds:g} s"
    )
    print(f"baseline: {codes['baseline']}; this: {codes['this']}")
    print(" ".join(h.rjust(w) for h, w in zip(HEADER, WIDTHS, strict=True)))
    for round_ in range(args.rounds):
        # Alternate which goes first, so a change in the machine's load hits both alike.
        for name in ("baseline", "this") if round_ % 2 == 0 else ("this", "baseline"):
            result = in_child(args, codes[name])
            runs[name].append(result)
            print(row(name, result), flush=True)
    # Each column's median on its own.
    medians = {
        name: {key: statistics.median(r[key] for r in results) for key in results[0]}
        for name, results in runs.items()
    }
    for name in runs:
        print(row(f"median {name}", medians[name]))
    ratio = medians["baseline"]["cpu_ms"] / medians["this"]["cpu_ms"]
    print(f"CPU per poll, baseline / this: {ratio:.2f}x less CPU per poll")
    print(f"this: {verdicts(medians['this'])}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--triggers", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--code", type=Path, default=ROOT, help="where to import bsg_provider from")
    parser.add_argument("--baseline", type=Path, help="compare with the bsg_provider in this checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline is not None:
        compare(args)
        return
    result = measure(args)
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"\n{args.triggers} triggers, one event loop, poll every {args.interval:g} s for {args.seconds:g} s"
    )
    print(" ".join(h.rjust(w) for h, w in zip(HEADER, WIDTHS, strict=True)))
    print(row("this", result))
    print(verdicts(result))


if __name__ == "__main__":
    main()
