"""Login, refresh and bearer-token checks over real HTTP."""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests

from bsg_provider.simulator import BsgSimulator

from .helpers import NOW, Client


def _decode(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_login_returns_jwt_shaped_token(sim: BsgSimulator) -> None:
    response = requests.post(f"{sim.url}/api/auth/login", json={"api_key": sim.api_key}, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    token = response.json()["bearer"]
    header, payload, signature = token.split(".")
    assert _decode(header) == {"typ": "JWT", "alg": "HS256"}
    claims = _decode(payload)
    assert claims["exp"] - claims["iat"] == 3600
    assert abs(claims["iat"] - time.time()) < 5
    assert {"id", "jti"} <= claims.keys()
    assert len(base64.urlsafe_b64decode(signature + "=")) == 32


def test_each_login_gets_a_unique_token(sim: BsgSimulator) -> None:
    api = Client(sim.url, sim.api_key)
    tokens = {api.login() for _ in range(3)}
    assert len({_decode(token.split(".")[1])["jti"] for token in tokens}) == 3


def test_wrong_key_is_401(sim: BsgSimulator) -> None:
    response = requests.post(f"{sim.url}/api/auth/login", json={"api_key": "test_wrong"}, timeout=5)
    assert response.status_code == 401
    assert response.json()["message"]


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[]", b"{}", b'{"api_key": 12}', b'{"api_key": ""}', b'{"key": "x"}'],
)
def test_malformed_login_body_is_422_naming_api_key(sim: BsgSimulator, body: bytes) -> None:
    response = requests.post(
        f"{sim.url}/api/auth/login", data=body, headers={"Content-Type": "application/json"}, timeout=5
    )
    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["api_key"]


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer not-a-jwt", "Bearer a.b.c"],
)
def test_missing_or_malformed_token_is_401(client: Client, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.list(headers=headers)
    assert response.status_code == 401
    assert response.json()["message"]


def test_tampered_or_foreign_token_is_401(sim: BsgSimulator, client: Client) -> None:
    header, payload, signature = client.token.split(".")
    claims = _decode(payload)
    claims["exp"] += 3600
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert client.list(headers=client.headers(f"{header}.{forged}.{signature}")).status_code == 401
    with BsgSimulator(campaigns=10, api_key=sim.api_key, now=NOW) as other:
        foreign = Client(other.url, other.api_key).login()
    assert client.list(headers=client.headers(foreign)).status_code == 401
    assert client.list().status_code == 200


def test_every_protected_endpoint_needs_a_token(sim: BsgSimulator) -> None:
    campaign_id = next(iter(sim.ground_truth_ids(NOW.replace(year=2024), NOW)))
    assert requests.get(f"{sim.url}/api/campaigns", timeout=5).status_code == 401
    assert requests.get(f"{sim.url}/api/campaigns/{campaign_id}", timeout=5).status_code == 401
    assert requests.patch(f"{sim.url}/api/campaigns/{campaign_id}/stop", timeout=5).status_code == 401
    assert requests.post(f"{sim.url}/api/auth/refresh", timeout=5).status_code == 401


def test_refresh_returns_a_new_working_token(client: Client) -> None:
    response = client.refresh()
    assert response.status_code == 200
    new_token = response.json()["bearer"]
    assert new_token != client.token
    assert client.list(headers=client.headers(new_token)).status_code == 200
    assert client.list().status_code == 200  # the old one stays valid until it expires


def test_expired_token_is_401_and_cannot_refresh() -> None:
    with BsgSimulator(campaigns=50, token_ttl=1, now=NOW) as short:
        api = Client(short.url, short.api_key)
        token = api.login()
        assert api.list().status_code == 200
        expires = _decode(token.split(".")[1])["exp"]
        time.sleep(max(0.0, expires - time.time()) + 1.05)  # a 1 s token, exp in whole seconds
        response = api.list()
        assert response.status_code == 401
        assert "Expired" in response.json()["message"]
        assert api.refresh().status_code == 401
        api.login()
        assert api.list().status_code == 200
