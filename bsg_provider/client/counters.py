"""What a hook has sent so far: read by summaries, progress lines and tests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass
class RequestCounters:
    """
    Requests of one hook (sync or async) and what they cost.

    Safe to update from several threads through :meth:`add` (the sync hook's concurrent paging).

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
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def add(self, **amounts: float) -> None:
        """
        Add to counters atomically, e.g. ``add(requests=1)``.

        :param amounts: counter names and what to add to each.
        """
        with self._lock:
            for name, amount in amounts.items():
                setattr(self, name, getattr(self, name) + amount)
