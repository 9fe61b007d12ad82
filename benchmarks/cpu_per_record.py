"""
CPU time per record: the provider's hook and operators against a minimal client.

The simulator runs in its own process pinned to one core, the client in another process pinned
to another core (with one core available, both run unpinned and the output says so). A run's
number is the client process's CPU time, user plus system of all its threads
(``getrusage(RUSAGE_SELF)`` before and after the work, in the client process), divided by the
records it wrote. It moves far less with the machine's load than records/s does.

Data (``--resource``, default both): about ``--records`` sms campaigns (default 85,000) created
over ``--days`` days (default 400), and about ``--messages`` messages (default 100,000) over the
same span; page size 500; ``--latency-ms`` per request (default 0). Contenders:

- ``minimal client``: a ``requests.Session`` reading the provider's windows one page at a time,
  msgspec decoding each page, keeping the records created in ``[start, end)`` (a string compare
  on ``created_at``), msgspec ``Encoder.encode_lines`` of the kept records to a JSONL file; for
  messages, each kept message's ``text`` dropped and its ``phone`` replaced by the keyed
  HMAC-SHA256 the messages operator writes by default (``phone_hash``);
- ``minimal client, raw records`` (campaigns): the same passing each record's raw bytes
  through, undecoded (only ``created_at`` is read, for the cut);
- ``minimal client jsonl.gz``: the minimal client writing through ``gzip`` at the operator's
  default level, the baseline of the operators' ``.gz`` rows;
- ``hook iter_campaigns`` (``iter_messages``): the records only, no file;
- ``operator jsonl``, ``csv``, ``jsonl.gz``, ``csv.gz``: ``BsgExtractCampaignsOperator`` (or
  ``BsgExtractMessagesOperator``) with its default settings to a local file (``file://``).

The minimal clients share one client process (requests and msgspec only), the hook and the
operators another (Airflow imported once). Each contender runs once, unmeasured, on the
interval's last tenth (imports and first calls; on all of it when the tenth holds under 1,000
records), and the minimal client once more on all of it (the simulator renders a record the
first time it is asked for it: not the first round's cost); then once per ``--rounds`` round,
every contender in turn (interleaved). The table gives each median with the 1-minute load
averages seen during its runs, and each row's ratio to its baseline. Every run, warm-up
included, must yield and write exactly the records the simulator holds in the interval, else
the script stops: a broken contender cannot look fast. Targets: the operators' JSONL and CSV
against the minimal client (campaigns 1.3x and 1.5x, messages 1.5x and 1.7x); ``--check``
exits 1 on any FAIL.

Usage: ``.venv/bin/python benchmarks/cpu_per_record.py [--resource campaigns|messages|both]
[--records N] [--messages N] [--rounds 5] [--latency-ms 0] [--check]``
"""

from __future__ import annotations

import argparse
import csv
import gc
import gzip
import hmac
import json
import logging
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from resource import RUSAGE_SELF, getrusage
from typing import Any

import msgspec

# This checkout's package, not whichever one the environment installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))
from _simulator import ROOT, connection_env, running_simulator
from compare import (
    PAGE_SIZE,
    PII_KEY,
    SMS_SHARE,
    Setup,
    default_concurrency,
    hook_records,
    login,
    operator_records,
)

MESSAGES_PER_CAMPAIGN = 100
#: The share of the interval, at its end, each contender runs on once before it is measured.
WARM_UP_SHARE = 0.1
#: Fewer records than this in that share, and the warm-up runs on the whole interval.
WARM_UP_MIN_RECORDS = 1000
MINIMAL = "minimal client"
MINIMAL_RAW = "minimal client, raw records"
MINIMAL_GZ = "minimal client jsonl.gz"
#: The most CPU per record each operator may use, as a multiple of the minimal client's (issue 21).
TARGETS = {
    ("campaigns", "operator jsonl"): 1.3,
    ("campaigns", "operator csv"): 1.5,
    ("messages", "operator jsonl"): 1.5,
    ("messages", "operator csv"): 1.7,
}


@dataclass(frozen=True)
class Contender:
    """One row: its name, the client process that runs it and the row its ratio is taken against."""

    name: str
    family: str
    baseline: str | None


