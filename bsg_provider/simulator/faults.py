"""The fault plan: queued misbehaviours the simulator applies to matching requests.

A fault matches requests to one endpoint (``login``, ``refresh``, ``list``, ``get``,
``stop``, ``messages``, ``detail``, ``other``) or to ``any`` of them. It first lets ``skip`` matching requests
pass, then hits the next ``times`` (None: every) matching requests, then is used up.
Faults apply in the order they were queued: a request is owned by the first fault
that matches it and is not used up, so ``503`` x2 then ``reset`` gives 503, 503, reset.

Kinds: ``status``, ``reset``, ``delay``, ``malformed_json``, ``html``, ``expire_token``,
``insert``, ``delete`` (see :class:`Fault`).

Compact spec (CLI ``--fault``)::

    SPEC     := ENDPOINT ":" ITEM (":" ITEM)*
    ENDPOINT := login | refresh | list | get | stop | messages | detail | other | any
    ITEM     := KIND | KEY "=" VALUE
    KIND     := status | reset | delay | malformed_json | html | expire_token | insert | delete
    KEY      := status | skip | times | retry_after | delay | count | kind

Exactly one kind: a bare KIND, ``kind=KIND``, or implied by ``status=`` (status) or
``delay=`` (delay). ``times=inf`` hits forever. ``retry_after`` takes the rest of the
spec verbatim, so an HTTP date (which holds colons) works when it comes last.
Examples: ``list:status=503:skip=2:times=3``, ``list:reset``, ``any:status=429:retry_after=2``,
``get:delay=5``, ``list:insert:count=3``, ``refresh:expire_token``.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from typing import Any

FAULT_KINDS = ("status", "reset", "delay", "malformed_json", "html", "expire_token", "insert", "delete")
FAULT_ENDPOINTS = ("login", "refresh", "list", "get", "stop", "messages", "detail", "other", "any")
_INT_KEYS = ("status", "skip", "count")


@dataclass
class Fault:
    """One queued fault.

    :param kind: status (answer ``status`` with a JSON message and optional Retry-After),
        reset (close the connection without answering), delay (sleep ``delay`` seconds, then
        answer), malformed_json (200 with truncated JSON), html (200 with an HTML page),
        expire_token (revoke all tokens issued so far, then answer), insert/delete (add or
        remove ``count`` campaigns in the request's filter window, then answer; on the
        ``messages`` endpoint, ``count`` messages).
    :param endpoint: which requests it matches, or ``any``.
    :param skip: matching requests to let pass first.
    :param times: matching requests to hit, None for all.
    :param status: HTTP status for ``status`` (default 503).
    :param retry_after: Retry-After header value, sent verbatim.
    :param delay: seconds to wait for ``delay``.
    :param count: campaigns for ``insert``/``delete``.
    """

    kind: str
    endpoint: str = "list"
    skip: int = 0
    times: int | None = 1
    status: int | None = None
    retry_after: str | None = None
    delay: float | None = None
    count: int = 1
    hits: int = field(default=0, compare=False)
    skipped: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if self.endpoint not in FAULT_ENDPOINTS:
            raise ValueError(f"unknown fault endpoint {self.endpoint!r}; expected one of {FAULT_ENDPOINTS}")
        if self.skip < 0 or (self.times is not None and self.times < 1) or self.count < 1:
            raise ValueError("skip must be >= 0, times >= 1 (or None) and count >= 1")
        if self.kind == "status":
            self.status = 503 if self.status is None else int(self.status)
            if not 100 <= self.status <= 599:
                raise ValueError(f"status must be an HTTP status code, got {self.status}")
        if self.kind == "delay":
            if self.delay is None or self.delay < 0:
                raise ValueError("a delay fault needs delay=<seconds> >= 0")
            self.delay = float(self.delay)
        if self.retry_after is not None:
            self.retry_after = str(self.retry_after)

    @property
    def used_up(self) -> bool:
        """Whether it will hit no more requests."""
        return self.times is not None and self.hits >= self.times

    def describe(self) -> dict[str, Any]:
        """The fault as JSON-ready data."""
        return asdict(self)


class FaultPlan:
    """Thread-safe queue of faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> None:
        """Queue a fault behind the others.

        :param fault: the fault.
        """
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> int:
        """Drop every fault; return how many were queued."""
        with self._lock:
            count = len(self._faults)
            self._faults.clear()
            return count

    def pending(self) -> list[Fault]:
        """Faults not used up yet."""
        with self._lock:
            return [fault for fault in self._faults if not fault.used_up]

    def take(self, endpoint: str) -> Fault | None:
        """The fault to apply to a request to ``endpoint``, counting it; None to answer normally.

        :param endpoint: the request's endpoint.
        """
        with self._lock:
            for fault in self._faults:
                if fault.used_up or fault.endpoint not in (endpoint, "any"):
                    continue
                if fault.skipped < fault.skip:
                    fault.skipped += 1
                    return None
                fault.hits += 1
                return fault
            return None


def parse_fault_spec(spec: str) -> Fault:
    """Parse a compact ``--fault`` spec (grammar in the module docstring).

    :param spec: e.g. ``list:status=503:skip=2:times=3``.
    """
    endpoint, _, rest = spec.partition(":")
    if not rest:
        raise ValueError(f"fault spec {spec!r} needs ENDPOINT:KIND, e.g. list:status=503")
    options: dict[str, Any] = {"endpoint": endpoint}
    kind = None
    while rest:
        item, _, tail = rest.partition(":")
        key, has_value, value = item.partition("=")
        if key == "retry_after" and has_value:
            options["retry_after"] = rest[len("retry_after=") :]
            break
        rest = tail
        if not has_value:
            if key not in FAULT_KINDS or kind is not None:
                raise ValueError(f"fault spec {spec!r}: unexpected item {item!r}")
            kind = key
        elif key == "kind":
            kind = value
        elif key in _INT_KEYS:
            options[key] = int(value)
        elif key == "times":
            options[key] = None if value in ("inf", "*", "forever") else int(value)
        elif key == "delay":
            options[key] = float(value)
        else:
            raise ValueError(f"fault spec {spec!r}: unknown key {key!r}")
    if kind is None:
        kind = "status" if "status" in options else "delay" if "delay" in options else None
    if kind is None:
        raise ValueError(f"fault spec {spec!r} names no kind; expected one of {FAULT_KINDS}")
    return Fault(kind=kind, **options)
