"""Throughput of the simulator's list endpoint, as one keep-alive client sees it.

Starts ``python -m bsg_provider.simulator --campaigns 200000 --port 0`` in its own process,
logs in, pages through a 3-month window at ``page[limit]=500`` with one ``requests.Session``
several times, and prints pages, campaigns, seconds and campaigns/second per run plus the
median. The first run renders every campaign (cold cache); later runs reuse cached JSON.
Informational only: the exit status does not depend on the numbers.

With ``--messages`` it measures ``GET /api/messages`` instead: a simulator with ``--campaigns``
(default 2000) campaigns of ``--messages-per-campaign`` (default 1000) messages, that is
2,000,000, paged through in consecutive 3-month windows covering all 400 days, so every
message is served once per run; it prints messages/second and the simulator process's
resident memory before the first request and at its peak, against a baseline simulator of
the same campaigns with 50 messages each (100,000 messages) measured in the same run.

Usage: ``python benchmarks/simulator_throughput.py [--campaigns N] [--runs R]``
       ``python benchmarks/simulator_throughput.py --messages [--campaigns N]
       [--messages-per-campaign M] [--runs R]``
"""

from __future__ import annotations

import argparse
import calendar
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _simulator import API_KEY, running_simulator

TARGET = 20_000


def months_back(value: datetime, months: int) -> datetime:
    """Calendar months back, clamped to the month's last day.

    :param value: the datetime.
    :param months: months to go back.
    """
    index = value.year * 12 + value.month - 1 - months
    year, month = divmod(index, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def page_through(session: requests.Session, url: str, params: dict[str, str]) -> tuple[int, int, float]:
    """Read every page of a window; return pages, campaigns and seconds.

    :param session: logged-in keep-alive session.
    :param url: simulator base URL.
    :param params: window filter parameters.
    """
    pages = campaigns = offset = 0
    started = time.perf_counter()
    while True:
        response = session.get(
            f"{url}/api/campaigns", params={**params, "page[limit]": 500, "page[offset]": offset}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        pages += 1
        campaigns += len(body["data"])
        offset += 500
        if offset >= body["meta"]["page"]["total"]:
            return pages, campaigns, time.perf_counter() - started


def child_memory_kib() -> dict[str, int]:
    """VmRSS and VmHWM (peak) in KiB of this process's only child (the simulator)."""
    children = [
        pid for task in Path("/proc/self/task").iterdir() for pid in (task / "children").read_text().split()
    ]
    assert len(children) == 1, children
    fields = {}
    for line in Path(f"/proc/{children[0]}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def page_messages(session: requests.Session, url: str, end: datetime, days: int) -> tuple[int, int, float]:
    """Read every message created in the ``days`` before ``end``, window by 3-month window.

    :return: pages, messages and seconds.
    """
    pages = count = 0
    started = time.perf_counter()
    upper = end
    lower_bound = end.timestamp() - days * 86400
    while upper.timestamp() > lower_bound:
        lower = months_back(upper, 3)
        offset = 0
        while True:
            params = {
                "filter[from]": lower.strftime("%Y-%m-%d %H:%M:%S"),
                "filter[to]": upper.strftime("%Y-%m-%d %H:%M:%S"),
                "page[limit]": 500,
                "page[offset]": offset,
            }
            response = session.get(f"{url}/api/messages", params=params, timeout=60)
            response.raise_for_status()
            body = response.json()
            pages += 1
            count += len(body["data"])
            offset += 500
            if offset >= body["meta"]["page"]["total"]:
                break
        # Inclusive bounds: the next window ends a second before this one starts.
        upper = datetime.fromtimestamp(lower.timestamp() - 1, timezone.utc)
    return pages, count, time.perf_counter() - started


def measure_messages(
    campaigns: int, per_campaign: int, runs: int
) -> tuple[float, dict[str, int], dict[str, int]]:
    """Serve every message ``runs`` times; return the median rate and memory before and after."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    extra = ("--messages-per-campaign", str(per_campaign), "--now", now.isoformat())
    with running_simulator(campaigns, *extra) as url:
        before = child_memory_kib()
        session = requests.Session()
        token = session.post(f"{url}/api/auth/login", json={"api_key": API_KEY}, timeout=10).json()["bearer"]
        session.headers["Authorization"] = f"Bearer {token}"
        total = requests.get(f"{url}/_simulator/messages/total", timeout=60).json()["total"]
        rates = []
        for run in range(1, runs + 1):
            pages, count, seconds = page_messages(session, url, now, 401)
            assert count == total, (count, total)
            rates.append(count / seconds)
            print(
                f"{per_campaign:>6} {run:>4} {pages:>6} {count:>10} {seconds:>8.2f} {count / seconds:>11,.0f}"
            )
        return statistics.median(rates), before, child_memory_kib()


def main_messages(args: argparse.Namespace) -> int:
    """The ``--messages`` benchmark."""
    print(f"simulator: {args.campaigns} campaigns, every message served once per run, page[limit]=500")
    print(f"{'per':>6} {'run':>4} {'pages':>6} {'messages':>10} {'seconds':>8} {'messages/s':>11}")
    base_rate, base_before, base_after = measure_messages(args.campaigns, 50, args.runs)
    rate, before, after = measure_messages(args.campaigns, args.messages_per_campaign, args.runs)
    total = args.campaigns * args.messages_per_campaign
    print(
        f"baseline {args.campaigns * 50:,} messages: {base_rate:,.0f} messages/s, RSS "
        f"{base_before['VmRSS'] / 1024:.1f} MB idle, peak {base_after['VmHWM'] / 1024:.1f} MB"
    )
    print(
        f"{total:,} messages: {rate:,.0f} messages/s ({rate / base_rate:.2f}x the baseline), RSS "
        f"{before['VmRSS'] / 1024:.1f} MB idle, peak {after['VmHWM'] / 1024:.1f} MB"
    )
    growth = (after["VmHWM"] - base_after["VmHWM"]) / 1024
    print(f"peak RSS growth from {args.campaigns * 50:,} to {total:,} messages: {growth:.1f} MB")
    return 0


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=None, help="default 200000, or 2000 with --messages")
    parser.add_argument("--runs", type=int, default=None, help="default 5, or 1 with --messages")
    parser.add_argument("--messages", action="store_true", help="measure GET /api/messages")
    parser.add_argument("--messages-per-campaign", type=int, default=1000)
    args = parser.parse_args()
    if args.messages:
        args.campaigns = args.campaigns or 2000
        args.runs = args.runs or 1
        return main_messages(args)
    args.campaigns = args.campaigns or 200_000
    args.runs = args.runs or 5
    started = time.perf_counter()
    with running_simulator(args.campaigns) as url:
        startup = time.perf_counter() - started
        session = requests.Session()
        token = session.post(f"{url}/api/auth/login", json={"api_key": API_KEY}, timeout=10).json()["bearer"]
        session.headers["Authorization"] = f"Bearer {token}"
        end = datetime.now(timezone.utc).replace(microsecond=0)
        params = {
            "filter[from]": months_back(end, 3).strftime("%Y-%m-%d %H:%M:%S"),
            "filter[to]": end.strftime("%Y-%m-%d %H:%M:%S"),
        }
        print(f"simulator: {args.campaigns} campaigns, ready in {startup:.2f} s at {url}")
        print(f"window: {params['filter[from]']} .. {params['filter[to]']} (UTC), page[limit]=500")
        print(f"{'run':>4} {'pages':>6} {'campaigns':>10} {'seconds':>8} {'campaigns/s':>12}")
        rates = []
        for run in range(1, args.runs + 1):
            pages, campaigns, seconds = page_through(session, url, params)
            rates.append(campaigns / seconds)
            note = "  (cold cache)" if run == 1 else ""
            print(f"{run:>4} {pages:>6} {campaigns:>10} {seconds:>8.3f} {campaigns / seconds:>12,.0f}{note}")
        median = statistics.median(rates)
        print(f"median: {median:,.0f} campaigns/s; cold run: {rates[0]:,.0f} campaigns/s")
        verdict = "met" if median >= TARGET else "NOT met"
        print(f"target {TARGET:,} campaigns/s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
