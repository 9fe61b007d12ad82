"""
The decisions around one request, shared by the sync hook and the async hook: no I/O here.

- Retries: what is retryable (:func:`is_retryable`), how long to wait (:func:`retry_wait_seconds`:
  Retry-After wins, else exponential backoff with full jitter, capped), and tenacity's keyword
  arguments built from them (:func:`retry_kwargs`, for ``Retrying`` and ``AsyncRetrying`` alike).
- The token: when its ``exp`` says to renew it (:func:`token_expiry`, :func:`needs_renewal`) and
  what a renewal shared by many requests decides (:class:`TokenState`).
- Pacing: the client-side rate limit and the shared back-off (:class:`Pacer`), as waits to make;
  the sync hook sleeps them, the async hook awaits them.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import jwt
from tenacity import RetryCallState, retry_if_exception, stop_after_attempt

from bsg_provider.errors import BsgApiError, BsgRetryableError

#: First backoff step, doubled on each attempt (before jitter and the cap).
BACKOFF_BASE_SECONDS = 1.0
#: Renew this long before ``exp`` so a request in flight never carries a token that dies on the way.
RENEW_MARGIN = timedelta(seconds=30)


# -- retries ----------------------------------------------------------------------------------


def is_retryable(exc: BaseException) -> bool:
    """Whether sending the same request again may succeed (408, 429, 5xx, timeouts, dropped connections)."""
    return isinstance(exc, BsgRetryableError)


def retry_wait_seconds(
    exc: BaseException | None,
    attempt: int,
    *,
    max_wait: float,
    rand: Callable[[], float] = random.random,
) -> float:
    """
    Seconds to wait before retry number ``attempt``.

    Retry-After wins when the server sent it; otherwise exponential backoff with full
    jitter, so many clients failing together do not retry together. Both are capped.

    :param exc: the error that ended the attempt.
    :param attempt: 1 for the first retry.
    :param max_wait: upper bound of any wait.
    :param rand: a source of floats in [0, 1).
    """
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        return min(max(retry_after, 0.0), max_wait)
    return rand() * min(max_wait, BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))


def retry_kwargs(
    *, max_retries: int, max_wait: float, log: logging.Logger, on_retry: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """
    Keyword arguments for ``tenacity.Retrying`` / ``AsyncRetrying`` (the caller adds ``sleep``).

    :param max_retries: retries after the first attempt.
    :param max_wait: upper bound of one wait, in seconds.
    :param log: where each retry is announced, at WARNING.
    :param on_retry: called with the reason of each retry (for counters).
    """

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return retry_wait_seconds(exc, state.attempt_number, max_wait=max_wait)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        reason = getattr(exc, "reason", type(exc).__name__)
        wait_s = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "BSG request failed (%s), retry %d of %d in %.2f s: %s",
            reason,
            state.attempt_number,
            max_retries,
            wait_s,
            exc,
        )
        if on_retry is not None:
            on_retry(str(reason))

    return {
        "retry": retry_if_exception(is_retryable),
        "stop": stop_after_attempt(max_retries + 1),
        "wait": wait,
        "before_sleep": before_sleep,
        "reraise": True,
    }


# -- the token --------------------------------------------------------------------------------


def token_expiry(token: str) -> datetime | None:
    """
    The ``exp`` claim of a JWT as an aware UTC datetime, or None when it has none.

    The signature is not checked (PyJWT's unverified decode): the API checks it; we only want
    to know when to renew.

    :param token: a JWT (``header.payload.signature``).
    """
    try:
        exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    if isinstance(exp, bool) or not isinstance(exp, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(exp, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        return None


def needs_renewal(expiry: datetime | None, now: datetime) -> bool:
    """
    Whether a token expiring at ``expiry`` should be renewed before the next request.

    :param expiry: from :func:`token_expiry`; None means unknown, and a 401 will tell.
    :param now: the current time (aware).
    """
    return expiry is not None and now >= expiry - RENEW_MARGIN


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class TokenState:
    """
    A connection's JWT as its users share it: one per sync hook, one per connection and event loop.

    Its users renew it one at a time, under a lock the hook holds; these methods say what to do.

    :param token: the current token, None before the first login (or after a refused one).
    :param expiry: its ``exp`` claim, None when unknown.
    :param now: the current time (aware), for the renewal margin.
    """

    token: str | None = None
    expiry: datetime | None = None
    now: Callable[[], datetime] = field(default=_utcnow, repr=False)
    #: Renewals finished so far, and the error of the last one if it failed: users that waited for
    #: the lock while another's renewal failed take that failure instead of each logging in.
    renewals: int = 0
    failure: BsgApiError | None = field(default=None, repr=False)

    def __repr__(self) -> str:  # the token stays out of reprs and tracebacks
        return f"TokenState(expiry={self.expiry}, renewals={self.renewals})"

    def current(self) -> str | None:
        """The token if it can be sent as it is, else None (read once: another user may renew it)."""
        token, expiry = self.token, self.expiry
        return token if token is not None and not needs_renewal(expiry, self.now()) else None

    def reusable(self, refused: str | None) -> str | None:
        """
        Under the lock: a token another user renewed meanwhile, to use instead of renewing again.

        :param refused: the token the API just refused (401), or None for a renewal before ``exp``.
        """
        if refused is None:
            return self.current()
        # Users refused together log in once: the first one in replaces the token for all.
        return self.token if self.token not in (None, refused) else None

    def begin_renewal(self, seen: int, refused: str | None) -> str | None:
        """
        Under the lock: start a renewal; return the token to refresh, or None to log in.

        :param seen: :attr:`renewals` when this user found the token unusable, before the lock.
        :param refused: the token the API just refused, or None.
        :raises BsgApiError: the failure of a renewal that ran while this user waited: one failed
            login is enough, and the caller's retries (and their shared back-off) decide when to try again.
        """
        if self.renewals != seen and self.failure is not None:
            raise self.failure
        if refused is not None:
            self.token = None
        return self.token

    def renewed(self, token: str) -> None:
        """Under the lock: keep the new token (already masked) for every user."""
        self.token, self.expiry, self.failure = token, token_expiry(token), None
        self.renewals += 1

    def renewal_failed(self, exc: BaseException) -> None:
        """Under the lock: the renewal raised ``exc``; those waiting take an API error as theirs."""
        self.failure = exc if isinstance(exc, BsgApiError) else None
        self.renewals += 1


# -- pacing -----------------------------------------------------------------------------------


class Pacer:
    """
    When the next request may go: the client-side rate limit and the shared back-off, in one place.

    Both are "not before" instants under one lock. The rate limit hands out start slots
    ``1 / rate`` apart, each caller its own, so the rate holds over every thread or task
    sharing the pacer. The back-off holds every request: concurrent requests share the
    API's limit, so when one is told to wait (a 429's Retry-After, or a backoff), the others
    would only earn 429s of their own by going on. Methods return how long to wait; the
    caller sleeps (``time.sleep``, ``threading.Event.wait``, ``asyncio.sleep``).

    :param rate: the connection's ``max_requests_per_second``, or None for no limit.
    :param clock: a monotonic clock in seconds.
    """

    def __init__(self, rate: float | None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.set_rate(rate)
        self._clock = clock
        self._lock = threading.Lock()
        self._next_slot = float("-inf")
        self._not_before = float("-inf")
        #: Rate-limit slots handed out so far.
        self.reservations = 0
        #: Back-offs that held every request.
        self.holds = 0

    def set_rate(self, rate: float | None) -> None:
        """
        Space request starts ``1 / rate`` seconds apart from now on.

        :param rate: requests per second, or None for no limit.
        """
        self.interval = 1.0 / rate if rate else 0.0

    def reserve(self) -> float:
        """Take the next rate-limit slot; return the seconds until it (0 when free or unlimited)."""
        if not self.interval:
            return 0.0
        with self._lock:
            self.reservations += 1
            now = self._clock()
            start = max(now, self._next_slot)
            self._next_slot = start + self.interval
            return start - now

    def hold(self, seconds: float) -> None:
        """
        Hold every request for ``seconds`` from now (never shortening an earlier hold).

        :param seconds: a retry's wait.
        """
        with self._lock:
            self.holds += 1
            self._not_before = max(self._not_before, self._clock() + max(seconds, 0.0))

    def held_for(self) -> float:
        """Seconds until the back-off lets requests go (0 when it does); look again after waiting."""
        with self._lock:
            return max(self._not_before - self._clock(), 0.0)
