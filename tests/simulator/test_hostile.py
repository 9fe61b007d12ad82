"""Hostile input: every one gets a JSON 4xx naming what was wrong, and the server keeps serving."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
import requests

from bsg_provider.simulator import BsgSimulator

from .helpers import NOW, Client


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[BsgSimulator, Client]]:
    with BsgSimulator(
        campaigns=200, seed=9, api_key="test_hostile_key", now=NOW, timezone="Pacific/Kiritimati"
    ) as sim:
        api = Client(sim.url, sim.api_key)
        api.login()
        yield sim, api


def still_serving(api: Client) -> None:
    fresh = Client(api.url, api.api_key)
    fresh.login()
    assert fresh.list({"page[limit]": 30}).status_code == 200
    assert api.list({"page[limit]": 30}).status_code == 200


def refused_fields(response: requests.Response, status: int = 422) -> list[str]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    return sorted(response.json()["errors"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"filter[to]": "0001-02-01 00:00:00"}, "filter[to]"),
        ({"filter[from]": "0001-01-01 00:00:00", "filter[to]": "0001-01-01 00:00:01"}, "filter[from]"),
        ({"filter[from]": "0999-12-31 23:59:59", "filter[to]": "1000-01-01 00:00:00"}, "filter[from]"),
        ({"filter[to]": "9999-12-31 23:59:59"}, "filter[to]"),
        ({"filter[from]": "9999-12-31 23:59:59", "filter[to]": "9999-12-31 23:59:59"}, "filter[from]"),
    ],
)
def test_dates_outside_years_1000_to_9999_are_422(
    hostile: tuple[BsgSimulator, Client], params: dict, field: str
) -> None:
    _, api = hostile
    response = api.list(params)
    assert field in refused_fields(response)
    assert "between 1000-01-02 and 9999-12-30" in " ".join(response.json()["errors"][field])
    still_serving(api)


@pytest.mark.parametrize(
    "value",
    [
        "0001-01-01T00:00:00+14:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-30T23:00:00-14:00",
        "0001-02-01T00:00:00Z",
    ],
)
def test_iso_dates_at_the_year_edges_are_422(value: str) -> None:
    with BsgSimulator(campaigns=50, now=NOW, filter_formats="plain,iso", timezone="Asia/Tokyo") as sim:
        api = Client(sim.url, sim.api_key)
        api.login()
        assert refused_fields(api.list({"filter[to]": value})) == ["filter[to]"]
        assert "filter[from]" in refused_fields(api.list({"filter[from]": value}))
        still_serving(api)


@pytest.mark.parametrize("name", ["page[offset]", "page[limit]"])
def test_a_5000_digit_integer_is_422(hostile: tuple[BsgSimulator, Client], name: str) -> None:
    _, api = hostile
    response = api.list({name: "9" * 5000})
    assert refused_fields(response) == [name]
    assert "at most 18 digits" in response.json()["errors"][name][0]
    still_serving(api)


@pytest.mark.parametrize(
    "value",
    ["\u0663\u0660", "\uff13\uff10", "3\u0660", "30\u00a0", "0x1e"],  # Arabic-Indic, fullwidth, mixed, NBSP
)
@pytest.mark.parametrize("name", ["page[offset]", "page[limit]"])
def test_integers_take_ascii_digits_only(hostile: tuple[BsgSimulator, Client], name: str, value: str) -> None:
    _, api = hostile
    response = api.list({name: value})
    assert refused_fields(response) == [name]
    assert response.json()["errors"][name] == [f"The {name} must be an integer."]


ARABIC_DATE = "".join(chr(0x0660 + int(c)) if c.isdigit() else c for c in "2025-06-01 00:00:00")


@pytest.mark.parametrize("value", [ARABIC_DATE, "2025-06-01 00:00:\u0660\u0660"])
def test_dates_take_ascii_digits_only(hostile: tuple[BsgSimulator, Client], value: str) -> None:
    _, api = hostile
    assert refused_fields(api.list({"filter[to]": value})) == ["filter[to]"]


def test_a_deeply_nested_login_body_is_422(hostile: tuple[BsgSimulator, Client]) -> None:
    sim, api = hostile
    body = "[" * 200_000 + "]" * 200_000
    response = requests.post(
        f"{sim.url}/api/auth/login", data=body, headers={"Content-Type": "application/json"}, timeout=10
    )
    assert refused_fields(response) == ["api_key"]
    nested_key = '{"api_key": ' + "[" * 200_000 + "]" * 200_000 + "}"
    response = requests.post(f"{sim.url}/api/auth/login", data=nested_key, timeout=10)
    assert refused_fields(response) == ["api_key"]
    still_serving(api)


def test_a_deeply_nested_control_body_is_400(hostile: tuple[BsgSimulator, Client]) -> None:
    sim, api = hostile
    response = requests.post(f"{sim.url}/_simulator/faults", data="[" * 200_000, timeout=10)
    assert response.status_code == 400
    response = requests.post(f"{sim.url}/_simulator/faults", data="[" * 200_000 + "]" * 200_000, timeout=10)
    assert response.status_code == 400 and "nested too deeply" in response.json()["message"]
    still_serving(api)


def raw_exchange(sim: BsgSimulator, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes on a new connection; read one answer to the end (the server closes after it)."""
    with socket.create_connection((sim.host, sim.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while True:
            part = sock.recv(65536)
            if not part:
                break
            data += part
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    return int(status_line.split()[1]), headers, body


CHUNKED = (
    b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # not a hexadecimal size
        b"-5\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabcdef\r\n0\r\n\r\n",  # longer than its size
        b"\xd9\xa3\r\nabc\r\n0\r\n\r\n",  # an Arabic-Indic digit
        b"fffffffff\r\n",  # too large
        b"5\r\nab",  # cut short
    ],
)
def test_a_malformed_chunked_body_is_a_json_400(hostile: tuple[BsgSimulator, Client], body: bytes) -> None:
    sim, api = hostile
    with socket.create_connection((sim.host, sim.port), timeout=10) as sock:
        sock.sendall(CHUNKED + body)
        if body.endswith(b"ab"):
            sock.shutdown(socket.SHUT_WR)  # the client gives up mid-chunk
        data = b""
        while part := sock.recv(65536):
            data += part
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), data
    assert b"Connection: close" in head and b"Content-Type: application/json" in head
    assert "chunked" in json.loads(payload)["message"].lower() or "body" in json.loads(payload)["message"]
    still_serving(api)


