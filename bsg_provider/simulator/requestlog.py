"""The log of API requests the simulator received, free of credentials."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field

ENDPOINTS = ("login", "refresh", "list", "get", "stop", "messages", "detail", "other")
# Query keys that could carry a credential if a client misplaced one.
_SECRET_WORDS = ("key", "token", "bearer", "auth", "password", "secret")
_JWT = re.compile(r"eyJ[\w-]*\.[\w-]+\.[\w-]*")
#: Records kept; a long-running CLI must not grow without bound (counts stay exact).
MAX_RECORDS = 100_000


@dataclass
class RequestRecord:
    """One received request.

    :param method: HTTP method.
    :param path: URL path without the query.
    :param query: query parameters (last value wins), credentials redacted.
    :param endpoint: login, refresh, list, get, stop, messages, detail or other.
    :param status: the status answered; None for a reset connection (or not answered yet).
    :param fault: the kind of fault applied, if any.
    :param received_at: epoch seconds (real time) of arrival.
    :param started: the arrival's number in the log's sequence of arrivals and finishes.
    :param finished: the finish's number in that sequence (taken when the answer is ready, just
        before it is written, or when the connection is reset); None while in flight.
    """

    method: str
    path: str
    query: dict[str, str]
    endpoint: str
    status: int | None = None
    fault: str | None = None
    received_at: float = field(default_factory=time.time)
    started: int = 0
    finished: int | None = None


class RequestLog:
    """Thread-safe, arrival-ordered request log of the latest :data:`MAX_RECORDS` requests.

    :param secret: the API key, redacted wherever it shows up in a query or path.
    """

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._lock = threading.Lock()
        self._records: deque[RequestRecord] = deque(maxlen=MAX_RECORDS)
        self._counts: Counter[str] = Counter()
        self._events = 0
        self._in_flight = 0
        self._max_in_flight = 0

    def open(self, method: str, path: str, query: dict[str, str], endpoint: str) -> RequestRecord:
        """Record a request on arrival; the handler fills in its status later.

        :param method: HTTP method.
        :param path: URL path.
        :param query: parsed query parameters.
        :param endpoint: the endpoint name.
        """
        clean = {
            key: "[redacted]" if self._looks_secret(key, value) else value for key, value in query.items()
        }
        record = RequestRecord(method=method, path=self._scrub(path), query=clean, endpoint=endpoint)
        with self._lock:
            self._events += 1
            record.started = self._events
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
            self._records.append(record)
            self._counts[endpoint] += 1
        return record

    def finish(self, record: RequestRecord) -> None:
        """Mark a request answered (or reset), numbering the event after every earlier one.

        :param record: the record :meth:`open` returned.
        """
        with self._lock:
            if record.finished is None:
                self._in_flight -= 1
            self._events += 1
            record.finished = self._events

    def _looks_secret(self, key: str, value: str) -> bool:
        lowered = key.lower()
        if any(word in lowered for word in _SECRET_WORDS) or _JWT.search(value):
            return True
        return bool(self._secret) and self._secret in value

    def _scrub(self, path: str) -> str:
        path = _JWT.sub("[redacted]", path)
        return path.replace(self._secret, "[redacted]") if self._secret else path

    def snapshot(self) -> list[RequestRecord]:
        """A copy of the records in arrival order."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget all records."""
        with self._lock:
            self._records.clear()
            self._counts.clear()
            self._max_in_flight = self._in_flight

    def max_in_flight(self) -> int:
        """The most requests received and not yet answered at one moment, since the last :meth:`clear`."""
        with self._lock:
            return self._max_in_flight

    def counts(self) -> dict[str, int]:
        """Requests per endpoint, every endpoint present."""
        with self._lock:
            return {name: self._counts.get(name, 0) for name in ENDPOINTS}
