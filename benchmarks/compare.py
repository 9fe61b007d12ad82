"""
Side by side, one run: the provider against hand-written loops, dlt and the http provider.

For each ``--latency-ms`` (default 0 and 50) it starts the simulator in its own process with
that latency per request, then runs every contender over the same windows and pages, one
after the other and ``--runs`` times in turn (interleaved), and prints the median records/s
of each with its ratio to the hand-written sequential loop of the same run:

- ``loop``: a plain ``requests.Session`` loop, one page at a time, writing JSON lines with
  ``json.dumps`` (``loop csv``: rows with the stdlib ``csv`` module; ``.gz``: through
  ``gzip.open`` at its default level);
- ``loop, N in flight``: the same loop with N pages of a window in flight at once (a thread
  pool of N sessions, N = ``--concurrency``, by default the connection's ``max_concurrency`` default
  where it has one, else 4);
- ``hook``: ``BsgHook.iter_campaigns`` (``iter_messages``), records only, no file;
- ``operator jsonl/csv/jsonl.gz/csv.gz``: ``BsgExtractCampaignsOperator.execute`` (or the
  messages operator with its defaults) to a local file;
- ``dlt``: dlt's ``rest_api`` source to its ``filesystem`` destination as JSONL;
- ``http provider``: the Airflow http provider's ``HttpHook`` with hand-written paging.

The provider contenders pass ``max_concurrency=N`` where this checkout's hook and operator
know it (detected, so the script runs before and after concurrent paging exists); the table
says which concurrency each used. dlt and the http provider come from ``requirements/bench.txt``
(``make bench`` builds ``.venv-bench``); without them those rows are skipped, said so.

Usage: ``.venv-bench/bin/python benchmarks/compare.py [--resource campaigns|messages]
[--latency-ms 0,50] [--concurrency N] [--runs 3] [--records N] [--records-at-latency N]``
"""

from __future__ import annotations

import argparse
import csv
import gzip
import inspect
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

# This checkout's package, not whichever one the environment installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(1, str(Path(__file__).resolve().parent))
from _simulator import API_KEY, connection_env, running_simulator

PAGE_SIZE = 500
#: Share of the simulator's campaigns that are sms (what the campaigns contenders read).
SMS_SHARE = 0.85
PII_KEY = "benchmark-hmac-key-0123456789abcdef"
TARGETS_0MS = {"operator jsonl": ("loop", 0.95), "operator csv": ("loop csv", 0.9)}
TARGET_SPEEDUP_50MS = 6.0
TARGET_PARALLEL_GAP = 0.10
TARGETS_MESSAGES = {"operator jsonl": ("loop", 0.9), "operator csv": ("loop csv", 0.9)}

#: The raw loop's CSV columns: what a hand-written export would flatten.
CAMPAIGN_CELLS = (
    "id",
    "name",
    "sender",
    "status",
    "message_type",
    "start_at",
    "real_start_at",
    "finished_at",
    "created_at",
    "calculated_price",
    "currency",
    "alternative_channels",
)
MESSAGE_CELLS = (
    "id",
    "campaign_id",
    "reference_id",
    "type",
    "source",
    "text",
    "phone",
    "validity",
    "status",
    "sender",
    "created_at",
    "sent_at",
    "delivered_at",
    "country",
    "parts",
)


@dataclass
class Setup:
    """What every contender of one latency gets: the simulator, the interval and its windows."""

    resource: str
    url: str
    start: datetime
    end: datetime
    #: (filter[from], filter[to], keep from, keep before): the provider's windows, as strings.
    windows: list[tuple[str, str, str, str]]
    concurrency: int
    tmp: Path
    used_concurrency: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return "/api/campaigns" if self.resource == "campaigns" else "/api/messages"

    def params(self, api_from: str, api_to: str, offset: int) -> dict[str, Any]:
        params: dict[str, Any] = {
            "filter[from]": api_from,
            "filter[to]": api_to,
            "page[offset]": offset,
            "page[limit]": PAGE_SIZE,
            "sort": "id",
            "way": "asc",
        }
        if self.resource == "campaigns":
            params["filter[type]"] = "sms"
        return params


# -- hand-written loops ----------------------------------------------------------------------------


def login(session: Any, url: str) -> None:
    token = session.post(f"{url}/api/auth/login", json={"api_key": API_KEY}, timeout=60).json()["bearer"]
    session.headers["Authorization"] = f"Bearer {token}"


