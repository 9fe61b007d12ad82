"""
When to retry a request and how long to wait: one policy for the sync hook and the async trigger.

Both hand these to tenacity (``Retrying`` and ``AsyncRetrying`` take the same arguments).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from tenacity import RetryCallState, retry_if_exception, stop_after_attempt

from bsg_provider.errors import BsgRetryableError

#: First backoff step, doubled on each attempt (before jitter and the cap).
BACKOFF_BASE_SECONDS = 1.0


def is_retryable(exc: BaseException) -> bool:
    """Whether sending the same request again may succeed."""
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
    Keyword arguments for ``tenacity.Retrying`` / ``AsyncRetrying``.

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