def contenders(resource: str) -> list[Contender]:
    """The rows of one resource's table, in the order each round runs them."""
    rows = [Contender(MINIMAL, "minimal", None)]
    if resource == "campaigns":  # raw messages could not have their phones hashed
        rows.append(Contender(MINIMAL_RAW, "minimal", MINIMAL))
    rows.append(Contender(MINIMAL_GZ, "minimal", MINIMAL))
    rows.append(Contender(f"hook iter_{resource}", "provider", MINIMAL))
    for suffix in ("jsonl", "csv", "jsonl.gz", "csv.gz"):
        baseline = MINIMAL_GZ if suffix.endswith(".gz") else MINIMAL
        rows.append(Contender(f"operator {suffix}", "provider", baseline))
    return rows


# -- the client processes --------------------------------------------------------------------------


class _Created(msgspec.Struct):
    created_at: str


class _Total(msgspec.Struct):
    total: int


class _Meta(msgspec.Struct):
    page: _Total


class _RawPage(msgspec.Struct):
    data: list[msgspec.Raw]
    meta: _Meta


def hash_phones(messages: list[dict[str, Any]], keyed: Any) -> None:
    """What the messages operator does by default: text dropped, phone replaced by its keyed hash."""
    for message in messages:
        message.pop("text", None)
        phone = message.pop("phone", None)
        if phone is not None:
            digest = keyed.copy()
            digest.update(str(phone).encode("ascii"))
            phone = digest.hexdigest()
        message["phone_hash"] = phone


def minimal_client(setup: Setup, out: Path, *, raw: bool = False, gzip_level: int | None = None) -> int:
    """
    Every window's pages, one request at a time, the records created in ``[start, end)`` to
    ``out`` as JSON lines; returns how many.

    :param raw: pass each record's bytes through undecoded (only ``created_at`` is read).
    :param gzip_level: write through gzip at this level.
    """
    import requests

    session = requests.Session()
    login(session, setup.url)
    url = setup.url + setup.path
    dicts, raw_page, created = (
        msgspec.json.Decoder(),
        msgspec.json.Decoder(_RawPage),
        msgspec.json.Decoder(_Created),
    )
    encoder = msgspec.json.Encoder()
    keyed = hmac.new(PII_KEY.encode(), digestmod="sha256") if setup.resource == "messages" else None
    count = 0
    with open(out, "wb") if gzip_level is None else gzip.open(out, "wb", compresslevel=gzip_level) as fh:
        for api_from, api_to, keep_from, keep_to in setup.windows:
            offset = 0
            while True:
                response = session.get(url, params=setup.params(api_from, api_to, offset), timeout=60)
                response.raise_for_status()
                if raw:
                    page = raw_page.decode(response.content)
                    data, total = page.data, page.meta.page.total
                    kept = [r for r in data if keep_from <= created.decode(r).created_at < keep_to]
                    if kept:
                        fh.write(b"\n".join(kept) + b"\n")
                else:
                    body = dicts.decode(response.content)
                    data, total = body["data"], body["meta"]["page"]["total"]
                    kept = [r for r in data if keep_from <= r["created_at"] < keep_to]
                    if keyed is not None:
                        hash_phones(kept, keyed)
                    fh.write(encoder.encode_lines(kept))
                count += len(kept)
                offset += len(data)
                if not data or offset >= total:
                    break
    return count


def run_contender(name: str, setup: Setup, gzip_level: int) -> tuple[int, Path | None]:
    """Run one contender; the records it counted and the file it wrote (None for the hook)."""
    if name == MINIMAL:
        out = setup.tmp / "minimal.jsonl"
        return minimal_client(setup, out), out
    if name == MINIMAL_RAW:
        out = setup.tmp / "minimal-raw.jsonl"
        return minimal_client(setup, out, raw=True), out
    if name == MINIMAL_GZ:
        out = setup.tmp / "minimal.jsonl.gz"
        return minimal_client(setup, out, gzip_level=gzip_level), out
    if name.startswith("hook "):
        return hook_records(setup), None
    suffix = name.removeprefix("operator ")
    return operator_records(setup, suffix), setup.tmp / f"operator.{suffix}"