def sequential_pages(setup: Setup) -> Iterator[list[dict[str, Any]]]:
    """Every window's pages, one request at a time; records outside [start, end) dropped."""
    import requests

    session = requests.Session()
    login(session, setup.url)
    for api_from, api_to, keep_from, keep_to in setup.windows:
        offset = 0
        while True:
            body = session.get(
                setup.url + setup.path, params=setup.params(api_from, api_to, offset), timeout=60
            ).json()
            # Requests ask for a second more on each side; keep [start, end) as the provider does.
            yield [r for r in body["data"] if keep_from <= r["created_at"] < keep_to]
            offset += len(body["data"])
            if not body["data"] or offset >= body["meta"]["page"]["total"]:
                break


def parallel_pages(setup: Setup) -> Iterator[list[dict[str, Any]]]:
    """The same pages; after a window's first page, its other pages N at a time, in order."""
    import requests

    local = threading.local()
    token_session = requests.Session()
    login(token_session, setup.url)
    auth = token_session.headers["Authorization"]

    def fetch(args: tuple[str, str, int]) -> dict[str, Any]:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers["Authorization"] = auth
        api_from, api_to, offset = args
        return local.session.get(
            setup.url + setup.path, params=setup.params(api_from, api_to, offset), timeout=60
        ).json()

    with ThreadPoolExecutor(max_workers=setup.concurrency) as pool:
        for api_from, api_to, keep_from, keep_to in setup.windows:
            first = fetch((api_from, api_to, 0))
            total = first["meta"]["page"]["total"]
            rest = pool.map(fetch, [(api_from, api_to, o) for o in range(PAGE_SIZE, total, PAGE_SIZE)])
            for body in (first, *rest):
                yield [r for r in body["data"] if keep_from <= r["created_at"] < keep_to]


def json_lines(pages: Iterator[list[dict[str, Any]]], out: Path, gz: bool = False) -> int:
    count = 0
    with (gzip.open if gz else open)(out, "wt", encoding="utf-8") as fh:
        for page in pages:
            for record in page:
                fh.write(json.dumps(record) + "\n")
            count += len(page)
    return count