def test_a_wellformed_chunked_body_is_read(hostile: tuple[BsgSimulator, Client]) -> None:
    sim, _ = hostile
    key = json.dumps({"api_key": sim.api_key}).encode()
    body = b"%x\r\n%s\r\n%x;ext=1\r\n%s\r\n0\r\nX-Trailer: 1\r\n\r\n" % (5, key[:5], len(key) - 5, key[5:])
    status, _, payload = raw_exchange(
        sim, CHUNKED.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\r\nConnection: close\r\n") + body
    )
    assert status == 200 and "bearer" in json.loads(payload)


@pytest.mark.parametrize("length", ["٣", "-1", "1e3", "9" * 40, "2000000"])
def test_a_bad_content_length_is_a_json_400(hostile: tuple[BsgSimulator, Client], length: str) -> None:
    sim, api = hostile
    request = f"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
    status, headers, payload = raw_exchange(sim, request)
    assert (status, headers["content-type"]) == (400, "application/json")
    assert json.loads(payload)["message"] == "Bad Content-Length"
    still_serving(api)


PATHS = {
    "/api/campaigns": "GET",
    "/api/campaigns/53000001": "GET",
    "/api/campaigns/53000001/stop": "PATCH",
    "/api/auth/login": "POST",
    "/api/auth/refresh": "POST",
    "/_simulator/now": "GET",
    "/_simulator/faults": "GET, POST, DELETE",
    "/_simulator/campaigns/53000001/status": "POST",
}
METHODS = ("HEAD", "OPTIONS", "TRACE", "PUT", "PATCH", "DELETE", "POST", "GET", "BREW")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [(m, path, allow) for path, allow in PATHS.items() for m in METHODS if m not in allow.split(", ")],
)
def test_other_methods_are_a_json_405_with_allow(
    hostile: tuple[BsgSimulator, Client], method: str, path: str, allow: str
) -> None:
    sim, api = hostile
    response = requests.request(method, sim.url + path, headers=api.headers(), timeout=5)
    assert response.status_code == 405, (method, path, response.text)
    assert response.headers["Allow"] == allow
    assert response.headers["Content-Type"] == "application/json"
    if method == "HEAD":
        assert response.content == b""
    else:
        assert response.json()["message"] == f"Method Not Allowed. Allowed: {allow}."


def test_head_keeps_the_connection_usable(hostile: tuple[BsgSimulator, Client]) -> None:
    sim, api = hostile
    session = api.session
    assert session.head(f"{sim.url}/api/campaigns", headers=api.headers(), timeout=5).status_code == 405
    # The same keep-alive connection answers the next request: HEAD sent no body to misread.
    assert session.get(f"{sim.url}/api/campaigns", headers=api.headers(), timeout=5).status_code == 200


def test_unknown_paths_are_a_json_404_for_any_method(hostile: tuple[BsgSimulator, Client]) -> None:
    sim, _ = hostile
    for method in ("GET", "OPTIONS", "TRACE", "BREW"):
        response = requests.request(method, f"{sim.url}/api/nothing", timeout=5)
        assert (response.status_code, response.headers["Content-Type"]) == (404, "application/json")


@pytest.mark.parametrize(
    "request_line",
    [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n"],
)
def test_a_malformed_request_line_is_a_json_error(
    hostile: tuple[BsgSimulator, Client], request_line: bytes
) -> None:
    sim, api = hostile
    status, headers, payload = raw_exchange(sim, request_line)
    assert status in (400, 414, 505)  # bad request, URI too long, HTTP version not supported
    assert headers["content-type"] == "application/json" and json.loads(payload)["message"]
    still_serving(api)
