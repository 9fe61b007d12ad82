"""
The async hook, for code that runs on an event loop (the deferrable sensor's trigger).

It drives the same call flow as :class:`~bsg_provider.hooks.bsg.BsgHook`
(:mod:`bsg_provider.client.call_flow`): the same requests, answer reading, retries and token renewal;
only the HTTP client (:mod:`bsg_provider.client.http_async`, on httpcore), the waiting (asyncio) and
the token's sharing differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
from airflow.providers.common.compat.sdk import mask_secret
from asgiref.sync import sync_to_async

from bsg_provider.client import call_flow as steps
from bsg_provider.client.api import (
    USER_AGENT,
    ApiRequest,
    auth_headers,
    check_campaign_id,
    connection_error,
    timeout_error,
)
from bsg_provider.client.call_flow import Flow, FlowRunner
from bsg_provider.client.connection import BsgConnectionSettings, connection_fields, warn_if_plain_http
from bsg_provider.client.http_async import AsyncHttp, HttpFailure, HttpTimeout
from bsg_provider.client.throttle import RequestThrottle
from bsg_provider.errors import BsgApiError
from bsg_provider.hooks import metrics
from bsg_provider.hooks.base import BsgBaseHook

T = TypeVar("T")

#: Connections one event loop keeps open to the API, however many triggers share them.
MAX_CONNECTIONS = 8
#: Answers longer than this are decoded in a worker thread: JSON of a few hundred kB takes
#: milliseconds, which the event loop of a triggerer shared by hundreds of triggers cannot spare.
LARGE_ANSWER_BYTES = 64 * 1024


@dataclass
class _SharedToken(steps.TokenState):
    """One connection's JWT on one event loop, shared by all its hooks so hundreds of triggers log in once."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _LoopPool:
    """One event loop's HTTP client, shared by every hook on that loop, and its users."""

    client: AsyncHttp
    users: int = 0
    # Keyed by connection id: the connection's rate limit holds across all the triggers using it.
    throttles: dict[str, RequestThrottle] = field(default_factory=dict)
    # Keyed by connection id; every token is also registered once with the secrets masker.
    tokens: dict[str, _SharedToken] = field(default_factory=dict)


# Hundreds of triggers may wait at once in one triggerer: they share one connection pool per loop
# instead of opening one each. Weak keys let a finished loop (asyncio.run) take its entry with it.
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopPool] = weakref.WeakKeyDictionary()
_pools_lock = threading.Lock()


async def _acquire_pool() -> _LoopPool:
    loop = asyncio.get_running_loop()
    with _pools_lock:
        pool = _pools.get(loop)
        if pool is not None and not pool.client.is_closed:
            pool.users += 1
            return pool
    client: AsyncHttp | None = await asyncio.to_thread(_new_client)
    with _pools_lock:
        pool = _pools.get(loop)
        if pool is None or pool.client.is_closed:
            pool = _pools[loop] = _LoopPool(client)
            client = None
        pool.users += 1
    if client is not None:
        # Another hook on this loop built one meanwhile; this one never opened a connection.
        await client.aclose()
    return pool