def records_in(path: Path) -> int:
    """The records in a JSONL or CSV file, gzipped or not (CSV: rows less the header)."""
    opener: Callable[..., Any] = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", newline="") as fh:
        if ".csv" in path.suffixes:
            return max(0, sum(1 for _ in csv.reader(fh)) - 1)
        return sum(1 for line in fh if line.strip())


def worker(family: str, cpus: set[int] | None) -> int:
    """
    A client process: runs the contender of each JSON job read from stdin and answers each with
    one JSON line: records counted and written, CPU seconds (all threads) and wall seconds.

    :param family: ``minimal`` or ``provider``, what it imports.
    :param cpus: the cores to pin itself to once its imports are done; None for any.
    """
    answers = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what the code under test prints goes to the log, not into the answers
    logging.disable(logging.CRITICAL)  # the operators' per-window lines
    concurrency = 1
    if family == "provider":
        # Airflow's import, before pinning: on a busy machine start-up may use every core.
        import bsg_provider.operators.campaigns
        import bsg_provider.operators.messages  # noqa: F401

        concurrency = default_concurrency()
    if cpus is not None:
        for thread in os.listdir("/proc/self/task"):  # every thread, any the imports started too
            os.sched_setaffinity(int(thread), cpus)
    for line in sys.stdin:
        job = json.loads(line)
        os.environ.update(connection_env("bsg_bench", job["url"]))  # this resource's simulator
        setup = Setup(
            resource=job["resource"],
            url=job["url"],
            start=datetime.fromisoformat(job["start"]),
            end=datetime.fromisoformat(job["end"]),
            windows=[tuple(w) for w in job["windows"]],
            concurrency=concurrency,
            tmp=Path(job["tmp"]),
        )
        gc.collect()  # the last run's garbage is not this run's work
        before, started = getrusage(RUSAGE_SELF), time.perf_counter()
        records, out = run_contender(job["contender"], setup, job["gzip_level"])
        wall, after = time.perf_counter() - started, getrusage(RUSAGE_SELF)
        cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
        written = records if out is None else records_in(out)
        answer = {
            "records": records,
            "written": written,
            "cpu": cpu,
            "wall": wall,
            "concurrency": concurrency,
        }
        answers.write(json.dumps(answer) + "\n")
        answers.flush()
    return 0


# -- the conductor ---------------------------------------------------------------------------------


class Client:
    """A client process of one family, pinned to the client core, running jobs one at a time."""

    def __init__(self, family: str, env: dict[str, str], cpus: set[int] | None, log: Path) -> None:
        self.family, self.log = family, log
        pin = [] if cpus is None else ["--pin", ",".join(map(str, sorted(cpus)))]
        with open(log, "wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, __file__, "--worker", family, *pin],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                cwd=ROOT,
                env=env,
            )

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            tail = self.log.read_text(errors="replace")[-4000:]
            raise SystemExit(f"the {self.family} client process died running {job['contender']!r}:\n{tail}")
        return json.loads(answer)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass(frozen=True)
class Interval:
    """``[start, end)``, the provider's windows for it and the records the simulator holds in it."""

    start: datetime
    end: datetime
    windows: list[tuple[str, str, str, str]]
    expected: int


def interval(url: str, resource: str, start: datetime, end: datetime, now: datetime) -> Interval:
    """``[start, end)`` with the provider's windows (UTC account) and the simulator's count for it."""
    from bsg_provider.extraction.windows import plan_windows, to_api_time

    windows = [
        (*w.api_bounds("UTC"), to_api_time(w.start, "UTC"), to_api_time(w.end, "UTC"))
        for w in plan_windows(start, end, tz="UTC", now=now).windows
    ]
    query = {"start": start.isoformat(), "end": end.isoformat()}
    if resource == "campaigns":
        query["type"] = "sms"
        path = "/_simulator/ground-truth"
    else:
        path = "/_simulator/messages/ground-truth"
    with urllib.request.urlopen(f"{url}{path}?{urllib.parse.urlencode(query)}", timeout=300) as answer:
        expected = json.load(answer)["count"]
    return Interval(start, end, windows, expected)


