"""
The async hook, for code that runs on an event loop (the deferrable sensor's trigger).

The request path of :class:`~bsg_provider.hooks.bsg.BsgHook` on ``httpx.AsyncClient``: tenacity's
``AsyncRetrying`` around an authenticated send, with the same decisions
(:mod:`bsg_provider.client.policy`: what to retry, how long to wait, when to renew the token, when
a request may go) and the same requests and answers (:mod:`bsg_provider.client.api`). Hundreds of
triggers may wait at once in one triggerer: the hooks of one event loop share one HTTP client, and
those of one connection share its token, its rate limit and its back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import httpx
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from asgiref.sync import sync_to_async
from tenacity import AsyncRetrying

from bsg_provider.client.api import (
    USER_AGENT,
    ApiRequest,
    check_campaign_id,
    connection_error,
    get_campaign_request,
    http_request,
    login_request,
    parse_campaign,
    parse_token,
    read_response,
    refresh_request,
    timeout_error,
)
from bsg_provider.client.connection import BsgConnectionSettings, connection_fields, warn_if_plain_http
from bsg_provider.client.counters import RequestCounters
from bsg_provider.client.policy import Pacer, TokenState, retry_kwargs
from bsg_provider.errors import BsgApiError, BsgAuthError
from bsg_provider.hooks import metrics

T = TypeVar("T")

#: Connections one event loop keeps open to the API, however many triggers share them.
MAX_CONNECTIONS = 8
#: Answers longer than this are decoded in a thread, so a big body never stalls the event loop.
DECODE_OFF_LOOP_BYTES = 64 * 1024


@dataclass
class _Connection:
    """One connection on one event loop: the token, its lock and the pacing its hooks share."""

    pacer: Pacer
    tokens: TokenState = field(default_factory=TokenState)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _LoopPool:
    """One event loop's HTTP client, shared by every hook on that loop, and its users."""

    users: int = 0
    client: httpx.AsyncClient | None = None
    client_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Requests beyond the client's connections wait here, in order, not in httpx's pool: its
    # queue rescans every waiting request and connection whenever one frees (with 500 triggers,
    # most of a poll's CPU).
    slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(MAX_CONNECTIONS))
    # Keyed by connection id: the connection's token, rate limit and back-off hold across its triggers.
    connections: dict[str, _Connection] = field(default_factory=dict)

    async def get_client(self) -> httpx.AsyncClient:
        """The loop's client, made on first use."""
        if self.client is None:
            async with self.client_lock:
                if self.client is None:
                    # In a thread: making it reads the environment's proxies and loads the CA bundle.
                    self.client = await asyncio.to_thread(_new_client)
        return self.client


def _new_client() -> httpx.AsyncClient:
    with contextlib.suppress(ImportError):
        # What httpcore's first lock imports (through anyio) on the loop otherwise: tens of ms.
        importlib.import_module("anyio._backends._asyncio")
    return httpx.AsyncClient(
        headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
        limits=httpx.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS),
        # A redirect is reported, never followed (it would turn the login POST into a GET, and
        # carry the token to another host); proxies come from the environment (HTTPS_PROXY...).
        follow_redirects=False,
        trust_env=True,
    )


# Weak keys let a finished loop (asyncio.run) take its entry with it.
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = weakref.WeakKeyDictionary()
_pools_lock = threading.Lock()


def _acquire_pool() -> _LoopPool:
    loop = asyncio.get_running_loop()
    with _pools_lock:
        pool = _pools.get(loop)
        if pool is None:
            pool = _pools[loop] = _LoopPool()
        pool.users += 1
        return pool


async def _release_pool(pool: _LoopPool) -> None:
    loop = asyncio.get_running_loop()
    with _pools_lock:
        pool.users -= 1
        last = pool.users <= 0
        if last and _pools.get(loop) is pool:
            del _pools[loop]
    if last and pool.client is not None:
        await pool.client.aclose()


