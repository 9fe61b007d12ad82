"""
The async hook, for code that runs on an event loop (the deferrable sensor's trigger).

It shares the pure core with :class:`~bsg_provider.hooks.bsg.BsgHook`: the same requests,
the same answer reading, the same retry policy and the same token renewal rule; only the
HTTP client (httpx) and the waiting (asyncio) differ.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from asgiref.sync import sync_to_async
from tenacity import AsyncRetrying

from bsg_provider import metrics
from bsg_provider.api import (
    USER_AGENT,
    ApiRequest,
    check_campaign_id,
    get_campaign_request,
    is_plain_http,
    login_request,
    parse_campaign,
    parse_token,
    read_answer,
    refresh_request,
)
from bsg_provider.connection import BsgConnectionSettings
from bsg_provider.errors import BsgApiError, BsgAuthError, BsgTransportError
from bsg_provider.hooks.bsg import RequestCounters
from bsg_provider.retry import retry_kwargs
from bsg_provider.throttle import RequestThrottle
from bsg_provider.tokens import needs_renewal, token_expiry

try:
    from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
except ImportError:  # common-compat < 1.21, the newest that installs on Python 3.10

    async def get_async_connection(conn_id: str, hook: type[BaseHook] | None = None) -> Any:
        return await sync_to_async(BaseHook.get_connection)(conn_id)

    async def get_async_extra_dejson(conn: Any) -> dict[str, Any]:
        return conn.extra_dejson


@dataclass
class _LoopPool:
    """One event loop's HTTP client, shared by every hook on that loop, and its users."""

    client: httpx.AsyncClient
    users: int = 0
    # Keyed by connection id: the connection's rate limit holds across all the triggers using it.
    throttles: dict[str, RequestThrottle] = field(default_factory=dict)


# Hundreds of triggers may wait at once in one triggerer: they share one connection pool per loop
# instead of opening one each. Weak keys let a finished loop (asyncio.run) take its entry with it.
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = weakref.WeakKeyDictionary()
_pools_lock = threading.Lock()


def _acquire_pool() -> _LoopPool:
    loop = asyncio.get_running_loop()
    with _pools_lock:
        pool = _pools.get(loop)
        if pool is None or pool.client.is_closed:
            client = httpx.AsyncClient(headers={"User-Agent": USER_AGENT, "Accept": "application/json"})
            pool = _pools[loop] = _LoopPool(client)
        pool.users += 1
        return pool


async def _release_pool(pool: _LoopPool) -> None:
    with _pools_lock:
        pool.users -= 1
        last = pool.users <= 0
        if last and _pools.get(asyncio.get_running_loop()) is pool:
            del _pools[asyncio.get_running_loop()]
    if last:
        await pool.client.aclose()


def shared_client_users() -> int:
    """How many hooks use the running loop's shared HTTP client (0 when it is closed); for tests."""
    with _pools_lock:
        pool = _pools.get(asyncio.get_running_loop())
        return pool.users if pool is not None else 0


