"""Throughput of the simulator's list endpoint, as one keep-alive client sees it.

Starts ``python -m bsg_provider.simulator --campaigns 200000 --port 0`` in its own process,
logs in, pages through a 3-month window at ``page[limit]=500`` with one ``requests.Session``
several times, and prints pages, campaigns, seconds and campaigns/second per run plus the
median. The first run renders every campaign (cold cache); later runs reuse cached JSON.
Informational only: the exit status does not depend on the numbers.

Usage: ``python benchmarks/simulator_throughput.py [--campaigns N] [--runs R]``
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


def main() -> int:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--campaigns", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
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