@dataclass
class Runs:
    """One contender's measured runs."""

    us_per_record: list[float]
    loads: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.us_per_record)


def checked(contender: str, answer: dict[str, Any], span: Interval) -> dict[str, Any]:
    """The answer, if the run yielded and wrote every record of the interval exactly; else stop."""
    if answer["records"] != span.expected or answer["written"] != span.expected:
        raise SystemExit(
            f"{contender} counted {answer['records']:,} and wrote {answer['written']:,} records; the "
            f"simulator holds {span.expected:,} in [{span.start.isoformat()}, {span.end.isoformat()}). "
            "A contender that loses or repeats records is broken: its time would mean nothing."
        )
    return answer


def measure(
    args: argparse.Namespace, resource: str, sim_cpus: set[int] | None, clients: dict[str, Client], tmp: str
) -> int:
    """Run the rounds for one resource, print its table; return the number of FAILs."""
    from bsg_provider.extraction.file_formats import DEFAULT_COMPRESSION_LEVEL

    now = datetime.now(timezone.utc).replace(microsecond=0)
    # A day before the simulator's clock: no window reaches the present, so no page changes mid-read.
    end = now - timedelta(days=1)
    start = end - timedelta(days=args.days - 2)
    warm_start = (end - (end - start) * WARM_UP_SHARE).replace(microsecond=0)
    sim = ["--period-days", str(args.days), "--now", now.isoformat(), "--latency-ms", str(args.latency_ms)]
    if resource == "campaigns":
        campaigns = max(1, round(args.records / SMS_SHARE))
    else:
        campaigns = max(1, args.messages // MESSAGES_PER_CAMPAIGN)
        sim += ["--messages-per-campaign", str(MESSAGES_PER_CAMPAIGN)]
    table = contenders(resource)
    runs = {c.name: Runs([], []) for c in table}
    with running_simulator(campaigns, *sim, cpus=sim_cpus) as url:
        full = interval(url, resource, start, end, now)
        warm = interval(url, resource, warm_start, end, now)
        if warm.expected < WARM_UP_MIN_RECORDS:  # too few to reach every step: all of a small set
            warm = full
        print(
            f"\n{resource}: {full.expected:,} records in [{start.isoformat()}, {end.isoformat()}), "
            f"{len(full.windows)} windows, page size {PAGE_SIZE}, {args.latency_ms:g} ms per request; "
            f"warm-up on {warm.expected:,} of them",
            flush=True,
        )

        def job(contender: Contender, span: Interval) -> dict[str, Any]:
            answer = clients[contender.family].run(
                {
                    "contender": contender.name,
                    "resource": resource,
                    "url": url,
                    "start": span.start.isoformat(),
                    "end": span.end.isoformat(),
                    "windows": span.windows,
                    "tmp": tmp,
                    "gzip_level": DEFAULT_COMPRESSION_LEVEL,
                }
            )
            return checked(contender.name, answer, span)

        concurrency = None
        for contender in table:
            answer = job(contender, warm)
            if contender.family == "provider":
                concurrency = answer["concurrency"]
        if warm is not full:
            job(table[0], full)  # the simulator renders a record when first asked: all of them, once
        print(f"hook and operators at their default concurrency: {concurrency} pages in flight")
        for round_ in range(1, args.rounds + 1):
            for contender in table:
                answer = job(contender, full)
                load = os.getloadavg()[0]
                us = answer["cpu"] / max(1, answer["records"]) * 1e6
                runs[contender.name].us_per_record.append(us)
                runs[contender.name].loads.append(load)
                print(
                    f"  round {round_}/{args.rounds}  {contender.name:<28} "
                    f"{answer['records']:>9,} records {us:8.2f} µs/record  "
                    f"cpu {answer['cpu']:6.2f} s  wall {answer['wall']:6.2f} s  load {load:.2f}",
                    flush=True,
                )
    return report(args, resource, table, runs)


def report(args: argparse.Namespace, resource: str, table: list[Contender], runs: dict[str, Runs]) -> int:
    print(
        f"\n{resource}: CPU µs per record of the client process (user + system, all threads), "
        f"median of {args.rounds} interleaved round(s); load = 1-minute load averages during the runs"
    )
    print(
        f"{'contender':<29}{'µs/record':>10}{'min':>8}{'max':>8}{'ratio':>8}  {'against':<24}"
        f"{'target':>7}  {'verdict':<8}{'load 1m':>11}"
    )
    fails = 0
    verdicts = []
    for contender in table:
        row = runs[contender.name]
        loads = f"{min(row.loads):.2f}-{max(row.loads):.2f}"
        ratio = target = verdict = against = ""
        if contender.baseline is not None:
            value = row.median / runs[contender.baseline].median
            ratio, against = f"{value:.2f}x", contender.baseline
            limit = TARGETS.get((resource, contender.name))
            if limit is not None:
                target, verdict = f"{limit:.2f}x", "PASS" if value <= limit else "FAIL"
                fails += verdict == "FAIL"
                verdicts.append(
                    f"{verdict}: {resource} {contender.name} {value:.2f}x the {contender.baseline}'s CPU "
                    f"per record (target <= {limit:.2f}x)"
                )
        print(
            f"{contender.name:<29}{row.median:>10.2f}{min(row.us_per_record):>8.2f}"
            f"{max(row.us_per_record):>8.2f}{ratio:>8}  {against:<24}{target:>7}  {verdict:<8}{loads:>11}"
        )
    print("\n".join(verdicts))
    return fails


def checkout() -> str:
    """The commit measured, and whether the package differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "bsg_provider"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{commit}{' with bsg_provider/ modified' if dirty else ''}"


def cores() -> tuple[tuple[set[int] | None, set[int] | None], str]:
    """The simulator's and the clients' cores, and how to say it."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return (None, None), (
            f"only CPU {available[0]} is available: the simulator and the client processes run unpinned, "
            "sharing it (the CPU time measured is still the client's own)"
        )
    return ({available[0]}, {available[1]}), (
        f"the simulator pinned to CPU {available[0]}, the client processes to CPU {available[1]}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resource", choices=("campaigns", "messages", "both"), default="both")
    parser.add_argument("--records", type=int, default=85_000, help="sms campaigns, about (default 85,000)")
    parser.add_argument("--messages", type=int, default=100_000, help="messages, about (default 100,000)")
    parser.add_argument("--days", type=int, default=400, help="days the data spans (default 400)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="per request (default 0)")
    parser.add_argument("--check", action="store_true", help="exit 1 if any target fails")
    parser.add_argument("--worker", choices=("minimal", "provider"), help=argparse.SUPPRESS)
    parser.add_argument("--pin", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, None if args.pin is None else {int(c) for c in args.pin.split(",")})
    if args.rounds < 1 or args.days < 3:
        parser.error("--rounds must be at least 1 and --days at least 3")
    started = time.perf_counter()
    pins, where = cores()
    print(f"command: {shlex.join(sys.orig_argv)}")
    print(
        f"date: {datetime.now(timezone.utc).isoformat(timespec='seconds')}  checkout: {checkout()}  "
        f"Python {sys.version.split()[0]}  load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    print(where, flush=True)
    resources = ("campaigns", "messages") if args.resource == "both" else (args.resource,)
    sim_cpus, client_cpus = pins
    env = {
        **os.environ,
        "AIRFLOW_CONN_BSG_PII_KEY": json.dumps({"conn_type": "generic", "password": PII_KEY}),
        "PYTHONPATH": str(ROOT),
    }
    with tempfile.TemporaryDirectory(prefix="bsg-cpu-") as tmp:
        # Started now, so the provider's process imports Airflow while the first simulator starts.
        clients = {f: Client(f, env, client_cpus, Path(tmp, f"{f}.log")) for f in ("minimal", "provider")}
        try:
            fails = sum(measure(args, resource, sim_cpus, clients, tmp) for resource in resources)
        finally:
            for client in clients.values():
                client.close()
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; "
        f"load average now: {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    return 1 if args.check and fails else 0


if __name__ == "__main__":
    sys.exit(main())
