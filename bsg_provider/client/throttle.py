"""A client-side request rate limit (the connection's ``max_requests_per_second``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RequestThrottle:
    """
    Spaces request starts at least ``1 / rate`` seconds apart, across every thread that shares it.

    Each caller reserves its own slot under a lock, so concurrent callers get distinct slots
    ``1 / rate`` apart and the rate holds over all of them.

    :param rate: requests per second, or None for no limit.
    :param clock: a monotonic clock in seconds.
    :param sleep: how to wait.
    """

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start: float | None = None
        self.waited = 0.0
        #: Slots handed out so far, each ``1 / rate`` after the one before.
        self.reservations = 0

    def delay(self) -> float:
        """Reserve the next slot and return how long to wait for it (0 when free)."""
        if not self.interval:
            return 0.0
        with self._lock:
            self.reservations += 1
            now = self._clock()
            start = now if self._next_start is None else max(now, self._next_start)
            self._next_start = start + self.interval
            return start - now

    def wait(self, sleep: Callable[[float], object] | None = None) -> float:
        """
        Block until the next request may start; return the seconds waited.

        :param sleep: how to wait this time (default: the throttle's), e.g. a cancelled
            request's ``threading.Event.wait``, which returns early.
        """
        pause = self.delay()
        if pause > 0:
            with self._lock:
                self.waited += pause
            (sleep or self._sleep)(pause)
        return pause
