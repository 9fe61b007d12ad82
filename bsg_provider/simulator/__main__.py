"""Command line: ``python -m bsg_provider.simulator [options]``.

Prints ``BSG One API simulator listening on http://HOST:PORT`` and ``API key: KEY``,
then serves until SIGINT or SIGTERM (exit status 0).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from .dataset import TIMESTAMP_FORMATS
from .faults import FAULT_ENDPOINTS, FAULT_KINDS, parse_fault_spec
from .readings import BOUNDS, FILTER_FIELDS, PRECISIONS, SPAN_RULES, parse_formats
from .server import BsgSimulator
from .timeutil import parse_iso

_FAULT_HELP = f"""\
fault spec: ENDPOINT:ITEM[:ITEM...], ENDPOINT one of {", ".join(FAULT_ENDPOINTS)};
ITEM is a kind ({", ".join(FAULT_KINDS)}) or KEY=VALUE with KEY one of
status, skip, times (an integer or inf), retry_after, delay, count, kind.
status=N implies kind status, delay=S implies kind delay. retry_after takes the rest
of the spec verbatim (so put an HTTP date last). Examples:
  list:status=503:skip=2:times=3   list:reset   any:status=429:retry_after=2
  get:delay=5   list:insert:count=3   list:delete:count=2   refresh:expire_token
Control endpoints (no token): POST/GET/DELETE /_simulator/faults, POST /_simulator/campaigns,
GET /_simulator/stats, GET /_simulator/ground-truth?start=ISO&end=ISO&type=sms, GET /_simulator/now,
GET /_simulator/config, GET /_simulator/campaigns/ID/created-at,
GET /_simulator/messages/ground-truth?start=ISO&end=ISO[&campaign_id=ID],
GET /_simulator/messages/counts?campaign_id=ID, GET /_simulator/messages/total.
"""


def _formats(text: str) -> tuple[str, ...]:
    try:
        return parse_formats(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser."""
    parser = argparse.ArgumentParser(
        prog="python -m bsg_provider.simulator",
        description="Serve a local BSG One API with deterministic campaigns and injectable faults.",
        epilog=_FAULT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8099, help="port; 0 picks a free one (default 8099)")
    parser.add_argument("--campaigns", type=int, default=5000, help="campaigns to generate (default 5000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    parser.add_argument("--api-key", default="test_simulator_key", help="API key that logs in")
    parser.add_argument("--timezone", default="UTC", help="account timezone, IANA name (default UTC)")
    parser.add_argument("--token-ttl", type=float, default=3600, help="token lifetime, s (default 3600)")
    parser.add_argument("--period-days", type=float, default=400, help="days campaigns span (default 400)")
    parser.add_argument(
        "--status-step-seconds",
        type=float,
        default=60.0,
        help="seconds per status step of campaigns added later (default 60)",
    )
    parser.add_argument(
        "--now",
        type=parse_iso,
        default=None,
        metavar="ISO",
        help="start the simulator's clock at this instant, e.g. 2025-06-15T00:00:00+00:00 "
        "(default: the real time); the same --seed and --now give the same campaigns",
    )
    parser.add_argument(
        "--timestamp-format",
        choices=TIMESTAMP_FORMATS,
        default="plain",
        help="timestamp rendering (default plain)",
    )
    readings = parser.add_argument_group(
        "readings of the vendor's rules",
        "where the vendor's documents are silent (defaults: the plain reading)",
    )
    readings.add_argument(
        "--from-bound", choices=BOUNDS, default="inclusive", help="does filter[from] include its own instant"
    )
    readings.add_argument(
        "--to-bound", choices=BOUNDS, default="inclusive", help="does filter[to] include its own instant"
    )
    readings.add_argument(
        "--created-precision",
        choices=PRECISIONS,
        default="second",
        help="subsecond: timestamps carry milliseconds, shown truncated in the plain format (default second)",
    )
    readings.add_argument(
        "--span-rule",
        choices=SPAN_RULES,
        default="calendar",
        help="longest filter span: 3 calendar months or 90 days (default calendar)",
    )
    readings.add_argument(
        "--filter-field",
        choices=FILTER_FIELDS,
        default="created_at",
        help="the timestamp filter[from]/filter[to] select on (default created_at)",
    )
    readings.add_argument(
        "--filter-formats",
        type=_formats,
        default=("plain",),
        metavar="plain,iso",
        help="filter date formats accepted: plain (yyyy-mm-dd hh:mm:ss) and/or iso (ISO 8601 with "
        "offset), comma-separated (default plain)",
    )
    readings.add_argument(
        "--omit-page-offset",
        action="store_true",
        help="leave meta.page.offset out of list answers (the OpenAPI spec allows it)",
    )
    parser.add_argument(
        "--messages-per-campaign",
        type=int,
        default=None,
        metavar="N",
        help="messages each generated campaign sent, its statistics.sent (default: what the seed "
        "gives, 1,000 on average); messages are derived on demand, e.g. --campaigns 2000 "
        "--messages-per-campaign 1000 serves 2,000,000",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="milliseconds every API request waits before it is answered (default 0)",
    )
    parser.add_argument(
        "--latency-jitter-ms",
        type=float,
        default=0.0,
        metavar="MS",
        help="up to this many milliseconds more or less per request, deterministic by seed (default 0)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="queue a fault (repeatable); grammar below",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGINT/SIGTERM.

    :param argv: arguments without the program name; sys.argv when None.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        faults = [parse_fault_spec(spec) for spec in args.fault]
        sim = BsgSimulator(
            campaigns=args.campaigns,
            seed=args.seed,
            api_key=args.api_key,
            timezone=args.timezone,
            token_ttl=args.token_ttl,
            period_days=args.period_days,
            status_step_seconds=args.status_step_seconds,
            timestamp_format=args.timestamp_format,
            host=args.host,
            port=args.port,
            now=args.now,
            from_bound=args.from_bound,
            to_bound=args.to_bound,
            created_precision=args.created_precision,
            span_rule=args.span_rule,
            filter_field=args.filter_field,
            filter_formats=args.filter_formats,
            page_offset_in_meta=not args.omit_page_offset,
            messages_per_campaign=args.messages_per_campaign,
            latency_ms=args.latency_ms,
            latency_jitter_ms=args.latency_jitter_ms,
        )
    except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        parser.error(str(exc))
    for fault in faults:
        sim.faults.add(fault)
    stop = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    sim.start()
    print(f"BSG One API simulator listening on {sim.url}", flush=True)
    print(f"API key: {sim.api_key}", flush=True)
    try:
        while not stop.wait(0.2):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
