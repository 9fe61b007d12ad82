"""The HTTP server and :class:`BsgSimulator`, the in-process entry point."""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from .auth import TokenAuthority
from .control import handle_control
from .dataset import Dataset
from .endpoints import HTML_PAGE, MALFORMED_JSON, Response, VendorApi, fault_status, message, route
from .faults import Fault, FaultPlan
from .latency import Latency
from .message_api import MessageApi, MessagesGroundTruth
from .messages import MessageStore
from .readings import Readings, parse_formats
from .requestlog import ENDPOINTS, RequestLog, RequestRecord
from .timeutil import US, SimClock, floor_epoch, floor_us, require_aware, us_to_datetime

_MAX_BODY = 1 << 20
_RESET = Response(0, b"")
_LENGTH = re.compile(r"\A[0-9]{1,18}\Z")
_CHUNK_SIZE = re.compile(rb"\A([0-9A-Fa-f]{1,8})(;[^\r\n]*)?\r?\n\Z")


class _MalformedBody(Exception):
    """The request body's framing is broken: answer 400 and close (the stream is out of sync)."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "BsgOneSimulator/1.0"
    sys_version = ""
    # Headers and body go out in one write; without this, delayed ACKs stall keep-alive requests.
    disable_nagle_algorithm = True
    timeout = 300
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        # Silent on purpose: the base class would resolve client names and print to stderr.
        return

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler looks up do_<METHOD>: every method gets routed, and a method a
        # path does not define is a JSON 405 with Allow rather than the base class's HTML 501.
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def send_error(self, code: int, message_text: str | None = None, explain: str | None = None) -> None:
        """The base class's error answers (bad request line, header too long...), as JSON.

        :param code: HTTP status.
        :param message_text: short reason.
        :param explain: longer explanation (not sent).
        """
        self.close_connection = True
        reason = message_text or self.responses.get(code, ("Error",))[0]
        self._send(message(code, reason))

    def _read_body(self) -> bytes | None:
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            raw = (self.headers.get("Content-Length") or "0").strip()
            length = int(raw) if _LENGTH.match(raw) else -1
            if not 0 <= length <= _MAX_BODY:
                raise _MalformedBody("Bad Content-Length")
            body = self.rfile.read(length) if length else b""
            if len(body) != length:
                raise _MalformedBody("The body ended before its Content-Length")
            return body
        except _MalformedBody as exc:
            self.close_connection = True
            self._send(message(400, str(exc)))
            return None

    def _read_chunked(self) -> bytes:
        chunks = []
        total = 0
        while True:
            match = _CHUNK_SIZE.match(self.rfile.readline(1024))
            if match is None:
                raise _MalformedBody("Malformed chunked body: a chunk size is not a hexadecimal number")
            size = int(match.group(1), 16)
            if size == 0:
                for _ in range(100):  # trailer fields, up to the empty line
                    if not self.rfile.readline(1024).strip():
                        return b"".join(chunks)
                raise _MalformedBody("Malformed chunked body: too many trailer lines")
            total += size
            if total > _MAX_BODY:
                raise _MalformedBody("Chunked body too large")
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(1024).strip():
                raise _MalformedBody("Malformed chunked body: a chunk is shorter or longer than its size")
            chunks.append(chunk)

    def _dispatch(self) -> None:
        sim = self.server.sim
        split = urlsplit(self.path)
        path = split.path
        params = dict(parse_qsl(split.query, keep_blank_values=True))
        body = self._read_body()
        if body is None:
            return
        if path == "/_simulator" or path.startswith("/_simulator/"):
            try:
                control = handle_control(sim, self.command, path, params, body)
            except Exception:  # as below: a simulator bug answers 500 and the server keeps serving
                traceback.print_exc(file=sys.stderr)
                control = message(500, "Server Error")
            self._send(control)
            return
        endpoint, arg = route(self.command, path)
        # A fault is chosen on arrival, together with the log entry, so "the n-th request" a fault
        # skips to is the n-th in the log's arrival order even when requests arrive concurrently.
        with sim._arrival_lock:
            record = sim.log.open(self.command, path, params, endpoint)
            fault = sim.faults.take(endpoint)
        # The simulated network round trip; waiting on the stop event keeps shutdown prompt.
        delay = sim.latency.next_delay()
        if delay and sim._stopping.wait(delay):
            sim.log.finish(record)
            self._reset()
            return
        try:
            response = None
            if fault is not None:
                record.fault = fault.kind
                response = self._apply_fault(fault, endpoint, params)
            if response is _RESET:
                sim.log.finish(record)
                self._reset()
                return
            if response is None:
                response = sim.api.handle(
                    endpoint, arg, params, self.headers.get("Authorization"), body, path
                )
        except Exception:  # a simulator bug must answer 500, not drop the connection
            traceback.print_exc(file=sys.stderr)
            response = message(500, "Server Error")
        record.status = response.status
        # Finished before the answer is written, so a client that has it sees the record finished.
        sim.log.finish(record)
        self._send(response)

    def _apply_fault(self, fault: Fault, endpoint: str, params: dict[str, str]) -> Response | None:
        sim = self.server.sim
        kind = fault.kind
        if kind == "status":
            assert fault.status is not None
            return fault_status(fault.status, fault.retry_after)
        if kind == "reset":
            return _RESET
        if kind == "delay":
            # Waiting on the stop event keeps shutdown prompt even mid-delay.
            return _RESET if sim._stopping.wait(fault.delay) else None
        if kind == "malformed_json":
            return Response(200, MALFORMED_JSON)
        if kind == "html":
            return Response(200, HTML_PAGE, "text/html; charset=UTF-8")
        if kind == "expire_token":
            sim.auth.revoke_all()
            return None
        if endpoint == "messages":
            sim.message_api.drift(kind, params, fault.count)
            return None
        message_type, lo, hi = sim.api.drift_window(endpoint, params)
        if kind == "insert":
            sim.dataset.insert_random(message_type, lo, hi, fault.count)
        else:
            sim.dataset.delete_lowest(message_type, lo, hi, fault.count)
        return None

    def _reset(self) -> None:
        # SO_LINGER 0 makes the close send RST instead of a graceful FIN.
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass

    def _send(self, response: Response) -> None:
        reason = self.responses.get(response.status, ("",))[0]  # type: ignore[call-overload]
        lines = [
            f"HTTP/1.1 {response.status} {reason}",
            f"Date: {self.date_time_string()}",
            f"Server: {self.server_version}",
            f"Content-Type: {response.content_type}",
            f"Content-Length: {len(response.body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if self.close_connection:
            lines.append("Connection: close")
        # A HEAD answer has the headers of the body it would have had, and no body.
        body = b"" if getattr(self, "command", None) == "HEAD" else response.body
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connections when hundreds of clients (triggers) start at once.
    request_queue_size = 1024
    block_on_close = False

    def __init__(self, address: tuple[str, int], sim: BsgSimulator) -> None:
        self.sim = sim
        self._connections: dict[threading.Thread, socket.socket] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn) that can take seconds.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve, args=(request, client_address), name="bsg-simulator-conn", daemon=True
        )
        with self._connections_lock:
            self._connections[thread] = request
        thread.start()

    def _serve(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], OSError):
            return  # clients hanging up, and our own resets, are routine here
        super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> None:
        """Unblock every connection thread and wait up to ``timeout`` seconds for them.

        :param timeout: seconds to wait in total.
        """
        with self._connections_lock:
            items = list(self._connections.items())
        for _, sock in items:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for thread, _ in items:
            thread.join(max(0.0, deadline - time.monotonic()))


class BsgSimulator(MessagesGroundTruth):
    """A local BSG One API serving deterministic campaigns and their messages, with fault injection.

    :param campaigns: number of campaigns to generate.
    :param seed: random seed; same seed and ``now`` give the same campaigns.
    :param api_key: the key ``/api/auth/login`` accepts.
    :param timezone: IANA name of the account timezone (filters and timestamps).
    :param token_ttl: token lifetime in seconds (real time).
    :param period_days: campaigns are spread over this many days before ``now``.
    :param status_step_seconds: default seconds per status step of campaigns added later.
    :param timestamp_format: plain (``2024-04-03 12:14:49``), iso (``2024-04-03 12:14:49+02:00``)
        or mixed (per campaign).
    :param host: address to bind.
    :param port: port to bind; 0 picks a free one.
    :param now: aware instant to anchor the simulator's clock at; it then advances in real time.
    :param from_bound: ``inclusive`` or ``exclusive``: whether ``filter[from]`` includes a campaign
        whose filter field equals it.
    :param to_bound: the same for ``filter[to]``.
    :param created_precision: ``second``, or ``subsecond``: timestamps are stored with a millisecond
        fraction (deterministic by seed), rendered truncated in the plain format and with the
        fraction in the iso one; filters compare the full value.
    :param span_rule: the longest span ``to - from``: ``calendar`` (3 calendar months) or ``90d``.
    :param filter_field: ``created_at`` or ``start_at``, the field the filters select on.
    :param filter_formats: accepted filter date formats, ``plain`` (``yyyy-mm-dd hh:mm:ss`` in the
        account timezone) and/or ``iso`` (ISO 8601 with offset); a sequence or ``"plain,iso"``.
    :param page_offset_in_meta: whether list answers carry ``meta.page.offset``.
    :param messages_per_campaign: messages each generated campaign sent (its ``statistics.sent``);
        None keeps the number the seed gives (1 to about 4,000, 1,000 on average). Messages are
        derived on demand, so any number costs nothing until asked for.
    :param latency_ms: milliseconds every API request waits before it is answered.
    :param latency_jitter_ms: up to this many milliseconds more or less per request (deterministic
        by seed, in arrival order).
    """

    def __init__(
        self,
        campaigns: int = 5000,
        seed: int = 42,
        api_key: str = "test_simulator_key",
        timezone: str = "UTC",
        token_ttl: float = 3600,
        period_days: float = 400,
        status_step_seconds: float = 60.0,
        timestamp_format: str = "plain",
        host: str = "127.0.0.1",
        port: int = 0,
        now: datetime | None = None,
        *,
        from_bound: str = "inclusive",
        to_bound: str = "inclusive",
        created_precision: str = "second",
        span_rule: str = "calendar",
        filter_field: str = "created_at",
        filter_formats: Sequence[str] | str = ("plain",),
        page_offset_in_meta: bool = True,
        messages_per_campaign: int | None = None,
        latency_ms: float = 0.0,
        latency_jitter_ms: float = 0.0,
    ) -> None:
        self.readings = Readings(
            from_bound=from_bound,
            to_bound=to_bound,
            created_precision=created_precision,
            span_rule=span_rule,
            filter_field=filter_field,
            filter_formats=parse_formats(filter_formats),
            page_offset_in_meta=page_offset_in_meta,
        )
        if not api_key:
            raise ValueError("api_key must not be empty")
        if status_step_seconds <= 0:
            raise ValueError("status_step_seconds must be positive")
        self.api_key = api_key
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)
        self.status_step_seconds = float(status_step_seconds)
        self.host = host
        self.port = port
        self.clock = SimClock(now)
        self.auth = TokenAuthority(token_ttl)
        self.faults = FaultPlan()
        self.log = RequestLog(api_key)
        self._arrival_lock = threading.Lock()
        self.dataset = Dataset(
            count=campaigns,
            seed=seed,
            anchor=floor_epoch(self.clock.anchor),
            period_days=period_days,
            tz=self.tz,
            timestamp_format=timestamp_format,
            subsecond=self.readings.subsecond,
            messages_per_campaign=messages_per_campaign,
        )
        self.latency = Latency(latency_ms, latency_jitter_ms, seed)
        self.messages = MessageStore(self.dataset, seed, self.readings.subsecond)
        self.message_api = MessageApi(self)
        self.api = VendorApi(self)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> BsgSimulator:
        """Bind and serve in a daemon thread; returns self."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            # A short poll keeps stop() prompt: shutdown() waits for the loop to look again.
            kwargs={"poll_interval": 0.01},
            name="bsg-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, cut open connections and join the threads (about 1 s at most)."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections(timeout=1.0)
        if thread is not None:
            thread.join(1.0)
        self._server = self._thread = None

    def __enter__(self) -> BsgSimulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, without a trailing slash."""
        if self._server is None:
            raise RuntimeError("the simulator is not running; call start() or use it as a context manager")
        return f"http://{self.host}:{self.port}"

    # --- clock ---------------------------------------------------------------------------------

    def now(self) -> datetime:
        """The simulator's current instant (aware UTC)."""
        return self.clock.now()

    def epoch(self) -> float:
        """The simulator's current epoch seconds."""
        return self.clock.epoch()

    # --- request log ---------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """API requests received, in arrival order (a copy); control requests are not logged."""
        return self.log.snapshot()

    def clear_requests(self) -> None:
        """Forget the logged requests."""
        self.log.clear()

    @property
    def max_in_flight(self) -> int:
        """The most API requests received and not yet answered at once, since the log was cleared."""
        return self.log.max_in_flight()

    def count(self, endpoint: str) -> int:
        """Requests received to one endpoint (or ``any``).

        :param endpoint: login, refresh, list, get, stop, other or any.
        """
        counts = self.log.counts()
        if endpoint == "any":
            return sum(counts.values())
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; expected one of {ENDPOINTS} or 'any'")
        return counts[endpoint]

    # --- data ----------------------------------------------------------------------------------

    def ground_truth(
        self, start: datetime, end: datetime, campaign_type: str = "sms"
    ) -> list[dict[str, Any]]:
        """Campaigns with ``start <= created_at < end`` (the stored value, at full precision), sorted
        by id, rendered as of now.

        :param start: aware start, included.
        :param end: aware end, excluded.
        :param campaign_type: the message type.
        """
        now = self.epoch()
        return [self.dataset.to_dict(c, now) for c in self._window(start, end, campaign_type)]

    def ground_truth_ids(self, start: datetime, end: datetime, campaign_type: str = "sms") -> set[int]:
        """Ids of the campaigns whose stored ``created_at`` lies in the half-open ``[start, end)``.

        What an extraction of that interval must return, whatever the readings in force.

        :param start: aware start, included.
        :param end: aware end, excluded.
        :param campaign_type: the message type.
        """
        return {c.id for c in self._window(start, end, campaign_type)}

    def _window(self, start: datetime, end: datetime, campaign_type: str) -> list[Any]:
        # Keys are the stored created_at in microseconds, datetime's own resolution: exact.
        lo = floor_us(require_aware(start, "start"))
        hi = floor_us(require_aware(end, "end"))
        return self.dataset.window(campaign_type, lo, hi)

    def created_at(self, campaign_id: int) -> datetime:
        """A campaign's stored ``created_at`` at full precision (aware UTC); KeyError when unknown.

        With ``created_precision="subsecond"`` it has the millisecond fraction the API renders
        truncated in the plain format.

        :param campaign_id: the id.
        """
        campaign = self.dataset.get(campaign_id)
        if campaign is None:
            raise KeyError(campaign_id)
        return us_to_datetime(campaign.key)

    def config(self) -> dict[str, Any]:
        """The simulator's configuration: timezone, timestamp format and the readings in force."""
        return {
            "timezone": self.timezone,
            "timestamp_format": self.dataset.renderer.timestamp_format,
            **self.readings.describe(),
        }

    def campaign(self, campaign_id: int) -> dict[str, Any] | None:
        """A campaign as the API renders it now, or None.

        :param campaign_id: the id.
        """
        campaign = self.dataset.get(campaign_id)
        return None if campaign is None else self.dataset.to_dict(campaign, self.epoch())

    def add_campaign(
        self,
        created_at: datetime,
        *,
        message_type: str = "sms",
        final_status: str = "done",
        status_step_seconds: float | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """Add a campaign whose status moves from ``creation`` to ``final_status`` in real time.

        :param created_at: aware ``created_at``, floored to the stored precision: the second, or the
            millisecond with ``created_precision="subsecond"``.
        :param message_type: sms, rcs or whatsapp.
        :param final_status: the status it settles in (spam goes creation -> moderation -> spam).
        :param status_step_seconds: seconds per step; the simulator's default when None.
        :param fields: overrides: id, name, sender, status (fixed, no progression), start_at (aware,
            floored alike), statistics ({"sent", "delivered"}), calculated_price, currency,
            alternative_channels.
        :return: the campaign as the API renders it now.
        """
        created = self._stored(require_aware(created_at, "created_at"))
        if isinstance(fields.get("start_at"), datetime):
            fields["start_at"] = self._stored(require_aware(fields["start_at"], "start_at"))
        step = self.status_step_seconds if status_step_seconds is None else float(status_step_seconds)
        now = self.epoch()
        campaign = self.dataset.add(
            created, message_type=message_type, final_status=final_status, step=step, now=now, fields=fields
        )
        return self.dataset.to_dict(campaign, now)

    def _stored(self, instant: datetime) -> int:
        """Epoch microseconds of an instant at the stored precision."""
        micros = floor_us(instant)
        return micros - micros % (1000 if self.readings.subsecond else US)

    def delete_campaign(self, campaign_id: int) -> None:
        """Remove a campaign; KeyError when unknown.

        :param campaign_id: the id.
        """
        self.dataset.delete(campaign_id)

    def set_status(self, campaign_id: int, status: str) -> None:
        """Fix a campaign's status from now on; KeyError when unknown.

        :param campaign_id: the id.
        :param status: one of the vendor's CampaignStatus values.
        """
        self.dataset.set_status(campaign_id, status, self.epoch())

    # --- faults --------------------------------------------------------------------------------

    def inject(
        self,
        kind: str,
        *,
        endpoint: str = "list",
        skip: int = 0,
        times: int | None = 1,
        status: int | None = None,
        retry_after: str | int | None = None,
        delay: float | None = None,
        count: int = 1,
    ) -> Fault:
        """Queue a fault (see :mod:`bsg_provider.simulator.faults`).

        :param kind: status, reset, delay, malformed_json, html, expire_token, insert or delete.
        :param endpoint: login, refresh, list, get, stop, other or any.
        :param skip: matching requests to let pass first.
        :param times: matching requests to hit (None: all).
        :param status: HTTP status of a ``status`` fault (default 503).
        :param retry_after: Retry-After header value, sent verbatim.
        :param delay: seconds a ``delay`` fault waits.
        :param count: campaigns an ``insert``/``delete`` fault adds or removes.
        :return: the queued fault (its ``hits`` counts the requests it hit).
        """
        fault = Fault(
            kind=kind,
            endpoint=endpoint,
            skip=skip,
            times=times,
            status=status,
            retry_after=None if retry_after is None else str(retry_after),
            delay=delay,
            count=count,
        )
        self.faults.add(fault)
        return fault

    def clear_faults(self) -> int:
        """Drop all queued faults; returns how many there were."""
        return self.faults.clear()
