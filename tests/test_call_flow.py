"""The call flow on its own, driven by a scripted API: every decision about tokens and retries, no I/O."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from tenacity import Retrying

from bsg_provider.client.api import get_campaign_request, parse_campaign
from bsg_provider.client.call_flow import (
    CallContext,
    Exclusive,
    FlowRunner,
    Mask,
    Send,
    Sleep,
    TokenState,
    call_flow,
)
from bsg_provider.client.counters import RequestCounters
from bsg_provider.client.retry import retry_kwargs
from bsg_provider.errors import (
    BsgApiError,
    BsgAuthError,
    BsgMalformedResponseError,
    BsgNotFoundError,
    BsgRateLimitError,
    BsgServerError,
)

NOW = datetime(2025, 6, 1, 12, tzinfo=timezone.utc)
LOG = logging.getLogger("test_call_flow")
CAMPAIGN = {"data": {"id": 7, "status": "sending"}}


def _jwt(n: int, expires: datetime) -> str:
    def enc(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'alg': 'RS256'})}.{enc({'n': n, 'exp': int(expires.timestamp())})}.c2ln"


def _refused(endpoint: str) -> BsgAuthError:
    return BsgAuthError("HTTP 401", status=401, endpoint=endpoint)


def _unavailable() -> BsgServerError:
    return BsgServerError("HTTP 503", status=503, reason="503")


class ScriptedApi:
    """Answers each :class:`Send` from a list of answers per endpoint; records every step it was given."""

    def __init__(self, **answers: list[Any]) -> None:
        self.answers = {endpoint: list(queue) for endpoint, queue in answers.items()}
        self.steps: list[Any] = []
        self.issued = 0

    def answer(self, send: Send) -> Any:
        endpoint = send.request.endpoint
        queue = self.answers.get(endpoint)
        value = queue.pop(0) if queue else "token" if endpoint in ("login", "refresh") else CAMPAIGN
        if value == "token":
            self.issued += 1
            return {"bearer": _jwt(self.issued, NOW + timedelta(hours=1))}
        if isinstance(value, BaseException):
            raise value
        return value

    def drive(self, flow: Any) -> Any:
        runner = FlowRunner(flow)
        while not runner.done:
            step = runner.step
            self.steps.append(step)
            try:
                if isinstance(step, Send):
                    runner.advance(self.answer(step))
                elif isinstance(step, Exclusive):
                    runner.advance(self.drive(step.flow))
                else:
                    runner.advance()
            except BsgApiError as exc:
                runner.advance(error=exc)
        return runner.value

    def sent(self) -> list[tuple[str, str | None]]:
        """``(endpoint, token number)`` of each request, in order."""
        return [
            (s.request.endpoint, json.loads(base64.urlsafe_b64decode(s.token.split(".")[1] + "==")).get("n"))
            if s.token
            else (s.request.endpoint, None)
            for s in self.steps
            if isinstance(s, Send)
        ]


def _ctx(tokens: TokenState | None = None, now: Callable[[], datetime] = lambda: NOW) -> CallContext:
    return CallContext(
        api_key="test_key",
        tokens=tokens or TokenState(),
        timeout=5.0,
        counters=RequestCounters(),
        log=LOG,
        now=now,
    )


def _retrying(max_retries: int = 3) -> Retrying:
    return Retrying(**retry_kwargs(max_retries=max_retries, max_wait=0.5, log=LOG))


def _get(ctx: CallContext, max_retries: int = 3) -> Any:
    return call_flow(get_campaign_request(7), ctx, _retrying(max_retries), parse_campaign)


def test_the_first_call_logs_in_masks_the_token_then_sends_it():
    api, ctx = ScriptedApi(), _ctx()
    assert api.drive(_get(ctx)) == CAMPAIGN["data"]
    assert api.sent() == [("login", None), ("get", 1)]
    masks = [s for s in api.steps if isinstance(s, Mask)]
    assert len(masks) == 1 and masks[0].secret == ctx.tokens.token
    # The token was masked before any request carried it.
    assert api.steps.index(masks[0]) < max(i for i, s in enumerate(api.steps) if isinstance(s, Send))
    assert (ctx.counters.logins, ctx.counters.refreshes, ctx.counters.retries) == (1, 0, 0)
    assert "eyJ" not in repr(api.steps)


def test_a_token_in_its_renewal_margin_is_refreshed_and_a_failed_refresh_logs_in():
    clock = [NOW]
    api, ctx = ScriptedApi(refresh=[_refused("refresh"), "token"]), _ctx(now=lambda: clock[0])
    api.drive(_get(ctx))
    clock[0] = NOW + timedelta(minutes=59, seconds=45)  # inside the 30 s margin of the 1 h token
    api.drive(_get(ctx))
    clock[0] = NOW + timedelta(hours=1, minutes=59, seconds=45)
    api.drive(_get(ctx))
    assert api.sent() == [
        ("login", None),
        ("get", 1),
        ("refresh", 1),
        ("login", None),
        ("get", 2),
        ("refresh", 2),
        ("get", 3),
    ]
    assert (ctx.counters.logins, ctx.counters.refreshes) == (2, 2)


def test_a_refused_token_costs_one_login_and_one_replay_and_no_more():
    api = ScriptedApi(get=[CAMPAIGN, _refused("get"), CAMPAIGN])
    ctx = _ctx()
    api.drive(_get(ctx))
    assert api.drive(_get(ctx)) == CAMPAIGN["data"]
    assert api.sent() == [("login", None), ("get", 1), ("get", 1), ("login", None), ("get", 2)]
    assert ctx.counters.retries == 0

    again = ScriptedApi(get=[_refused("get"), _refused("get")])
    with pytest.raises(BsgAuthError):
        again.drive(_get(_ctx()))
    assert again.sent() == [("login", None), ("get", 1), ("login", None), ("get", 2)]


def test_a_token_another_user_renewed_while_this_one_waited_is_reused():
    tokens = TokenState()
    api = ScriptedApi(get=[_refused("get"), CAMPAIGN])
    flow = _get(_ctx(tokens))
    runner = FlowRunner(flow)
    while not isinstance(runner.step, Send) or runner.step.request.endpoint != "get":
        step = runner.step
        runner.advance(api.drive(step.flow) if isinstance(step, Exclusive) else None)
    refused_token = runner.step.token
    runner.advance(error=_refused("get"))
    assert isinstance(runner.step, Exclusive)
    # Before this flow got the lock, another hook on the same token logged in afresh.
    tokens.token = "a.renewed.token"
    runner.advance(api.drive(runner.step.flow))
    assert runner.step.token == "a.renewed.token" != refused_token
    runner.advance(CAMPAIGN)
    assert runner.done and runner.value == CAMPAIGN["data"]
    assert [s for s in api.sent() if s[0] == "login"] == [("login", None)]


def test_transient_failures_sleep_as_tenacity_says_then_give_up_with_the_last_error():
    api, ctx = ScriptedApi(get=[_unavailable()] * 4), _ctx()
    with pytest.raises(BsgServerError, match="HTTP 503"):
        api.drive(_get(ctx, max_retries=3))
    sleeps = [s for s in api.steps if isinstance(s, Sleep)]
    assert len(sleeps) == 3
    assert all(0 <= s.seconds <= 0.5 for s in sleeps)
    assert [e for e, _ in api.sent()] == ["login", "get", "get", "get", "get"]
    assert ctx.counters.retry_wait_seconds == pytest.approx(sum(s.seconds for s in sleeps))


def test_a_malformed_answer_is_retried_like_a_truncated_one():
    api = ScriptedApi(get=[{"data": "not a campaign"}, CAMPAIGN])
    assert api.drive(_get(_ctx())) == CAMPAIGN["data"]
    assert [e for e, _ in api.sent()] == ["login", "get", "get"]


def test_without_retries_a_call_is_one_attempt():
    api = ScriptedApi(get=[_unavailable(), CAMPAIGN])
    with pytest.raises(BsgServerError):
        api.drive(_get(_ctx(), max_retries=0))
    assert not [s for s in api.steps if isinstance(s, Sleep)]
    assert [e for e, _ in api.sent()] == ["login", "get"]


@pytest.mark.parametrize(
    "error",
    [
        BsgNotFoundError("HTTP 404", status=404),
        BsgAuthError("HTTP 403", status=403),
        BsgApiError("HTTP 400", status=400),
    ],
)
def test_permanent_errors_are_raised_at_once(error):
    api = ScriptedApi(get=[error])
    with pytest.raises(type(error)):
        api.drive(_get(_ctx()))
    assert [e for e, _ in api.sent()] == ["login", "get"]


def test_a_login_refused_is_not_replayed():
    api = ScriptedApi(login=[_refused("login")])
    with pytest.raises(BsgAuthError):
        api.drive(_get(_ctx()))
    assert api.sent() == [("login", None)]


def test_a_login_answer_without_token_is_malformed_and_retried():
    api = ScriptedApi(login=[{"nothing": 1}, "token"])
    assert api.drive(_get(_ctx())) == CAMPAIGN["data"]
    assert [e for e, _ in api.sent()] == ["login", "login", "get"]
    with pytest.raises(BsgMalformedResponseError):
        ScriptedApi(login=[{"nothing": 1}] * 2).drive(_get(_ctx(), max_retries=1))


def test_every_request_carries_the_timeout():
    api = ScriptedApi()
    ctx = CallContext(api_key="k", tokens=TokenState(), timeout=2.5, counters=RequestCounters(), log=LOG)
    api.drive(_get(ctx))
    assert {s.timeout for s in api.steps if isinstance(s, Send)} == {2.5}


def test_users_that_waited_while_a_renewal_failed_take_that_failure_instead_of_logging_in():
    # Eight paging threads refused together must not send eight failing logins.
    tokens = TokenState()
    flow = _get(_ctx(tokens), max_retries=0)
    runner = FlowRunner(flow)
    assert isinstance(runner.step, Exclusive)  # no token yet: wait for the lock to log in
    # Meanwhile another user of the same token tried to log in and was told to slow down.
    tokens.renewals += 1
    tokens.failure = BsgRateLimitError("HTTP 429 to POST /api/auth/login (login)", status=429, reason="429")
    api = ScriptedApi()
    with pytest.raises(BsgRateLimitError, match="HTTP 429 to POST /api/auth/login"):
        runner.advance(api.drive(runner.step.flow))
    assert api.sent() == [], "no login of its own"


def test_a_renewal_that_failed_before_this_user_looked_is_tried_again():
    tokens = TokenState(renewals=3, failure=BsgRateLimitError("HTTP 429", status=429, reason="429"))
    api = ScriptedApi(get=[CAMPAIGN])
    assert api.drive(_get(_ctx(tokens))) == CAMPAIGN["data"]
    assert api.sent()[0] == ("login", None)
    assert tokens.failure is None and tokens.renewals == 4
