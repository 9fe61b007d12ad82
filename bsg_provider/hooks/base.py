"""What the sync and the async BSG hooks share: connection type, counters, the description of a call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from airflow.providers.common.compat.sdk import BaseHook
from tenacity import Retrying

from bsg_provider.client.api import ApiRequest, check_campaign_id, get_campaign_request, parse_campaign
from bsg_provider.client.call_flow import CallContext, Flow, TokenState, call_flow
from bsg_provider.client.connection import BsgConnectionSettings
from bsg_provider.client.counters import RequestCounters
from bsg_provider.client.retry import retry_kwargs
from bsg_provider.hooks import metrics

T = TypeVar("T")


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

    def _retry_policy(self, settings: BsgConnectionSettings, *, retries: bool = True) -> dict[str, Any]:
        """Keyword arguments for tenacity's ``Retrying``; a single attempt when not ``retries``."""
        return retry_kwargs(
            max_retries=settings.max_retries if retries else 0,
            max_wait=settings.retry_max_wait,
            log=self.log,
            on_retry=self._count_retry,
        )

    def _call_flow(
        self,
        settings: BsgConnectionSettings,
        tokens: TokenState,
        request: ApiRequest,
        parse: Callable[[Any], T] | None = None,
        *,
        retries: bool = True,
        timeout: float | None = None,
    ) -> Flow[T]:
        """The steps of one call (:func:`bsg_provider.client.call_flow.call_flow`), for this hook to drive."""
        ctx = CallContext(
            api_key=settings.api_key,
            tokens=tokens,
            timeout=settings.timeout if timeout is None else timeout,
            counters=self.counters,
            log=self.log,
        )
        return call_flow(request, ctx, Retrying(**self._retry_policy(settings, retries=retries)), parse)

    def _campaign_flow(
        self,
        settings: BsgConnectionSettings,
        tokens: TokenState,
        campaign_id: int | str,
        retries: bool = True,
    ) -> Flow[dict[str, Any]]:
        """The steps of reading one campaign; the id is checked before any request."""
        request = get_campaign_request(check_campaign_id(campaign_id))
        return self._call_flow(settings, tokens, request, parse=parse_campaign, retries=retries)

    def _count_retry(self, reason: str) -> None:
        self.counters.add(retries=1)
        metrics.retried(reason)
