from __future__ import annotations

import logging

import pytest
from tenacity import Retrying

from bsg_provider.client.retry import BACKOFF_BASE_SECONDS, is_retryable, retry_kwargs, retry_wait_seconds
from bsg_provider.errors import BsgNotFoundError, BsgServerError, BsgTransportError


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