def shared_client_users() -> int:
    """How many hooks use the running loop's shared HTTP client (0 when it is closed); for tests."""
    with _pools_lock:
        pool = _pools.get(asyncio.get_running_loop())
        return pool.users if pool is not None else 0


class BsgAsyncHook(BaseHook):
    """
    Talk to the BSG One API from an event loop: JWT login and renewal, retries, shared connections.

    The hooks of one event loop share one ``httpx.AsyncClient``; those of one connection share
    its token, rate limit and back-off. Call :meth:`close` (or use ``async with``) when done, so
    the shared client closes with its last user.

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

    async def __aenter__(self) -> BsgAsyncHook:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def get_settings(self) -> BsgConnectionSettings:
        """The connection's fields, read without blocking the loop and validated on first use."""
        if self._settings is None:
            # In a worker thread: Airflow registers the connection's secrets with its masker while
            # it looks the connection up, recompiling one regex of every secret of the process (in a
            # long-lived triggerer, 100+ ms), and validation loads the timezone's rules from disk.
            settings = await sync_to_async(self._read_settings, thread_sensitive=False)()
            await _mask(settings.api_key)
            warn_if_plain_http(self.log, self.bsg_conn_id, settings.base_url)
            self._settings = settings
        return self._settings

    def _read_settings(self) -> BsgConnectionSettings:
        return BsgConnectionSettings.from_fields(
            self.bsg_conn_id, **connection_fields(self.get_connection(self.bsg_conn_id))
        )

    async def close(self) -> None:
        """Give back this hook's share of the loop's HTTP client; the last user closes it."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await _release_pool(pool)

    # -- requests (as in BsgHook, awaited) -----------------------------------------------------

    async def call(
        self,
        request: ApiRequest,
        parse: Callable[[Any], T] | None = None,
        *,
        retries: bool = True,
        timeout: float | None = None,
    ) -> T:
        """
        Send ``request`` with authentication and retries; return the decoded JSON answer.

        :param request: built by one of :mod:`bsg_provider.client.api`'s ``*_request`` functions.
        :param parse: reads the answer inside the retry loop, so an answer of the wrong shape is
            retried like a truncated one; its result is returned instead of the raw JSON.
        :param retries: retry transient failures as the connection says; False tries once.
        :param timeout: seconds per request; None for the connection's.
        :raises BsgApiError: when the API refuses it, or transient failures outlast the retries.
        """
        settings = await self.get_settings()
        shared = self._connection(settings)
        timeout = settings.timeout if timeout is None else timeout
        policy = retry_kwargs(
            max_retries=settings.max_retries if retries else 0,
            max_wait=settings.retry_max_wait,
            log=self.log,
            on_retry=self._count_retry,
        )
        async for attempt in AsyncRetrying(**policy, sleep=partial(self._back_off, shared.pacer)):
            with attempt:
                answer = await self._authenticated(shared, request, timeout)
                return parse(answer) if parse is not None else answer
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _authenticated(self, shared: _Connection, request: ApiRequest, timeout: float) -> Any:
        if not request.authenticated:
            return await self._send(shared, request, None, timeout)
        token = shared.tokens.current() or await self._renew(shared, None, timeout)
        try:
            return await self._send(shared, request, token, timeout)
        except BsgAuthError as exc:
            if exc.status != 401:
                raise
        self.log.info("BSG One API refused the token (401); logging in again and replaying the request.")
        return await self._send(shared, request, await self._renew(shared, token, timeout), timeout)

    async def _renew(self, shared: _Connection, refused: str | None, timeout: float) -> str:
        """Renew the connection's token for every hook of this loop, one at a time (see BsgHook._renew)."""
        tokens = shared.tokens
        seen = tokens.renewals
        async with shared.lock:
            token = tokens.reusable(refused)
            if token is not None:
                return token
            current = tokens.begin_renewal(seen, refused)
            try:
                payload = await self._refresh(shared, current, timeout) if current is not None else None
                if payload is None:
                    tokens.token = None  # a login replaces whatever token there was
                    self.counters.add(logins=1)
                    login = login_request((await self.get_settings()).api_key)
                    payload = await self._send(shared, login, None, timeout)
                token = parse_token(payload)
                await _mask(token)
            except BaseException as exc:
                tokens.renewal_failed(exc)
                raise
            tokens.renewed(token)
            return token

    async def _refresh(self, shared: _Connection, token: str, timeout: float) -> Any | None:
        self.counters.add(refreshes=1)
        try:
            return await self._send(shared, refresh_request(), token, timeout)
        except BsgApiError as exc:
            reason = exc.status or exc.__class__.__name__
            self.log.info("Token refresh failed (%s); logging in again.", reason)
            return None

    async def _back_off(self, pacer: Pacer, seconds: float) -> None:
        # A retry's wait holds every request of this connection on this loop, not only this one.
        self.counters.add(retry_wait_seconds=seconds)
        pacer.hold(seconds)
        await _wait_held(pacer)

    def _count_retry(self, reason: str) -> None:
        self.counters.add(retries=1)
        metrics.retried(reason)

    async def _send(self, shared: _Connection, request: ApiRequest, token: str | None, timeout: float) -> Any:
        throttled = shared.pacer.reserve()
        if throttled > 0:
            await asyncio.sleep(throttled)
        await _wait_held(shared.pacer)
        if request.endpoint == "login":
            metrics.logged_in()
        self.counters.add(requests=1, throttle_wait_seconds=throttled)
        base_url = (await self.get_settings()).base_url
        pool = self._ensure_pool()
        client = await pool.get_client()
        started = time.monotonic()
        status: int | None = None
        try:
            async with pool.slots:
                response = await client.request(**http_request(request, base_url, token), timeout=timeout)
            status = response.status_code
        except httpx.TimeoutException:
            raise timeout_error(request, base_url, timeout) from None
        except httpx.TransportError as exc:
            raise connection_error(request, base_url, exc) from None
        finally:
            metrics.request_sent(request.endpoint, status, time.monotonic() - started)
        if len(response.content) > DECODE_OFF_LOOP_BYTES:
            return await asyncio.to_thread(read_response, request, status, response.content, response.headers)
        return read_response(request, status, response.content, response.headers)

    def _ensure_pool(self) -> _LoopPool:
        if self._pool is None:
            self._pool = _acquire_pool()
        return self._pool

    def _connection(self, settings: BsgConnectionSettings) -> _Connection:
        connections = self._ensure_pool().connections
        shared = connections.get(self.bsg_conn_id)
        if shared is None:
            shared = connections[self.bsg_conn_id] = _Connection(Pacer(settings.max_requests_per_second))
        return shared

    @property
    def _token(self) -> str | None:
        """The token this hook would send now (shared with the loop's other hooks of the connection)."""
        pool = self._pool
        shared = pool.connections.get(self.bsg_conn_id) if pool is not None else None
        return shared.tokens.token if shared is not None else None

    # -- campaigns ----------------------------------------------------------------------------

    async def get_campaign(self, campaign_id: int | str, *, retries: bool = True) -> dict[str, Any]:
        """
        One campaign with all its properties.

        :param campaign_id: the campaign's id.
        :param retries: retry transient failures as the connection says; False tries once.
        :raises BsgNotFoundError: when the API knows no such campaign.
        """
        request = get_campaign_request(check_campaign_id(campaign_id))
        return await self.call(request, parse=parse_campaign, retries=retries)


async def _wait_held(pacer: Pacer) -> None:
    # A hold may be extended while we wait: look again until it has passed.
    while (pause := pacer.held_for()) > 0:
        await asyncio.sleep(pause)


async def _mask(secret: str) -> None:
    # mask_secret may talk to the supervisor synchronously; off the loop it cannot deadlock it.
    # Not thread-sensitive: that would queue it behind every other sync_to_async call of the
    # process (connection lookups of other triggers...) on asgiref's one shared thread.
    await sync_to_async(mask_secret, thread_sensitive=False)(secret)