def csv_rows(setup: Setup, pages: Iterator[list[dict[str, Any]]], out: Path, gz: bool = False) -> int:
    count = 0
    with (gzip.open if gz else open)(out, "wt", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if setup.resource == "campaigns":
            writer.writerow([*CAMPAIGN_CELLS[:9], "delivered", "sent", *CAMPAIGN_CELLS[9:]])
            for page in pages:
                for r in page:
                    stats = r["statistics"]
                    writer.writerow(
                        [*(r[k] for k in CAMPAIGN_CELLS[:9]), stats["delivered"], stats["sent"]]
                        + [r[k] for k in CAMPAIGN_CELLS[9:]]
                    )
                count += len(page)
        else:
            writer.writerow([*MESSAGE_CELLS, "amount_value", "amount_currency"])
            for page in pages:
                for r in page:
                    amount = r["amount"] or {}
                    writer.writerow(
                        [*(r[k] for k in MESSAGE_CELLS), amount.get("value"), amount.get("currency")]
                    )
                count += len(page)
    return count


# -- the provider ----------------------------------------------------------------------------------


def accepts(function: Callable[..., Any], name: str) -> bool:
    """Whether ``function`` (or, for a class, any ``__init__`` of its bases) takes ``name``."""
    targets = [klass.__init__ for klass in function.__mro__] if inspect.isclass(function) else [function]
    for target in targets:
        try:
            if name in inspect.signature(target).parameters:
                return True
        except (TypeError, ValueError):
            continue
    return False


def default_concurrency() -> int:
    """The connection's ``max_concurrency`` default where this checkout has one, else 4."""
    try:
        from bsg_provider.client.connection import DEFAULT_MAX_CONCURRENCY
    except ImportError:  # a checkout from before concurrent paging
        return 4
    return DEFAULT_MAX_CONCURRENCY


def hook_records(setup: Setup) -> int:
    from bsg_provider.hooks.bsg import BsgHook

    hook = BsgHook("bsg_bench")
    method = hook.iter_campaigns if setup.resource == "campaigns" else hook.iter_messages
    kwargs: dict[str, Any] = {"page_size": PAGE_SIZE}
    if accepts(method, "max_concurrency"):
        kwargs["max_concurrency"] = setup.concurrency
        setup.used_concurrency["hook"] = str(setup.concurrency)
    else:
        setup.used_concurrency["hook"] = connection_concurrency(setup)
    try:
        return sum(1 for _ in method(setup.start, setup.end, **kwargs))
    finally:
        hook.close()


def connection_concurrency(setup: Setup) -> str:
    from bsg_provider.client.connection import KNOWN_EXTRAS

    return (
        f"{setup.concurrency} (connection extra)" if "max_concurrency" in KNOWN_EXTRAS else "1 (unsupported)"
    )


def operator_records(setup: Setup, suffix: str) -> int:
    if setup.resource == "campaigns":
        from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator as Operator
    else:
        from bsg_provider.operators.messages import BsgExtractMessagesOperator as Operator
    kwargs: dict[str, Any] = {}
    label = f"operator {suffix}"
    if accepts(Operator, "max_concurrency"):
        kwargs["max_concurrency"] = setup.concurrency
        setup.used_concurrency[label] = str(setup.concurrency)
    else:
        setup.used_concurrency[label] = connection_concurrency(setup)
    op = Operator(
        task_id="bench",
        output_path=(setup.tmp / f"operator.{suffix}").as_uri(),
        start=setup.start,
        end=setup.end,
        page_size=PAGE_SIZE,
        bsg_conn_id="bsg_bench",
        **kwargs,
    )
    return op.execute(context={})["records"]


# -- the others ------------------------------------------------------------------------------------


def dlt_records(setup: Setup) -> int:
    """dlt's rest_api source, one resource per window, offset paging by meta.page.total, to JSONL files."""
    import dlt
    import requests
    from dlt.sources.rest_api import rest_api_source

    session = requests.Session()
    login(session, setup.url)
    token = session.headers["Authorization"].split(" ", 1)[1]
    resources = []
    for index, (api_from, api_to, _keep_from, _keep_to) in enumerate(setup.windows):
        params = setup.params(api_from, api_to, 0)
        del params["page[offset]"], params["page[limit]"]
        resources.append(
            {
                "name": f"window_{index}",
                "table_name": setup.resource,
                "endpoint": {
                    "path": setup.path.lstrip("/"),
                    "params": params,
                    "data_selector": "data",
                    "paginator": {
                        "type": "offset",
                        "limit": PAGE_SIZE,
                        "offset_param": "page[offset]",
                        "limit_param": "page[limit]",
                        "total_path": "meta.page.total",
                    },
                },
            }
        )
    source = rest_api_source(
        {
            "client": {"base_url": setup.url + "/", "auth": {"type": "bearer", "token": token}},
            "resource_defaults": {"write_disposition": "append"},
            "resources": resources,
        }
    )
    where = tempfile.mkdtemp(dir=setup.tmp)
    pipeline = dlt.pipeline(
        pipeline_name="bsg_bench",
        pipelines_dir=str(Path(where) / "pipelines"),
        destination=dlt.destinations.filesystem(bucket_url=Path(where, "out").as_uri()),
        dataset_name="bench",
    )
    pipeline.run(source, loader_file_format="jsonl")
    return pipeline.last_trace.last_normalize_info.row_counts.get(setup.resource, 0)


def http_provider_records(setup: Setup, out: Path) -> int:
    """The http provider's HttpHook, paging by hand, one JSON line per record."""
    from airflow.providers.http.hooks.http import HttpHook

    login_hook = HttpHook(method="POST", http_conn_id="http_bench")
    token = login_hook.run("api/auth/login", json={"api_key": API_KEY}).json()["bearer"]
    headers = {"Authorization": f"Bearer {token}"}
    hook = HttpHook(method="GET", http_conn_id="http_bench")
    count = 0
    with open(out, "w", encoding="utf-8") as fh:
        for api_from, api_to, keep_from, keep_to in setup.windows:
            offset = 0
            while True:
                body = hook.run(
                    setup.path, data=setup.params(api_from, api_to, offset), headers=headers
                ).json()
                for record in body["data"]:
                    if keep_from <= record["created_at"] < keep_to:
                        fh.write(json.dumps(record) + "\n")
                        count += 1
                offset += len(body["data"])
                if not body["data"] or offset >= body["meta"]["page"]["total"]:
                    break
    return count


def contenders(setup: Setup, include_gzip_loops: bool) -> dict[str, Callable[[], int]]:
    out = setup.tmp
    table: dict[str, Callable[[], int]] = {
        "loop": lambda: json_lines(sequential_pages(setup), out / "loop.jsonl"),
        "loop csv": lambda: csv_rows(setup, sequential_pages(setup), out / "loop.csv"),
    }
    if include_gzip_loops:
        table["loop jsonl.gz"] = lambda: json_lines(sequential_pages(setup), out / "loop.jsonl.gz", gz=True)
        table["loop csv.gz"] = lambda: csv_rows(setup, sequential_pages(setup), out / "loop.csv.gz", gz=True)
    table[f"loop, {setup.concurrency} in flight"] = lambda: json_lines(
        parallel_pages(setup), out / "par.jsonl"
    )
    table["hook"] = lambda: hook_records(setup)
    for suffix in ("jsonl", "csv", "jsonl.gz", "csv.gz"):
        table[f"operator {suffix}"] = lambda suffix=suffix: operator_records(setup, suffix)
    try:
        import dlt  # noqa: F401

        table["dlt rest_api"] = lambda: dlt_records(setup)
    except ImportError:
        print("dlt is not installed: skipped (make bench installs it)")
    try:
        from airflow.providers.http.hooks.http import HttpHook  # noqa: F401

        table["http provider"] = lambda: http_provider_records(setup, out / "http.jsonl")
    except ImportError:
        print("apache-airflow-providers-http is not installed: skipped (make bench installs it)")
    return table


# -- running and printing --------------------------------------------------------------------------


def simulator_args(args: argparse.Namespace, records: int, latency: float, now: datetime) -> list[str]:
    extra = ["--now", now.isoformat(), "--latency-ms", str(latency)]
    if args.jitter_ms:
        extra += ["--latency-jitter-ms", str(args.jitter_ms)]
    if args.resource == "campaigns":
        campaigns = max(1, round(records / SMS_SHARE))
        return [str(campaigns), "--period-days", str(args.days), *extra]
    per_campaign = args.messages_per_campaign
    campaigns = max(1, records // per_campaign)
    return [
        str(campaigns),
        "--period-days",
        str(args.days),
        "--messages-per-campaign",
        str(per_campaign),
        *extra,
    ]


def measure(
    args: argparse.Namespace, latency: float, records: int
) -> tuple[dict[str, float], dict[str, int], dict[str, str]]:
    """Median records/s of every contender at one latency."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    campaigns, *sim_args = simulator_args(args, records, latency, now)
    with running_simulator(int(campaigns), *sim_args) as url, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(connection_env("bsg_bench", url))
        host, port = url.removeprefix("http://").split(":")
        os.environ["AIRFLOW_CONN_HTTP_BENCH"] = json.dumps(
            {"conn_type": "http", "host": host, "port": int(port), "schema": "http", "extra": {"timeout": 60}}
        )
        os.environ["AIRFLOW_CONN_BSG_PII_KEY"] = json.dumps({"conn_type": "generic", "password": PII_KEY})
        from bsg_provider.client.connection import KNOWN_EXTRAS

        if "max_concurrency" in KNOWN_EXTRAS:
            env = json.loads(os.environ["AIRFLOW_CONN_BSG_BENCH"])
            env["extra"]["max_concurrency"] = args.concurrency
            os.environ["AIRFLOW_CONN_BSG_BENCH"] = json.dumps(env)
        from bsg_provider.extraction.windows import to_api_time
        from bsg_provider.hooks.bsg import BsgHook

        # A day before the simulator's clock: no window reaches the present, so no overlapping pages.
        end = now - timedelta(days=1)
        start = end - timedelta(days=args.days - 2)
        hook = BsgHook("bsg_bench")
        tz = hook.settings.api_timezone
        windows = [
            (*w.api_bounds(tz), to_api_time(w.start, tz), to_api_time(w.end, tz))
            for w in hook.plan(start, end).windows
        ]
        hook.close()
        setup = Setup(args.resource, url, start, end, windows, args.concurrency, Path(tmp))
        table = contenders(setup, include_gzip_loops=latency == 0)
        if args.only:
            table = {k: v for k, v in table.items() if k in args.only or k in ("loop", "loop csv")}
        json_lines(sequential_pages(setup), setup.tmp / "warm.jsonl")  # the simulator's render cache
        rates: dict[str, list[float]] = {name: [] for name in table}
        counts: dict[str, int] = {}
        for run in range(args.runs):
            for name, contender in table.items():
                started = time.perf_counter()
                count = contender()
                seconds = time.perf_counter() - started
                rates[name].append(count / seconds)
                counts[name] = count
                print(
                    f"  {latency:g} ms run {run + 1}: {name:<22} {count:>9,} in {seconds:6.2f} s", flush=True
                )
        return {name: statistics.median(r) for name, r in rates.items()}, counts, setup.used_concurrency


def baseline_of(name: str) -> str:
    for suffix in ("csv.gz", "jsonl.gz", "csv"):
        if name.endswith(suffix) and name.startswith("operator"):
            return "loop " + suffix
    return "loop"


def report(
    args: argparse.Namespace, results: dict[float, tuple[dict[str, float], dict[str, int], dict[str, str]]]
) -> int:
    latencies = sorted(results)
    names = list(dict.fromkeys(name for rates, _, _ in results.values() for name in rates))
    print(
        f"\n{args.resource}: records/s, median of {args.runs} interleaved runs; ratio to the sequential "
        f"loop of the same run (operator csv and .gz rows also against the loop writing that format)"
    )
    head = f"{'contender':<24}" + "".join(
        f"{f'{lat:g} ms':>12} {'ratio':>6} {'same fmt':>8}" for lat in latencies
    )
    print(head + "  concurrency")
    for name in names:
        cells = f"{name:<24}"
        for latency in latencies:
            rates = results[latency][0]
            if name not in rates:
                cells += f"{'-':>12} {'':>6} {'':>8}"
                continue
            same = rates.get(baseline_of(name))
            ratio_same = f"{rates[name] / same:.2f}" if same and baseline_of(name) != "loop" else ""
            cells += f"{rates[name]:>12,.0f} {rates[name] / rates['loop']:>6.2f} {ratio_same:>8}"
        used = {results[lat][2].get(name) for lat in latencies} - {None}
        print(cells + ("  " + ", ".join(sorted(used)) if used else ""))
    print("records per run: " + ", ".join(f"{lat:g} ms: {results[lat][1]['loop']:,}" for lat in latencies))
    return verdicts(args, results)


def verdict(ok: bool, text: str) -> str:
    return f"{'PASS' if ok else 'FAIL'}: {text}"


def verdicts(
    args: argparse.Namespace, results: dict[float, tuple[dict[str, float], dict[str, int], dict[str, str]]]
) -> int:
    lines = []
    if 0 in results:
        rates = results[0][0]
        what = "" if args.resource == "campaigns" else "messages "
        for name, (base, target) in (TARGETS_0MS if not what else TARGETS_MESSAGES).items():
            if name in rates:
                ratio = rates[name] / rates[base]
                text = f"0 ms: {what}{name} {ratio:.2f}x the sequential {base} (>= {target})"
                lines.append(verdict(ratio >= target, text))
    for latency in (lat for lat in results if lat > 0):
        rates, _, used = results[latency]
        parallel = rates.get(f"loop, {args.concurrency} in flight")
        for name in ("operator jsonl", "hook"):
            if name not in rates:
                continue
            speedup = rates[name] / rates["loop"]
            text = f"{latency:g} ms: {name} {speedup:.2f}x the sequential loop (>= {TARGET_SPEEDUP_50MS:g})"
            lines.append(verdict(speedup >= TARGET_SPEEDUP_50MS, f"{text}; concurrency {used.get(name)}"))
            if parallel:
                gap = rates[name] / parallel
                text = f"{latency:g} ms: {name} {gap:.2f}x the loop with {args.concurrency} in flight"
                lines.append(
                    verdict(gap >= 1 - TARGET_PARALLEL_GAP, f"{text} (within {TARGET_PARALLEL_GAP:.0%})")
                )
    print("\n".join(lines))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resource", choices=("campaigns", "messages"), default="campaigns")
    parser.add_argument(
        "--latency-ms", default="0,50", help="comma-separated, one simulator each (default 0,50)"
    )
    parser.add_argument("--jitter-ms", type=float, default=0.0, help="the simulator's --latency-jitter-ms")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="pages in flight, parallel loop and provider (default: the operator's default, else 4)",
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--records",
        type=int,
        default=None,
        help="records at 0 ms (default 100,000)",
    )
    parser.add_argument(
        "--records-at-latency",
        type=int,
        default=None,
        help="records at a latency > 0 (default 100,000: enough pages per window for a steady state)",
    )
    parser.add_argument("--days", type=int, default=200, help="days the data spans")
    parser.add_argument("--messages-per-campaign", type=int, default=100)
    parser.add_argument("--only", nargs="*", help="contenders to run (the sequential loops always run)")
    args = parser.parse_args()
    if args.concurrency is None:
        args.concurrency = default_concurrency()
    records = args.records or 100_000
    at_latency = args.records_at_latency or 100_000
    # The operators' per-window lines would drown the table; dlt logs (and survives) its failed lookups
    # of Airflow Variables for its settings, as there is no Airflow database here.
    logging.disable(logging.CRITICAL)
    os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
    results = {}
    for latency in (float(v) for v in args.latency_ms.split(",")):
        print(f"{args.resource} at {latency:g} ms per request, concurrency {args.concurrency}:", flush=True)
        results[latency] = measure(args, latency, records if latency == 0 else at_latency)
    return report(args, results)


if __name__ == "__main__":
    sys.exit(main())
