from __future__ import annotations

import json

import requests

from bsg_provider.client.api import auth_headers, login_request
from bsg_provider.client.redaction import Redacted, redacted


def test_a_redacted_string_is_itself_except_in_repr():
    secret = Redacted("live_SECRET_1234")
    assert secret == "live_SECRET_1234"
    assert f"Bearer {secret}" == "Bearer live_SECRET_1234"
    assert repr(secret) == "'***'"
    assert "live_SECRET" not in repr({"api_key": secret})
    assert json.dumps({"api_key": secret}) == '{"api_key": "live_SECRET_1234"}'
    assert redacted(None) is None


def test_requests_send_the_real_values():
    prepared = requests.Request(
        "POST",
        "http://127.0.0.1/api/auth/login",
        json=login_request("live_K_99").json,
        headers=auth_headers("t.o.k"),
    ).prepare()
    assert prepared.body == b'{"api_key": "live_K_99"}'
    assert prepared.headers["Authorization"] == "Bearer t.o.k"
    assert "live_K_99" not in repr(login_request("live_K_99"))
