from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

from bsg_provider.client.tokens import RENEW_MARGIN, needs_renewal, token_expiry


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
