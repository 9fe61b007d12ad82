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
from collections.abc import Callable
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
    auth_headers,
    check_campaign_id,
    connection_error,
    get_campaign_request,
    login_request,
    parse_campaign,
    parse_token,
    read_answer,
    refresh_request,
    timeout_error,
)
from bsg_provider.connection import BsgConnectionSettings, connection_fields, warn_if_plain_http
from bsg_provider.errors import BsgApiError, BsgAuthError
from bsg_provider.hooks.base import BsgBaseHook
from bsg_provider.throttle import RequestThrottle
from bsg_provider.tokens import needs_renewal, token_expiry

try:
    from airflow.providers.common.compat.connection import get_async_connection
except ImportError:  # common-compat < 1.21, the newest that installs on Python 3.10

    async def get_async_connection(conn_id: str, hook: type[BaseHook] | None = None) -> Any:
        return await sync_to_async(BaseHook.get_connection)(conn_id)


#: Connections one event loop keeps open to the API, however many triggers share them.
MAX_CONNECTIONS = 8


@dataclass
class _SharedToken:
    """One connection's JWT on one event loop, shared by all its hooks so hundreds of triggers log in once."""

    token: str | None = None
    expiry: datetime | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _LoopPool:
    """One event loop's HTTP client, shared by every hook on that loop, and its users."""

    client: httpx.AsyncClient
    users: int = 0
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CONNECTIONS))
    # Keyed by connection id: the connection's rate limit holds across all the triggers using it.
    throttles: dict[str, RequestThrottle] = field(default_factory=dict)
    # Keyed by connection id; every token is also registered once with the secrets masker.
    tokens: dict[str, _SharedToken] = field(default_factory=dict)


# Hundreds of triggers may wait at once in one triggerer: they share one connection pool per loop
# instead of opening one each. Weak keys let a finished loop (asyncio.run) take its entry with it.
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = weakref.WeakKeyDictionary()
_pools_lock = threading.Lock()


def _acquire_pool() -> _LoopPool:
    loop = asyncio.get_running_loop()
    with _pools_lock:
        pool = _pools.get(loop)
        if pool is None or pool.client.is_closed:
            client = httpx.AsyncClient(
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                limits=httpx.Limits(
                    max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS
                ),
            )
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


