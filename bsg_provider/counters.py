"""What a hook has sent so far: read by summaries, progress lines and tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class RequestCounters:
    """
    Requests of one hook (sync or async) and what they cost.

    :param requests: HTTP exchanges attempted.
    :param logins: fresh tokens from the API key.
    :param refreshes: token renewals through the refresh endpoint.
    :param retries: requests sent again after a transient failure.
    :param retry_wait_seconds: time spent waiting between retries.
    :param throttle_wait_seconds: time spent waiting for the client-side rate limit.
    """

    requests: int = 0
    logins: int = 0
    refreshes: int = 0
    retries: int = 0
    retry_wait_seconds: float = 0.0
    throttle_wait_seconds: float = 0.0