class BsgAsyncHook(BaseHook):
    """
    Talk to the BSG One API from an event loop: JWT login and renewal, retries, shared connections.

    Each hook keeps its own token; all hooks on one event loop share one ``httpx.AsyncClient``.
    Call :meth:`close` (or use ``async with``) when done, so the shared client closes with its
    last user.

    :param bsg_conn_id: id of a connection of type ``bsg`` (see :class:`~bsg_provider.hooks.bsg.BsgHook`).
    """

    conn_name_attr = "bsg_conn_id"
    default_conn_name = "bsg_default"
    conn_type = "bsg"
    hook_name = "BSG One API (async)"

    def __init__(self, bsg_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.bsg_conn_id = bsg_conn_id
        self.counters = RequestCounters()
        self._settings: BsgConnectionSettings | None = None
        self._pool: _LoopPool | None = None
        self._token: str | None = None
        self._token_expiry: datetime | None = None

    async def __aenter__(self) -> BsgAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def get_settings(self) -> BsgConnectionSettings:
        """The connection's fields, read without blocking the loop and validated on first use."""
        if self._settings is None:
            conn = await get_async_connection(self.bsg_conn_id, hook=type(self))
            extra = await get_async_extra_dejson(conn)
            settings = BsgConnectionSettings.from_fields(
                self.bsg_conn_id, host=conn.host, password=conn.password, extra=extra
            )
            await _mask(settings.api_key)
            if is_plain_http(settings.base_url):
                self.log.warning(
                    "Connection %r uses plain http (%s): the API key and token travel unencrypted. "
                    "Use https unless this is a local simulator.",
                    self.bsg_conn_id,
                    settings.base_url,
                )
            self._settings = settings
        return self._settings

    async def close(self) -> None:
        """Give back this hook's share of the loop's HTTP client; the last user closes it."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await _release_pool(pool)

    # -- requests -----------------------------------------------------------------------------

    async def call(self, request: ApiRequest) -> Any:
        """
        Send ``request`` with authentication and retries; return the decoded JSON answer.

        :param request: built by one of :mod:`bsg_provider.api`'s ``*_request`` functions.
        :raises BsgApiError: when the API refuses it, or transient failures outlast the retries.
        """
        settings = await self.get_settings()
        retrying = AsyncRetrying(
            **retry_kwargs(
                max_retries=settings.max_retries,
                max_wait=settings.retry_max_wait,
                log=self.log,
                on_retry=self._count_retry,
            )
        )
        try:
            async for attempt in retrying:
                with attempt:
                    return await self._call_once(request)
        finally:
            self.counters.retry_wait_seconds += retrying.statistics.get("idle_for", 0.0)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

    def _count_retry(self, reason: str) -> None:
        self.counters.retries += 1
        metrics.retried(reason)

    async def _call_once(self, request: ApiRequest) -> Any:
        if not request.authenticated:
            return await self._send(request, None)
        token = await self._current_token()
        try:
            return await self._send(request, token)
        except BsgAuthError as exc:
            if exc.status != 401:
                raise
            # Revoked or expired early: one fresh login, then the same request once more.
            self.log.info("BSG One API refused the token (401); logging in again and replaying the request.")
            self._token = None
            return await self._send(request, await self._login())

    async def _send(self, request: ApiRequest, token: str | None) -> Any:
        settings = await self.get_settings()
        if self._pool is None:
            self._pool = _acquire_pool()
        throttle = self._pool.throttles.setdefault(
            self.bsg_conn_id, RequestThrottle(settings.max_requests_per_second)
        )
        pause = throttle.delay()
        if pause > 0:
            self.counters.throttle_wait_seconds += pause
            await asyncio.sleep(pause)
        self.counters.requests += 1
        headers = {"Authorization": f"Bearer {token}"} if token else None
        started = time.monotonic()
        status: int | None = None
        try:
            response = await self._pool.client.request(
                request.method,
                settings.base_url + request.path,
                params=request.params,
                json=request.json,
                headers=headers,
                timeout=settings.timeout,
            )
            status = response.status_code
        except httpx.TimeoutException:
            raise BsgTransportError(
                f"No answer to {request.describe()} from {settings.base_url} within {settings.timeout:g} s "
                "(raise the connection's timeout extra if the API is slow).",
                reason="timeout",
                endpoint=request.endpoint,
            ) from None
        except httpx.TransportError as exc:
            raise BsgTransportError(
                f"Connection to {settings.base_url} failed during {request.describe()}: "
                f"{type(exc).__name__}. Check the connection's host and the network.",
                reason="connection",
                endpoint=request.endpoint,
            ) from None
        finally:
            metrics.request_sent(request.endpoint, status, time.monotonic() - started)
        return read_answer(
            request,
            response.status_code,
            response.content,
            content_type=response.headers.get("Content-Type"),
            retry_after=response.headers.get("Retry-After"),
        )

    # -- auth ---------------------------------------------------------------------------------

    async def _current_token(self) -> str:
        if self._token is None:
            return await self._login()
        if needs_renewal(self._token_expiry, datetime.now(timezone.utc)):
            return await self._refresh()
        return self._token

    async def _login(self) -> str:
        # Sent bare: the caller's retry loop already covers a transient login failure.
        self.counters.logins += 1
        metrics.logged_in()
        settings = await self.get_settings()
        return await self._keep_token(await self._send(login_request(settings.api_key), None))

    async def _refresh(self) -> str:
        self.counters.refreshes += 1
        try:
            return await self._keep_token(await self._send(refresh_request(), self._token))
        except BsgApiError as exc:
            self.log.info(
                "Token refresh failed (%s); logging in again.", exc.status or exc.__class__.__name__
            )
            self._token = None
            return await self._login()

    async def _keep_token(self, payload: Any) -> str:
        token = parse_token(payload)
        await _mask(token)
        self._token = token
        self._token_expiry = token_expiry(token)
        return token

    # -- campaigns ----------------------------------------------------------------------------

    async def get_campaign(self, campaign_id: int | str) -> dict[str, Any]:
        """
        One campaign with all its properties.

        :param campaign_id: the campaign's id.
        :raises BsgNotFoundError: when the API knows no such campaign.
        """
        return parse_campaign(await self.call(get_campaign_request(check_campaign_id(campaign_id))))


async def _mask(secret: str) -> None:
    # mask_secret may talk to the supervisor synchronously; off the loop it cannot deadlock it.
    await sync_to_async(mask_secret)(secret)
