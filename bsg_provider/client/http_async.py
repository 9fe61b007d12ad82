"""
The async hook's HTTP client: a fixed set of keep-alive HTTP/1.1 connections per origin, on httpcore.

Hundreds of deferred triggers poll through one of these per event loop. ``httpx.AsyncClient``
costs about 1.5 ms of CPU per request here, most of it in building its request and response
models and in httpcore's pool, which rescans every connection (asking the socket whether it is
readable) several times per request. Each connection here serves one request at a time and waits
in an :class:`asyncio.Queue`, so a request costs one queue hop and one staleness check: about a
third of the CPU. httpcore still does the HTTP (h11) and TLS work.

When the environment sets a proxy for an origin (``HTTPS_PROXY``, ``ALL_PROXY``... and no
``NO_PROXY`` match), its requests go through an ``httpx.AsyncClient`` instead, which honours it.
"""

from __future__ import annotations

import asyncio
import contextlib
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx

#: Seconds an idle connection is kept open, as httpx does.
KEEPALIVE_SECONDS = 5.0


class HttpTimeout(Exception):
    """No answer within the timeout; ``__cause__`` is httpcore's or httpx's error."""


class HttpFailure(Exception):
    """The connection failed (refused, reset, broken mid-answer); ``cause`` is the underlying error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.cause = cause


class Headers(dict[str, str]):
    """An answer's headers, looked up case-insensitively (keys are stored lower-cased)."""

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return dict.get(self, key.lower(), default)


@dataclass(frozen=True)
class Answer:
    """
    One HTTP answer, read in full.

    :param status: the HTTP status.
    :param body: the raw body.
    :param headers: its headers.
    """

    status: int
    body: bytes
    headers: Headers


@dataclass
class _Origin:
    """One scheme, host and port: its idle connections and what every request to it shares."""

    origin: httpcore.Origin
    host_header: bytes
    path_prefix: str
    slots: asyncio.Queue[httpcore.AsyncHTTPConnection] = field(default_factory=asyncio.Queue)
    proxied: bool = False


