"""What the sync and the async BSG hooks share: the connection type, the counters, the retry policy."""

from __future__ import annotations

from typing import Any

from airflow.providers.common.compat.sdk import BaseHook

from bsg_provider import metrics
from bsg_provider.connection import BsgConnectionSettings
from bsg_provider.counters import RequestCounters
from bsg_provider.retry import retry_kwargs


class BsgBaseHook(BaseHook):
    """
    Base of :class:`~bsg_provider.hooks.bsg.BsgHook` and :class:`~bsg_provider.hooks.bsg_async.BsgAsyncHook`.

    :param bsg_conn_id: id of a connection of type ``bsg``.
    """

    conn_name_attr = "bsg_conn_id"
    default_conn_name = "bsg_default"
    conn_type = "bsg"
    hook_name = "BSG One API"

    def __init__(self, bsg_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.bsg_conn_id = bsg_conn_id
        self.counters = RequestCounters()

    def _retry_policy(self, settings: BsgConnectionSettings) -> dict[str, Any]:
        """Keyword arguments for tenacity's ``Retrying`` or ``AsyncRetrying``, from the connection."""
        return retry_kwargs(
            max_retries=settings.max_retries,
            max_wait=settings.retry_max_wait,
            log=self.log,
            on_retry=self._count_retry,
        )

    def _count_retry(self, reason: str) -> None:
        self.counters.retries += 1
        metrics.retried(reason)
