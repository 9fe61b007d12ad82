"""
One back-off for every request in flight: a retry's wait (Retry-After or backoff) holds them all.

Concurrent requests to one API share its rate limit, so when one of them is told to wait
(a 429 with Retry-After, or any failure that earns a backoff) the others would only earn
429s of their own by going on. :class:`BackoffGate` keeps a shared "not before" instant:
a retry's wait pushes it forward, and every send first waits until it has passed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class BackoffGate:
    """
    A shared "not before" instant that every request waits for.

    :param clock: a monotonic clock in seconds.
    :param sleep: how to wait; it may return True to stop waiting early (a cancelled request),
        as ``threading.Event.wait`` does.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._not_before = float("-inf")
        #: Sends that found the gate closed by another request's back-off and waited for it.
        self.held = 0
        #: Back-offs that closed the gate.
        self.holds = 0

    @property
    def not_before(self) -> float:
        """The instant (of ``clock``) before which no request is sent."""
        with self._lock:
            return self._not_before

    def hold(self, seconds: float) -> float:
        """
        Close the gate for ``seconds`` from now (never shortening an earlier hold); return its end.

        :param seconds: the retry's wait.
        """
        with self._lock:
            self.holds += 1
            self._not_before = max(self._not_before, self._clock() + max(seconds, 0.0))
            return self._not_before

    def pause(self, seconds: float, sleep: Callable[[float], object] | None = None) -> None:
        """
        A retry's own wait: hold the gate for ``seconds`` and wait until it opens.

        :param seconds: the retry's wait.
        :param sleep: how to wait this time (default: the gate's).
        """
        self.hold(seconds)
        self._wait_open(sleep or self._sleep)

    def wait(self, sleep: Callable[[float], object] | None = None) -> float:
        """
        Block until the gate is open; return how long that took (0 when it was open).

        :param sleep: how to wait this time (default: the gate's); returning True stops early.
        """
        waited = self._wait_open(sleep or self._sleep)
        if waited > 0:
            with self._lock:
                self.held += 1
        return waited

    def _wait_open(self, sleep: Callable[[float], object]) -> float:
        waited = 0.0
        # A hold may be extended while we sleep: look again until the gate is open.
        while True:
            with self._lock:
                pause = self._not_before - self._clock()
            if pause <= 0:
                return waited
            waited += pause
            if sleep(pause) is True:
                return waited