class AsyncHttp:
    """
    Send requests from one event loop over at most ``max_connections`` connections per origin.

    :param max_connections: connections kept to each origin; requests beyond wait their turn, in order.
    :param default_headers: sent with every request (e.g. ``User-Agent``).
    :param ssl_context: for https origins; None builds one on the first https connection, on the
        event loop (loading the CA certificates takes tens of ms: pass one built elsewhere).
    """

    def __init__(
        self, max_connections: int, default_headers: Mapping[str, str], ssl_context: Any = None
    ) -> None:
        self.max_connections = max_connections
        self._headers = [(k.encode("ascii"), v.encode("ascii")) for k, v in default_headers.items()]
        self._origins: dict[str, _Origin] = {}
        self._open: set[httpcore.AsyncHTTPConnection] = set()
        self._ssl: Any = ssl_context
        self._proxied: httpx.AsyncClient | None = None
        self.is_closed = False

    async def send(
        self,
        method: str,
        base_url: str,
        path: str,
        *,
        params: Mapping[str, str] | None,
        body: bytes | None,
        headers: Mapping[str, str] | None,
        timeout: float,
    ) -> Answer:
        """
        Send ``method base_url+path?params`` and read the whole answer.

        :param method: HTTP method.
        :param base_url: scheme, host, port and an optional path prefix.
        :param path: path below ``base_url``.
        :param params: query parameters, or None.
        :param body: a JSON body, or None.
        :param headers: more headers for this request.
        :param timeout: seconds for the connection, each write and each read.
        :raises HttpTimeout: when the API did not answer in time.
        :raises HttpFailure: when the connection failed.
        """
        if self.is_closed:
            raise RuntimeError("This HTTP client is closed.")
        origin = self._origins.get(base_url) or self._add_origin(base_url)
        target = origin.path_prefix + path
        if params:
            target += "?" + urllib.parse.urlencode(params, quote_via=urllib.parse.quote)
        if origin.proxied:
            url = base_url + target[len(origin.path_prefix) :]
            return await self._send_proxied(method, url, body, headers, timeout)
        request_headers = [(b"Host", origin.host_header), *self._headers]
        if headers:
            request_headers.extend((k.encode("ascii"), v.encode("ascii")) for k, v in headers.items())
        if body is not None:
            request_headers.append((b"Content-Type", b"application/json"))
            request_headers.append((b"Content-Length", str(len(body)).encode("ascii")))
        request = httpcore.Request(
            method.encode("ascii"),
            httpcore.URL(
                scheme=origin.origin.scheme,
                host=origin.origin.host,
                port=origin.origin.port,
                target=target.encode("ascii"),
            ),
            headers=request_headers,
            content=body if body is not None else b"",
            extensions={"timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}},
        )
        connection = await origin.slots.get()
        try:
            if connection.is_closed() or connection.has_expired():
                connection = await self._replace(origin, connection)
            try:
                return await self._exchange(connection, request)
            except httpcore.ConnectionNotAvailable:
                # The server closed it between the check and the request: once more on a new one.
                connection = await self._replace(origin, connection)
                return await self._exchange(connection, request)
        except BaseException:
            # A failed or cancelled exchange leaves the connection in an unknown state.
            connection = await self._replace(origin, connection)
            raise
        finally:
            origin.slots.put_nowait(connection)

    async def _exchange(self, connection: httpcore.AsyncHTTPConnection, request: httpcore.Request) -> Answer:
        try:
            response = await connection.handle_async_request(request)
            try:
                body = await response.aread()
            finally:
                await response.aclose()
        except httpcore.TimeoutException as exc:
            raise HttpTimeout(str(exc)) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise HttpFailure(exc) from None
        return Answer(
            response.status,
            body,
            Headers((k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in response.headers),
        )

    async def _send_proxied(
        self, method: str, url: str, body: bytes | None, headers: Mapping[str, str] | None, timeout: float
    ) -> Answer:
        if self._proxied is None:
            self._proxied = httpx.AsyncClient(
                headers={k.decode(): v.decode() for k, v in self._headers},
                limits=httpx.Limits(
                    max_connections=self.max_connections, max_keepalive_connections=self.max_connections
                ),
            )
        extra = dict(headers or {})
        if body is not None:
            extra["Content-Type"] = "application/json"
        try:
            response = await self._proxied.request(method, url, content=body, headers=extra, timeout=timeout)
        except httpx.TimeoutException as exc:
            raise HttpTimeout(str(exc)) from exc
        except httpx.TransportError as exc:
            raise HttpFailure(exc) from None
        answer_headers = Headers((k.lower(), v) for k, v in response.headers.items())
        return Answer(response.status_code, response.content, answer_headers)

    def _add_origin(self, base_url: str) -> _Origin:
        url = httpx.URL(base_url)
        if url.scheme not in ("http", "https") or not url.host:
            raise HttpFailure(ValueError(f"not an http(s) URL: {base_url}"))
        port = url.port or (443 if url.scheme == "https" else 80)
        origin = _Origin(
            httpcore.Origin(url.scheme.encode("ascii"), url.raw_host, port),
            url.netloc,
            urllib.parse.urlsplit(base_url).path,
            proxied=_proxy_applies(url.scheme, url.host),
        )
        for _ in range(self.max_connections):
            origin.slots.put_nowait(self._connect(origin))
        self._origins[base_url] = origin
        return origin

    def _connect(self, origin: _Origin) -> httpcore.AsyncHTTPConnection:
        if origin.origin.scheme == b"https" and self._ssl is None:
            self._ssl = httpx.create_ssl_context()
        connection = httpcore.AsyncHTTPConnection(
            origin.origin, ssl_context=self._ssl, keepalive_expiry=KEEPALIVE_SECONDS, http1=True, http2=False
        )
        self._open.add(connection)
        return connection

    async def _replace(
        self, origin: _Origin, old: httpcore.AsyncHTTPConnection
    ) -> httpcore.AsyncHTTPConnection:
        new = self._connect(origin)
        self._open.discard(old)
        # A connection that fails to close is gone all the same.
        with contextlib.suppress(Exception):
            await asyncio.shield(old.aclose())
        return new

    async def aclose(self) -> None:
        """Close every connection; further sends fail."""
        self.is_closed = True
        connections, self._open = self._open, set()
        for connection in connections:
            await connection.aclose()
        if self._proxied is not None:
            await self._proxied.aclose()


def _proxy_applies(scheme: str, host: str) -> bool:
    proxies = urllib.request.getproxies()
    if not (proxies.get(scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(host)
