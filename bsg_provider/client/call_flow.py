"""
One call to the BSG One API as a sans-I/O flow: token, renewal, one replay after a 401, retries.

A flow is a generator that yields *steps* (send this request, sleep this long, mask this
secret, run this sub-flow holding the token lock) and is sent back what each step gave: the
decoded JSON answer of a :class:`Send`, or the :class:`~bsg_provider.errors.BsgApiError` it
raised, thrown into the generator. It does no I/O itself, so the sync hook (requests,
``time.sleep``) and the async hook (httpx, ``asyncio.sleep``) drive the very same decisions,
and a fix to authentication or retries lands in both. The retry policy is tenacity's,
advanced one decision at a time.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

from tenacity import DoAttempt, DoSleep, RetryCallState, Retrying

from bsg_provider.client.api import ApiRequest, login_request, parse_token, read_answer, refresh_request
from bsg_provider.client.counters import RequestCounters
from bsg_provider.client.tokens import needs_renewal, token_expiry
from bsg_provider.errors import BsgApiError, BsgAuthError

T = TypeVar("T")


@dataclass(frozen=True)
class Send:
    """
    Send ``request`` and give back its decoded JSON answer (or throw the error it stands for).

    :param request: what to send.
    :param token: the JWT for ``Authorization: Bearer``, None for the login.
    :param timeout: seconds to wait for the connection and for each read.
    """

    request: ApiRequest
    token: str | None
    timeout: float

    def __repr__(self) -> str:  # the token stays out of reprs and tracebacks
        return f"Send({self.request.describe()}, timeout={self.timeout:g})"


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before the next attempt."""

    seconds: float


@dataclass(frozen=True)
class Mask:
    """Register ``secret`` with Airflow's secrets masker before it can reach a log line."""

    secret: str

    def __repr__(self) -> str:
        return "Mask('***')"


@dataclass(frozen=True)
class Exclusive:
    """Run ``flow`` while holding the token's lock, so hooks sharing a token renew it once."""

    flow: Generator[Any, Any, Any]


Step = Send | Sleep | Mask | Exclusive
#: A flow yields steps, is sent their results, and returns its value.
Flow = Generator[Step, Any, T]


@dataclass
class TokenState:
    """
    A connection's JWT and when it expires; one per sync hook, one per connection and event loop.

    :param token: the current token, None before the first login.
    :param expiry: its ``exp`` claim, None when unknown.
    """

    token: str | None = None
    expiry: datetime | None = None
    #: Renewals tried so far, and the error of the last one if it failed: users that waited for
    #: the lock while another's renewal failed take that failure instead of each logging in.
    renewals: int = 0
    failure: BsgApiError | None = None

    def current(self, now: datetime) -> str | None:
        """The token if it can be sent as it is, else None (read once: another user may renew it)."""
        token, expiry = self.token, self.expiry
        return token if token is not None and not needs_renewal(expiry, now) else None

    def usable(self, now: datetime) -> bool:
        """Whether the token can be sent as it is."""
        return self.current(now) is not None


@dataclass(frozen=True)
class CallContext:
    """
    What a call needs besides the request: the connection's key, its token, timeout and bookkeeping.

    :param api_key: the connection's API key.
    :param tokens: the token state to use and renew.
    :param timeout: seconds per request.
    :param counters: incremented for each login, refresh and retry.
    :param log: where renewals and retries are told.
    :param now: the current time (aware), for the renewal margin.
    """

    api_key: str
    tokens: TokenState
    timeout: float
    counters: RequestCounters
    log: logging.Logger
    now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)


def call_flow(
    request: ApiRequest,
    ctx: CallContext,
    retrying: Retrying,
    parse: Callable[[Any], T] | None = None,
) -> Flow[T]:
    """
    Send ``request`` authenticated, retried as ``retrying`` says; return the (parsed) answer.

    :param request: built by one of :mod:`bsg_provider.client.api`'s ``*_request`` functions.
    :param ctx: key, token, timeout and bookkeeping of the hook driving the flow.
    :param retrying: a tenacity policy (:func:`bsg_provider.client.retry.retry_kwargs`); its ``sleep``
        is never called: waits are yielded as :class:`Sleep` steps.
    :param parse: reads the answer inside the attempt, so a wrong shape is retried like a truncated body.
    :raises BsgApiError: when the API refuses the request, or transient failures outlast the retries.
    """
    retrying.begin()
    state = RetryCallState(retrying, fn=None, args=(), kwargs={})
    while True:
        do = retrying.iter(retry_state=state)
        if isinstance(do, DoAttempt):
            try:
                answer = yield from _attempt(request, ctx)
                return parse(answer) if parse is not None else answer
            except Exception:
                state.set_exception(sys.exc_info())  # type: ignore[arg-type]
        elif isinstance(do, DoSleep):
            # tenacity has logged and counted the retry (before_sleep); only the wait is left.
            state.prepare_for_next_attempt()
            ctx.counters.add(retry_wait_seconds=float(do))
            yield Sleep(float(do))
        else:  # pragma: no cover -- with reraise=True tenacity raises the last error instead
            return do