def _new_client() -> AsyncHttp:
    """
    A new HTTP client, built in a worker thread: loading the CA certificates into an SSL context
    and importing the async backend httpcore loads on its first request take tens of ms each,
    which would block the triggerer's event loop.
    """
    with contextlib.suppress(ImportError):
        # What httpcore's first lock imports (through anyio) on the loop otherwise.
        importlib.import_module("anyio._backends._asyncio")
    return AsyncHttp(
        MAX_CONNECTIONS,
        {"User-Agent": USER_AGENT, "Accept": "application/json"},
        ssl_context=httpx.create_ssl_context(),
    )


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

    The hooks of one connection on one event loop share its token and one HTTP client
    (:class:`~bsg_provider.client.http_async.AsyncHttp`).
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

    # -- requests -----------------------------------------------------------------------------

    async def call(self, request: ApiRequest, parse: Callable[[Any], T] | None = None) -> T:
        """
        Send ``request`` with authentication and retries; return the decoded JSON answer.

        :param request: built by one of :mod:`bsg_provider.client.api`'s ``*_request`` functions.
        :param parse: reads the answer inside the retry loop, so an answer of the wrong shape is
            retried like a truncated one; its result is returned instead of the raw JSON.
        :raises BsgApiError: when the API refuses it, or transient failures outlast the retries.
        """
        settings = await self.get_settings()
        await self._ensure_pool()
        return await self.run(self._call_flow(settings, self._shared_token(), request, parse))

    async def run(self, flow: Flow[T]) -> T:
        """
        Drive a flow of :mod:`bsg_provider.client.call_flow` steps on this loop's shared client;
        return its value.

        :param flow: e.g. from :meth:`campaign_reader`, or a poll of :mod:`bsg_provider.client.statuses`.
        :raises BsgApiError: when the flow gives up.
        """
        runner = FlowRunner(flow)
        try:
            while not runner.done:
                runner.advance(*await self._perform(runner.step))
            return runner.value
        finally:
            runner.close()

    async def _perform(self, step: steps.Step | None) -> tuple[Any, BsgApiError | None]:
        try:
            if isinstance(step, steps.Send):
                return await self._send(step), None
            if isinstance(step, steps.Sleep):
                await asyncio.sleep(step.seconds)
            elif isinstance(step, steps.Mask):
                await _mask(step.secret)
            elif isinstance(step, steps.Exclusive):
                await self._ensure_pool()
                async with self._shared_token().lock:
                    return await self.run(step.flow), None
            return None, None
        except BsgApiError as exc:
            return None, exc

    async def _send(self, step: steps.Send) -> Any:
        request, settings = step.request, await self.get_settings()
        if request.endpoint == "login":
            metrics.logged_in()
        pool = await self._ensure_pool()
        throttle = pool.throttles.get(self.bsg_conn_id)
        if throttle is None:
            throttle = pool.throttles[self.bsg_conn_id] = RequestThrottle(settings.max_requests_per_second)
        pause = throttle.delay()
        if pause > 0:
            self.counters.add(throttle_wait_seconds=pause)
            await asyncio.sleep(pause)
        self.counters.add(requests=1)
        started = time.monotonic()
        status: int | None = None
        try:
            answer = await pool.client.send(
                request.method,
                settings.base_url,
                request.path,
                params=request.params,
                body=_encode_json(request.json) if request.json is not None else None,
                headers=auth_headers(step.token) if step.token else None,
                timeout=step.timeout,
            )
            status = answer.status
        except HttpTimeout:
            raise timeout_error(request, settings.base_url, step.timeout) from None
        except HttpFailure as exc:
            raise connection_error(request, settings.base_url, exc.cause) from None
        finally:
            metrics.request_sent(request.endpoint, status, time.monotonic() - started)
        if len(answer.body) > LARGE_ANSWER_BYTES:
            return await asyncio.to_thread(
                steps.read_response, request, answer.status, answer.body, answer.headers
            )
        return steps.read_response(request, answer.status, answer.body, answer.headers)

    async def _ensure_pool(self) -> _LoopPool:
        if self._pool is None:
            self._pool = await _acquire_pool()
        return self._pool

    def _shared_token(self) -> _SharedToken:
        # Callers await _ensure_pool() first.
        if self._pool is None:
            raise RuntimeError("BsgAsyncHook: the HTTP client is not set up yet.")
        return self._pool.tokens.setdefault(self.bsg_conn_id, _SharedToken())

    @property
    def _token(self) -> str | None:
        """The token this hook would send now (shared with the loop's other hooks of the connection)."""
        pool = self._pool
        shared = pool.tokens.get(self.bsg_conn_id) if pool is not None else None
        return shared.token if shared is not None else None

    # -- campaigns ----------------------------------------------------------------------------

    async def get_campaign(self, campaign_id: int | str) -> dict[str, Any]:
        """
        One campaign with all its properties.

        :param campaign_id: the campaign's id.
        :raises BsgNotFoundError: when the API knows no such campaign.
        """
        check_campaign_id(campaign_id)
        return await self.run((await self.campaign_reader())(campaign_id))

    async def campaign_reader(self) -> Callable[[int | str, bool], Flow[dict[str, Any]]]:
        """
        Load the connection, then give ``read(campaign_id, retries)``: the steps of reading a campaign.

        The steps are for :meth:`run`; ``retries`` says whether to retry transient failures.
        """
        settings = await self.get_settings()
        await self._ensure_pool()
        return functools.partial(self._campaign_flow, settings, self._shared_token())


def _encode_json(body: Any) -> bytes:
    # json, not msgspec: the login body holds the key as a Redacted str subclass.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


async def _mask(secret: str) -> None:
    # mask_secret may talk to the supervisor synchronously; off the loop it cannot deadlock it.
    # Not thread-sensitive: that would queue it behind every other sync_to_async call of the
    # process (connection lookups of other triggers...) on asgiref's one shared thread.
    await sync_to_async(mask_secret, thread_sensitive=False)(secret)
