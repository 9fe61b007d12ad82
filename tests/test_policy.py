"""The pure decisions of the request path: retries and their waits, the token's renewal, pacing."""

from __future__ import annotations

import base64
import json
import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest
from tenacity import Retrying

from bsg_provider.client.policy import (
    BACKOFF_BASE_SECONDS,
    RENEW_MARGIN,
    Pacer,
    TokenState,
    is_retryable,
    needs_renewal,
    retry_kwargs,
    retry_wait_seconds,
    token_expiry,
)
from bsg_provider.errors import BsgAuthError, BsgNotFoundError, BsgServerError, BsgTransportError


def _server_error(retry_after=None):
    return BsgServerError("HTTP 503", status=503, retry_after=retry_after, reason="503")


def test_retry_after_wins_and_is_capped():
    assert retry_wait_seconds(_server_error(retry_after=3.0), 1, max_wait=60) == 3.0
    assert retry_wait_seconds(_server_error(retry_after=300.0), 1, max_wait=60) == 60
    assert retry_wait_seconds(_server_error(retry_after=-5.0), 1, max_wait=60) == 0.0


def test_backoff_is_exponential_with_full_jitter_under_the_cap():
    top = [retry_wait_seconds(_server_error(), n, max_wait=10, rand=lambda: 0.999999) for n in range(1, 7)]
    assert top[0] == pytest.approx(BACKOFF_BASE_SECONDS, rel=1e-3)
    assert top[1] == pytest.approx(2 * BACKOFF_BASE_SECONDS, rel=1e-3)
    assert max(top) <= 10
    assert retry_wait_seconds(_server_error(), 5, max_wait=10, rand=lambda: 0.0) == 0.0


def test_only_retryable_errors_are_retried():
    assert is_retryable(_server_error())
    assert is_retryable(BsgTransportError("reset", reason="connection"))
    assert not is_retryable(BsgNotFoundError("404", status=404))
    assert not is_retryable(ValueError("x"))


def test_policy_retries_then_reraises_and_logs_each_retry(caplog):
    attempts = []
    reasons = []
    log = logging.getLogger("test.retry")
    kwargs = retry_kwargs(max_retries=2, max_wait=0.0, log=log, on_retry=reasons.append)
    with caplog.at_level(logging.WARNING, logger="test.retry"), pytest.raises(BsgServerError):
        for attempt in Retrying(**kwargs):
            with attempt:
                attempts.append(1)
                raise _server_error()
    assert len(attempts) == 3
    assert reasons == ["503", "503"]
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0].startswith("BSG request failed (503), retry 1 of 2 in 0.00 s")
    assert len(messages) == 2


def test_policy_does_not_retry_a_404():
    attempts = []
    with pytest.raises(BsgNotFoundError):
        for attempt in Retrying(**retry_kwargs(max_retries=5, max_wait=0.0, log=logging.getLogger("t"))):
            with attempt:
                attempts.append(1)
                raise BsgNotFoundError("404", status=404)
    assert len(attempts) == 1