class BsgAsyncHook(BsgBaseHook):
    """
    Talk to the BSG One API from an event loop: JWT login and renewal, retries, shared connections.

    The hooks of one connection on one event loop share its token and one ``httpx.AsyncClient``.
    Call :meth:`close` (or use ``async with``) when done, so the shared client closes with its
    last user.

    :param bsg_conn_id: id of a connection of type ``bsg`` (see :class:`~bsg_provider.hooks.bsg.BsgHook`).
    """

    hook_name = "BSG One API (async)"

    def __init__(self, bsg_conn_id: str = BsgBaseHook.default_conn_name) -> None:
        super().__init__(bsg_conn_id)
        self._settings: BsgConnectionSettings | None = None
        self._pool: _LoopPool | None = None

    async def __aenter__(self) -> BsgAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def get_settings(self) -> BsgConnectionSettings:
        """The connection's fields, read without blocking the loop and validated on first use."""
        if self._settings is None:
            settings = BsgConnectionSettings.from_fields(
                self.bsg_conn_id,
                **connection_fields(await get_async_connection(self.bsg_conn_id, hook=type(self))),
            )
            await _mask(settings.api_key)
            warn_if_plain_http(self.log, self.bsg_conn_id, settings.base_url)
            self._settings = settings
        return self._settings

    async def close(self) -> None:
        """Give back this hook's share of the loop's HTTP client; the last user closes it."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await _release_pool(pool)

    # -- requests -----------------------------------------------------------------------------

    async def call(self, request: ApiRequest, parse: Callable[[Any], Any] | None = None) -> Any:
        """
        Send ``request`` with authentication and retries; return the decoded JSON answer.

        :param request: built by one of :mod:`bsg_provider.api`'s ``*_request`` functions.
        :param parse: reads the answer inside the retry loop, so an answer of the wrong shape is
            retried like a truncated one; its result is returned instead of the raw JSON.
        :raises BsgApiError: when the API refuses it, or transient failures outlast the retries.
        """
        settings = await self.get_settings()
        retrying = AsyncRetrying(**self._retry_policy(settings))
        try:
            async for attempt in retrying:
                with attempt:
                    answer = await self._call_once(request)
                    return parse(answer) if parse is not None else answer
        finally:
            self.counters.retry_wait_seconds += retrying.statistics.get("idle_for", 0.0)
        raise AssertionError("unreachable: tenacity reraises the last error")  # pragma: no cover

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
            shared = self._shared_token()
            async with shared.lock:
                # Hooks refused together log in once: the first one in replaces the token for all.
                renewed = shared.token if shared.token not in (None, token) else await self._login(shared)
            return await self._send(request, renewed)

    async def _send(self, request: ApiRequest, token: str | None) -> Any:
        settings = await self.get_settings()
        pool = self._ensure_pool()
        throttle = pool.throttles.get(self.bsg_conn_id)
        if throttle is None:
            throttle = pool.throttles[self.bsg_conn_id] = RequestThrottle(settings.max_requests_per_second)
        pause = throttle.delay()
        if pause > 0:
            self.counters.throttle_wait_seconds += pause
            await asyncio.sleep(pause)
        self.counters.requests += 1
        headers = auth_headers(token) if token else None
        started = time.monotonic()
        status: int | None = None
        try:
            # Waiting here is O(1); httpcore's own queue rescans every waiting request per release.
            async with pool.slots:
                response = await pool.client.request(
                    request.method,
                    settings.base_url + request.path,
                    params=request.params,
                    json=request.json,
                    headers=headers,
                    timeout=settings.timeout,
                )
            status = response.status_code
        except httpx.TimeoutException:
            raise timeout_error(request, settings.base_url, settings.timeout) from None
        except httpx.TransportError as exc:
            raise connection_error(request, settings.base_url, exc) from None
        finally:
            metrics.request_sent(request.endpoint, status, time.monotonic() - started)
        return read_answer(
            request,
            response.status_code,
            response.content,
            content_type=response.headers.get("Content-Type"),
            retry_after=response.headers.get("Retry-After"),
            location=response.headers.get("Location"),
        )

    # -- auth ---------------------------------------------------------------------------------

    def _ensure_pool(self) -> _LoopPool:
        if self._pool is None:
            self._pool = _acquire_pool()
        return self._pool

    def _shared_token(self) -> _SharedToken:
        return self._ensure_pool().tokens.setdefault(self.bsg_conn_id, _SharedToken())

    @property
    def _token(self) -> str | None:
        """The token this hook would send now (shared with the loop's other hooks of the connection)."""
        pool = self._pool
        shared = pool.tokens.get(self.bsg_conn_id) if pool is not None else None
        return shared.token if shared is not None else None

    async def _current_token(self) -> str:
        shared = self._shared_token()
        if shared.token is not None and not needs_renewal(shared.expiry, datetime.now(timezone.utc)):
            return shared.token
        async with shared.lock:
            # Another hook may have logged in or refreshed while this one waited for the lock.
            if shared.token is None:
                return await self._login(shared)
            if needs_renewal(shared.expiry, datetime.now(timezone.utc)):
                return await self._refresh(shared)
            return shared.token

    async def _login(self, shared: _SharedToken) -> str:
        # Sent bare: the caller's retry loop already covers a transient login failure.
        self.counters.logins += 1
        metrics.logged_in()
        settings = await self.get_settings()
        return await self._keep_token(shared, await self._send(login_request(settings.api_key), None))

    async def _refresh(self, shared: _SharedToken) -> str:
        self.counters.refreshes += 1
        try:
            return await self._keep_token(shared, await self._send(refresh_request(), shared.token))
        except BsgApiError as exc:
            self.log.info(
                "Token refresh failed (%s); logging in again.", exc.status or exc.__class__.__name__
            )
            shared.token = None
            return await self._login(shared)

    async def _keep_token(self, shared: _SharedToken, payload: Any) -> str:
        token = parse_token(payload)
        await _mask(token)
        shared.token = token
        shared.expiry = token_expiry(token)
        return token

    # -- campaigns ----------------------------------------------------------------------------

    async def get_campaign(self, campaign_id: int | str) -> dict[str, Any]:
        """
        One campaign with all its properties.

        :param campaign_id: the campaign's id.
        :raises BsgNotFoundError: when the API knows no such campaign.
        """
        return await self.call(get_campaign_request(check_campaign_id(campaign_id)), parse=parse_campaign)


async def _mask(secret: str) -> None:
    # mask_secret may talk to the supervisor synchronously; off the loop it cannot deadlock it.
    await sync_to_async(mask_secret)(secret)
