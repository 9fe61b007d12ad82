from __future__ import annotations

import pytest

from bsg_provider.client.connection import BsgConnectionSettings
from bsg_provider.errors import BsgConfigError


def settings(host="https://one-api.bsg.world", password="live_KEY_12345", **extra):
    return BsgConnectionSettings.from_fields("bsg_x", host=host, password=password, extra=extra)


def test_defaults():
    s = settings(host=None)
    assert (
        s.base_url,
        s.api_timezone,
        s.timeout,
        s.max_retries,
        s.retry_max_wait,
        s.max_requests_per_second,
        s.max_concurrency,
    ) == (
        "https://one-api.bsg.world",
        "UTC",
        30.0,
        5,
        60.0,
        None,
        8,
    )


def test_extras_from_the_ui_arrive_as_strings_and_with_the_old_prefix():
    s = settings(
        api_timezone="Europe/Berlin",
        timeout="12.5",
        extra__bsg__max_retries="2",
        retry_max_wait=3,
        max_requests_per_second="",
        max_concurrency="8",
    )
    assert s.max_concurrency == 8
    assert (s.api_timezone, s.timeout, s.max_retries, s.retry_max_wait, s.max_requests_per_second) == (
        "Europe/Berlin",
        12.5,
        2,
        3.0,
        None,
    )


def test_the_key_stays_out_of_repr():
    assert "live_KEY_12345" not in repr(settings())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"password": None}, "Connection 'bsg_x' has no API key. Put the BSG API key"),
        ({"password": "   "}, "Connection 'bsg_x' has no API key"),
        ({"host": "ftp://x"}, "Connection 'bsg_x': Connection host 'ftp://x' is not a base URL"),
        ({"timeout": "fast"}, "extra timeout must be a number greater than 0, got 'fast'"),
        ({"timeout": 0}, "extra timeout must be a number greater than 0, got 0"),
        ({"timeout": True}, "extra timeout must be a number greater than 0, got True"),
        ({"max_retries": 2.5}, "extra max_retries must be a whole number at least 0, got 2.5"),
        ({"max_retries": -1}, "extra max_retries must be a whole number at least 0, got -1"),
        ({"retry_max_wait": [1]}, "extra retry_max_wait must be a number at least 0, got [1]"),
        ({"max_requests_per_second": 0}, "extra max_requests_per_second must be a number greater than 0"),
        ({"max_requests_per_second": "nan"}, "extra max_requests_per_second must be a number greater than 0"),
        ({"max_concurrency": 0}, "extra max_concurrency must be a whole number at least 1, got 0"),
        ({"max_concurrency": 2.5}, "extra max_concurrency must be a whole number at least 1, got 2.5"),
        ({"max_concurrency": "many"}, "extra max_concurrency must be a whole number at least 1, got 'many'"),
        ({"max_concurrency": 33}, "extra max_concurrency must be at most 32, got 33"),
        ({"api_timezone": "Mars/Base"}, "Unknown API timezone 'Mars/Base'"),
        ({"api_timezone": 3}, "extra api_timezone must be an IANA name such as 'UTC', got 3"),
        ({"time_out": 5}, "unknown extra field(s) time_out; the bsg connection knows api_timezone, timeout"),
    ],
)
def test_bad_connections_are_refused_with_the_fix(kwargs, message):
    with pytest.raises(BsgConfigError) as info:
        settings(**kwargs)
    assert message in str(info.value)


def test_the_port_field_completes_a_host_without_one():
    s = BsgConnectionSettings.from_fields(
        "bsg_x", host="http://127.0.0.1", port=8099, password="k", extra=None
    )
    assert s.base_url == "http://127.0.0.1:8099"
    s = BsgConnectionSettings.from_fields(
        "bsg_x", host="http://127.0.0.1:8099", port=8099, password="k", extra={}
    )
    assert s.base_url == "http://127.0.0.1:8099"
    with pytest.raises(
        BsgConfigError, match="names port 8099 but the port field says 9000; keep one of them"
    ):
        BsgConnectionSettings.from_fields(
            "bsg_x", host="http://127.0.0.1:8099", port=9000, password="k", extra={}
        )


def test_extra_as_airflow_stores_it_is_read_and_invalid_json_is_refused():
    s = BsgConnectionSettings.from_fields("bsg_x", host=None, password="k", extra='{"timeout": 5}')
    assert s.timeout == 5.0
    assert BsgConnectionSettings.from_fields("bsg_x", host=None, password="k", extra="  ").timeout == 30.0
    with pytest.raises(BsgConfigError, match=r"Connection 'bsg_x': extra is not valid JSON \(Expecting"):
        BsgConnectionSettings.from_fields("bsg_x", host=None, password="k", extra="{timeout: 5}")
    with pytest.raises(BsgConfigError, match="extra must be a JSON object, got list"):
        BsgConnectionSettings.from_fields("bsg_x", host=None, password="k", extra="[1, 2]")