def _attempt(request: ApiRequest, ctx: CallContext) -> Flow[Any]:
    if not request.authenticated:
        return (yield Send(request, None, ctx.timeout))
    token = yield from _current_token(ctx)
    try:
        return (yield Send(request, token, ctx.timeout))
    except BsgAuthError as exc:
        if exc.status != 401:
            raise
    # Revoked or expired early: one fresh login, then the same request once more.
    ctx.log.info("BSG One API refused the token (401); logging in again and replaying the request.")
    renewed = yield Exclusive(_login_unless_renewed(ctx, refused=token, seen=ctx.tokens.renewals))
    return (yield Send(request, renewed, ctx.timeout))


def _current_token(ctx: CallContext) -> Flow[str]:
    token = ctx.tokens.current(ctx.now())
    if token is not None:
        return token
    return (yield Exclusive(_renew(ctx, seen=ctx.tokens.renewals)))


def _renew(ctx: CallContext, seen: int) -> Flow[str]:
    tokens = ctx.tokens
    # Another user of the same token may have renewed it while this one waited for the lock.
    token = tokens.current(ctx.now())
    if token is not None:
        return token
    _raise_failed_renewal(tokens, seen)
    if tokens.token is None:
        return (yield from _renewal(ctx, _login(ctx)))
    return (yield from _renewal(ctx, _refresh(ctx, tokens.token)))


def _refresh(ctx: CallContext, token: str) -> Flow[str]:
    ctx.counters.add(refreshes=1)
    try:
        payload = yield Send(refresh_request(), token, ctx.timeout)
    except BsgApiError as exc:
        ctx.log.info("Token refresh failed (%s); logging in again.", exc.status or exc.__class__.__name__)
        ctx.tokens.token = None
        return (yield from _login(ctx))
    return (yield from _keep(ctx, payload))


def _login_unless_renewed(ctx: CallContext, refused: str, seen: int) -> Flow[str]:
    # Users refused together log in once: the first one in replaces the token for all.
    if ctx.tokens.token not in (None, refused):
        return ctx.tokens.token  # type: ignore[return-value]
    _raise_failed_renewal(ctx.tokens, seen)
    ctx.tokens.token = None
    return (yield from _renewal(ctx, _login(ctx)))


def _raise_failed_renewal(tokens: TokenState, seen: int) -> None:
    # Renewed and failed while this user waited for the lock: one failed login is enough; the
    # caller's retry loop (and its shared back-off) decides when to try again.
    if tokens.renewals != seen and tokens.failure is not None:
        raise tokens.failure


def _renewal(ctx: CallContext, flow: Flow[str]) -> Flow[str]:
    """Run a login or refresh, noting whether it failed for those waiting on the lock."""
    tokens = ctx.tokens
    tokens.renewals += 1
    try:
        token = yield from flow
    except BsgApiError as exc:
        tokens.failure = exc
        raise
    tokens.failure = None
    return token


def _login(ctx: CallContext) -> Flow[str]:
    # Sent bare: the caller's retry loop already covers a transient login failure.
    ctx.counters.add(logins=1)
    payload = yield Send(login_request(ctx.api_key), None, ctx.timeout)
    return (yield from _keep(ctx, payload))


def _keep(ctx: CallContext, payload: Any) -> Flow[str]:
    token = parse_token(payload)
    yield Mask(token)
    ctx.tokens.token = token
    ctx.tokens.expiry = token_expiry(token)
    return token


def read_response(request: ApiRequest, status: int, body: bytes, headers: Mapping[str, str]) -> Any:
    """
    What a driver gives back for a :class:`Send`: the decoded answer, or the error it stands for.

    :param request: the request sent.
    :param status: the HTTP status.
    :param body: the raw body.
    :param headers: the answer's headers (a case-insensitive mapping, as requests and httpx give).
    """
    return read_answer(
        request,
        status,
        body,
        content_type=headers.get("Content-Type"),
        retry_after=headers.get("Retry-After"),
        location=headers.get("Location"),
    )


class FlowRunner:
    """
    Advance a flow for a driver: the driver performs :attr:`step` and hands back what it gave.

    :param flow: the flow to run; closed by :meth:`close` if abandoned.
    """

    def __init__(self, flow: Flow[Any]) -> None:
        self._flow = flow
        self.step: Step | None = None
        self.value: Any = None
        self.advance()

    @property
    def done(self) -> bool:
        """Whether the flow returned; its value is then :attr:`value`."""
        return self.step is None

    def advance(self, value: Any = None, error: BsgApiError | None = None) -> None:
        """
        Hand the last step's result, or its API error, to the flow; the next step becomes :attr:`step`.

        :param value: what the step gave (the decoded answer of a :class:`Send`).
        :param error: the API error the step raised, thrown into the flow.
        :raises BsgApiError: when the flow gives up.
        """
        self.step = None
        try:
            self.step = self._flow.send(value) if error is None else self._flow.throw(error)
        except StopIteration as stop:
            self.value = stop.value

    def close(self) -> None:
        """Abandon the flow, e.g. when the driver was cancelled; harmless after it finished."""
        self._flow.close()