# -- the token --
def _jwt(payload: dict) -> str:
    def enc(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{enc({'typ': 'JWT', 'alg': 'RS256'})}.{enc(payload)}.c2lnbmF0dXJl"


def test_expiry_is_read_from_the_payload():
    assert token_expiry(_jwt({"iat": 1, "exp": 1741369668})) == datetime(
        2025, 3, 7, 17, 47, 48, tzinfo=timezone.utc
    )


def test_tokens_without_a_readable_exp_have_unknown_expiry():
    for token in ("opaque", "a.b", _jwt({"iat": 1}), _jwt({"exp": "soon"}), "a.!!!.c", _jwt({"exp": True})):
        assert token_expiry(token) is None


def test_renewal_happens_within_the_margin_before_exp():
    exp = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert not needs_renewal(exp, exp - RENEW_MARGIN - timedelta(seconds=1))
    assert needs_renewal(exp, exp - RENEW_MARGIN)
    assert needs_renewal(exp, exp + timedelta(hours=1))
    assert not needs_renewal(None, exp)


NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _token_state(token: str | None = None, expires: datetime | None = None) -> TokenState:
    state = TokenState(now=lambda: NOW)
    if token is not None:
        state.renewed(token)
        state.expiry = expires
    return state


def test_a_token_is_sent_as_it_is_until_its_renewal_margin():
    assert _token_state().current() is None, "no token before the first login"
    assert _token_state("t1", NOW + RENEW_MARGIN + timedelta(seconds=1)).current() == "t1"
    assert _token_state("t1", NOW + RENEW_MARGIN).current() is None
    assert _token_state("t1", None).current() == "t1", "unknown expiry: a 401 will tell"


def test_a_due_token_is_refreshed_and_a_refused_one_replaced_by_a_login():
    due = _token_state("t1", NOW)
    assert due.begin_renewal(due.renewals, refused=None) == "t1", "refresh the token we have"
    refused = _token_state("t1", NOW + timedelta(hours=1))
    assert refused.begin_renewal(refused.renewals, refused="t1") is None, "log in"
    assert refused.token is None


def test_a_token_renewed_while_a_user_waited_is_reused():
    state = _token_state("t1", NOW)
    state.renewed(_jwt({"exp": (NOW + timedelta(hours=1)).timestamp()}))
    assert state.reusable(None) == state.token
    # Refused together: whoever comes second finds the token already replaced and logs in no more.
    assert state.reusable(refused="t1") == state.token
    assert state.reusable(refused=state.token) is None


def test_users_that_waited_while_a_renewal_failed_take_that_failure():
    state = _token_state()
    state.begin_renewal(state.renewals, None)  # another user's login is under way...
    seen = state.renewals  # ...when this user finds no token and waits for the lock...
    failure = BsgAuthError("refused (HTTP 401)", status=401)
    state.renewal_failed(failure)
    with pytest.raises(BsgAuthError) as info:
        state.begin_renewal(seen, None)
    assert info.value is failure
    # A failure that happened before this user looked is tried again.
    assert state.begin_renewal(state.renewals, None) is None
    # A renewal that stopped for another reason (a dropped fetch) leaves nothing for others to take.
    state.renewal_failed(KeyboardInterrupt())
    assert state.failure is None


def test_a_token_never_shows_in_the_state_repr():
    state = _token_state("secret.jwt.value", None)
    assert "secret" not in repr(state)


# -- pacing --


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_requests_are_spaced_by_the_rate_and_idle_time_is_not_saved_up():
    clock = FakeClock()
    pacer = Pacer(4.0, clock=clock)
    assert [pacer.reserve() for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]
    clock.now += 10
    assert [pacer.reserve(), pacer.reserve()] == [0.0, 0.25]
    assert pacer.reservations == 6


def test_no_rate_means_no_waiting():
    pacer = Pacer(None, clock=FakeClock())
    assert [pacer.reserve() for _ in range(3)] == [0.0] * 3
    pacer.set_rate(2.0)
    assert [pacer.reserve() for _ in range(2)] == [0.0, 0.5]


def test_threads_sharing_a_pacer_get_distinct_slots_at_the_rate():
    """max_requests_per_second holds over every paging thread: each reserves its own slot."""
    pacer = Pacer(10.0, clock=FakeClock())
    delays: list[float] = []
    lock = threading.Lock()

    def sender():
        for _ in range(50):
            pause = pacer.reserve()
            with lock:
                delays.append(pause)

    threads = [threading.Thread(target=sender) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The clock stood still: 400 requests were given the slots 0, 0.1, 0.2 ... 39.9 s from now.
    assert sorted(round(d, 6) for d in delays) == [round(i * 0.1, 6) for i in range(400)]


def test_a_back_off_holds_every_request_until_it_ends_and_is_never_shortened():
    clock = FakeClock()
    pacer = Pacer(None, clock=clock)
    assert pacer.held_for() == 0.0
    pacer.hold(5.0)
    assert pacer.held_for() == 5.0
    pacer.hold(1.0)  # a shorter hold of another request
    assert pacer.held_for() == 5.0
    clock.now += 3
    pacer.hold(4.0)  # a longer one extends it
    assert pacer.held_for() == 4.0
    clock.now += 4
    assert pacer.held_for() == 0.0
    assert pacer.holds == 3
