"""
The bad-input matrix: every input the provider must refuse (or warn about), in one table.

Each case names where the input enters (a connection, the operator, the sensor, the trigger,
the hook, or an API answer) and asserts the error's type and its specific message: a
provider error (or Airflow's fail/not-found exception), never a bare KeyError, TypeError or
AttributeError. Connections are real ``AIRFLOW_CONN_*`` environment variables; operator and
sensor cases run ``__init__`` or ``execute()`` and check that no request reached the
simulator; API answers come from the real simulator where it can send them (faults) and
otherwise go through the pure readers in :mod:`bsg_provider.client.api`,
:mod:`bsg_provider.extraction.records` and :mod:`bsg_provider.client.statuses`.
docs/reliability.md ("Bad input") lists the same cases.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException, AirflowNotFoundException

from bsg_provider.client import api
from bsg_provider.client.connection import BsgConnectionSettings
from bsg_provider.client.statuses import StatusGate, StatusWatch, log_observation
from bsg_provider.errors import (
    BsgApiError,
    BsgAuthError,
    BsgConfigError,
    BsgError,
    BsgMalformedResponseError,
    BsgNotFoundError,
    BsgRateLimitError,
    BsgServerError,
    BsgValidationError,
)
from bsg_provider.extraction.records import RecordShaper
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.hooks.bsg_async import BsgAsyncHook
from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from bsg_provider.sensors.campaign import BsgCampaignStatusSensor
from bsg_provider.simulator import BsgSimulator
from bsg_provider.triggers.campaign import BsgCampaignStatusTrigger
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env

UTC = timezone.utc
#: Expected outcome of a case that must not raise but log a warning containing the message.
WARNS = "warning"
#: Expected outcome of a case that must not raise but return a value whose text contains the message.
RETURNS = "value"
#: A campaign id no simulator holds.
MISSING_ID = 987654321
#: The exception types a case may expect: the provider's, or Airflow's own fail/not-found.
ALLOWED_ERRORS = (BsgError, AirflowFailException, AirflowNotFoundException)


@dataclass
class Env:
    """What a case may use; the simulator and its connection are made only for cases that ask."""

    request: pytest.FixtureRequest
    monkeypatch: pytest.MonkeyPatch
    tmp_path: Path

    @property
    def sim(self) -> BsgSimulator:
        return self.request.getfixturevalue("simulator")

    @property
    def conn_id(self) -> str:
        """A good connection to :attr:`sim`, with fast retries."""
        return self.request.getfixturevalue("bsg_conn_id")

    def campaign_id(self) -> int:
        """A campaign that exists and is done."""
        return self.sim.add_campaign(self.sim.now() - timedelta(days=1), status="done")["id"]

    def connection(self, *, host: str | None = "https://one-api.bsg.world", api_key: Any = "live_k", **extra):
        """Define connection ``bsg_case`` as an environment variable; return its id."""
        name, value = bsg_connection_env("bsg_case", host=host, api_key=api_key, **extra)
        self.monkeypatch.setenv(name, value)
        return "bsg_case"

    def raw_connection(self, **fields: Any) -> str:
        """Define ``bsg_case`` from exactly these JSON fields (conn_type added)."""
        self.monkeypatch.setenv("AIRFLOW_CONN_BSG_CASE", json.dumps({"conn_type": "bsg", **fields}))
        return "bsg_case"

    def path(self, name: str) -> str:
        return f"file://{self.tmp_path}/{name}"


class Case(NamedTuple):
    """
    One bad input.

    :param case_id: readable name, ``<where>-<what>``.
    :param make_callable: builds and runs the input given an :class:`Env`.
    :param expected: the exception type, or :data:`WARNS` / :data:`RETURNS`.
    :param message: text the error (or warning, or value) must contain.
    :param via: how the input reaches the provider, for docs/reliability.md.
    :param requests: how many requests the simulator must have seen, or None when no simulator is involved.
    """

    case_id: str
    make_callable: Callable[[Env], Any]
    expected: type[BaseException] | str
    message: str
    via: str
    requests: int | None = None


# -- helpers that run an input ------------------------------------------------------------------


def settings(conn_id: str) -> Any:
    return BsgHook(conn_id).settings


def async_settings(conn_id: str) -> Any:
    return asyncio.run(BsgAsyncHook(conn_id).get_settings())


def operator(env: Env, **kwargs: Any) -> BsgExtractCampaignsOperator:
    kwargs.setdefault("output_path", env.path("out.jsonl"))
    kwargs.setdefault("bsg_conn_id", env.conn_id)
    return BsgExtractCampaignsOperator(task_id="extract", **kwargs)


def run_operator(env: Env, context: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """Build the operator, then put rendered values in place and execute it, as a task would."""
    rendered = {
        name: kwargs.pop(name) for name in ("output_path", "start", "end", "campaign_type") if name in kwargs
    }
    task = operator(env, **{k: "{{ x }}" for k in rendered if k != "output_path"}, **kwargs)
    for name, value in rendered.items():
        setattr(task, name, value)
    if context is None:
        context = {"data_interval_start": DAY_START, "data_interval_end": DAY_END}
    return task.execute(context)


def sensor(env: Env | None, **kwargs: Any) -> BsgCampaignStatusSensor:
    kwargs.setdefault("campaign_id", 1)
    kwargs.setdefault("bsg_conn_id", env.conn_id if env is not None else "bsg_default")
    return BsgCampaignStatusSensor(task_id="wait", poke_interval=0, timeout=5, **kwargs)


def run_sensor(env: Env, rendered_id: Any, **kwargs: Any) -> Any:
    """Execute a sensor whose templated campaign_id rendered to ``rendered_id``."""
    task = sensor(env, campaign_id="{{ x }}", **kwargs)
    task.campaign_id = rendered_id
    return task.execute(context={})


def get_with_fault(env: Env, kind: str, **fault: Any) -> Any:
    """Read an existing campaign while every ``get`` answer is broken the same way."""
    campaign_id = env.campaign_id()
    env.sim.inject(kind, endpoint="get", times=None, **fault)
    return BsgHook(env.conn_id).get_campaign(campaign_id)


def list_with_fault(env: Env, kind: str, **fault: Any) -> Any:
    env.sim.inject(kind, endpoint="list", times=None, **fault)
    end = env.sim.now()
    return list(BsgHook(env.conn_id).iter_campaigns(end - timedelta(days=1), end, page_size=30))


def page(records: Any = (), **meta_page: Any) -> dict[str, Any]:
    """A list answer; ``meta.page`` holds total/offset/limit unless overridden (``None`` drops a key)."""
    numbers = {"total": len(records) if isinstance(records, list) else 0, "offset": 0, "limit": 30}
    numbers.update(meta_page)
    return {"data": records, "meta": {"page": {k: v for k, v in numbers.items() if v is not None}}}


def unknown_status_warning() -> None:
    """One poll that shows a status the provider has never heard of, logged as sensor and trigger do."""
    watch = StatusWatch()
    log = logging.getLogger("bsg_provider.tests.unknown_status")
    log_observation(log, watch.observe({42: "archived"}), StatusGate())


def trigger(ids: Any = (1,), **kwargs: Any) -> BsgCampaignStatusTrigger:
    return BsgCampaignStatusTrigger(list(ids) if isinstance(ids, tuple) else ids, **kwargs)


DAY_START = datetime(2025, 6, 1, tzinfo=UTC)
DAY_END = datetime(2025, 6, 2, tzinfo=UTC)
LIST = api.list_campaigns_request(
    "2025-06-01 00:00:00", "2025-06-01 23:59:59", campaign_type="sms", offset=0, limit=30
)
NO_INTERVAL = {"data_interval_start": None, "data_interval_end": None}
ZERO_WIDTH = {"data_interval_start": DAY_START, "data_interval_end": DAY_START}
#: Attempts per request with FAST_RETRY_EXTRAS: the first try and max_retries more.
ATTEMPTS = 1 + FAST_RETRY_EXTRAS["max_retries"]
CASES: list[Case] = [
    # -- connection: env-var connections read by BsgHook.settings / BsgAsyncHook.get_settings --------
    Case(
        "connection-no-key",
        lambda env: settings(env.raw_connection(host="https://one-api.bsg.world")),
        BsgConfigError,
        "Connection 'bsg_case' has no API key. Put the BSG API key (live_... or test_...) in the "
        "connection's password field.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-blank-key",
        lambda env: settings(env.connection(api_key="   ")),
        BsgConfigError,
        "Connection 'bsg_case' has no API key.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-no-key-async",
        lambda env: async_settings(env.raw_connection(host="https://one-api.bsg.world")),
        BsgConfigError,
        "Connection 'bsg_case' has no API key.",
        "env-var connection, BsgAsyncHook.get_settings",
    ),
    Case(
        "connection-empty-host-means-default",
        lambda env: settings(env.connection(host="")).base_url,
        RETURNS,
        "https://one-api.bsg.world",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-host-with-space",
        lambda env: settings(env.connection(host="exa mple.com")),
        BsgConfigError,
        "Connection 'bsg_case': Connection host 'exa mple.com' is not a base URL. Set it to the API's "
        "address, such as https://one-api.bsg.world",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-host-ftp-scheme",
        lambda env: settings(env.connection(host="ftp://one-api.bsg.world")),
        BsgConfigError,
        "Connection host 'ftp://one-api.bsg.world' is not a base URL",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-host-scheme-only",
        lambda env: settings(env.connection(host="https://")),
        BsgConfigError,
        "Connection host 'https://' is not a base URL",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-host-bad-port",
        lambda env: settings(env.connection(host="https://one-api.bsg.world:99999")),
        BsgConfigError,
        "Connection host 'https://one-api.bsg.world:99999' has an invalid port",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-host-with-query",
        lambda env: settings(env.connection(host="https://one-api.bsg.world/?page=2")),
        BsgConfigError,
        "must not carry a query or fragment",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-host-bad-async",
        lambda env: async_settings(env.connection(host="exa mple.com")),
        BsgConfigError,
        "Connection host 'exa mple.com' is not a base URL",
        "env-var connection, BsgAsyncHook.get_settings",
    ),
    Case(
        "connection-plain-http-host",
        # A base URL no other test uses: the warning is given once per base URL and process.
        lambda env: settings(env.connection(host=f"http://127.0.0.1:9/plain-{uuid.uuid4().hex}")),
        WARNS,
        "uses plain http (http://127.0.0.1:9/plain-",
        "env-var connection, BsgHook.settings (warning, not an error)",
    ),
    Case(
        "connection-plain-http-says-why",
        lambda env: settings(env.connection(host=f"http://127.0.0.1:9/plain-{uuid.uuid4().hex}")),
        WARNS,
        "the API key and token travel unencrypted. Use https unless this is a local simulator.",
        "env-var connection, BsgHook.settings (warning, not an error)",
    ),
    Case(
        "connection-extra-timeout-text",
        lambda env: settings(env.connection(timeout="fast")),
        BsgConfigError,
        "Connection 'bsg_case': extra timeout must be a number greater than 0, got 'fast'.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-timeout-object",
        lambda env: settings(env.connection(timeout={"connect": 5})),
        BsgConfigError,
        "extra timeout must be a number greater than 0, got {'connect': 5}.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-timeout-zero",
        lambda env: settings(env.connection(timeout=0)),
        BsgConfigError,
        "extra timeout must be a number greater than 0, got 0.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-max-retries-fraction",
        lambda env: settings(env.connection(max_retries=2.5)),
        BsgConfigError,
        "extra max_retries must be a whole number at least 0, got 2.5.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-max-retries-negative",
        lambda env: settings(env.connection(max_retries=-1)),
        BsgConfigError,
        "extra max_retries must be a whole number at least 0, got -1.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-retry-max-wait-list",
        lambda env: settings(env.connection(retry_max_wait=[1])),
        BsgConfigError,
        "extra retry_max_wait must be a number at least 0, got [1].",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-rate-boolean",
        lambda env: settings(env.connection(max_requests_per_second=True)),
        BsgConfigError,
        "extra max_requests_per_second must be a number greater than 0, got True.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-timezone-number",
        lambda env: settings(env.connection(api_timezone=3)),
        BsgConfigError,
        "extra api_timezone must be an IANA name such as 'UTC', got 3.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-timezone-unknown",
        lambda env: settings(env.connection(api_timezone="Mars/Olympus_Mons")),
        BsgConfigError,
        "Unknown API timezone 'Mars/Olympus_Mons': use an IANA name such as 'UTC' or 'Europe/Berlin'.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-unknown-field",
        lambda env: settings(env.connection(time_out=5)),
        BsgConfigError,
        "Connection 'bsg_case' has unknown extra field(s) time_out; the bsg connection knows "
        "api_timezone, timeout, max_retries, retry_max_wait, max_requests_per_second, max_concurrency. "
        "Remove or rename them.",
        "env-var connection, BsgHook.settings",
    ),
    Case(
        "connection-extra-unknown-field-async",
        lambda env: async_settings(env.connection(time_out=5)),
        BsgConfigError,
        "has unknown extra field(s) time_out",
        "env-var connection, BsgAsyncHook.get_settings",
    ),
    Case(
        "connection-extra-not-an-object",
        # Airflow 3.0 refuses such an env-var connection itself, so this goes through the pure reader.
        lambda env: BsgConnectionSettings.from_fields("bsg_case", host=None, password="live_k", extra=[1, 2]),
        BsgConfigError,
        "Connection 'bsg_case': extra must be a JSON object, got list.",
        "BsgConnectionSettings.from_fields (pure)",
    ),
    Case(
        "connection-extra-not-json",
        # Airflow 3.0 refuses such an env-var connection itself; the hook hands conn.extra over as text.
        lambda env: BsgConnectionSettings.from_fields(
            "bsg_case", host=None, password="live_k", extra="{timeout: 5}"
        ),
        BsgConfigError,
        "Connection 'bsg_case': extra is not valid JSON (Expecting property name enclosed in double quotes: "
        'line 1 column 2 (char 1)). Write it as a JSON object, for example {"api_timezone": "UTC", '
        '"timeout": 30}.',
        "BsgConnectionSettings.from_fields (pure)",
    ),
    Case(
        "connection-undefined",
        lambda env: settings("bsg_not_defined_anywhere"),
        AirflowNotFoundException,
        "The conn_id `bsg_not_defined_anywhere` isn't defined",
        "BsgHook.settings (Airflow's own error)",
    ),
    Case(
        "connection-wrong-key",
        lambda env: BsgHook(
            env.connection(host=env.sim.url, api_key="live_WRONG", **FAST_RETRY_EXTRAS)
        ).get_campaign(1),
        BsgAuthError,
        "BSG One API refused POST /api/auth/login (login) (HTTP 401: Invalid credentials.); "
        "check the API key in the connection's password field.",
        "simulator: login answers 401 (no retry)",
        requests=1,
    ),
    # -- operator: __init__ (literal arguments, at DAG parse time) or execute() (rendered ones) ------
    Case(
        "operator-unknown-format",
        lambda env: operator(env, file_format="parquet"),
        BsgConfigError,
        "file_format must be one of jsonl, csv (or None to infer it from the path's suffix), got 'parquet'.",
        "operator __init__",
        requests=0,
    ),
    Case(
        "operator-format-not-inferable",
        lambda env: run_operator(env, output_path=env.path("campaigns.txt")),
        AirflowFailException,
        "Cannot tell the file format of 'campaigns.txt': end the path in .jsonl or .csv (optionally "
        "followed by .gz), or pass file_format='jsonl' or 'csv'.",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-format-contradicts-suffix",
        lambda env: run_operator(env, output_path=env.path("campaigns.jsonl"), file_format="csv"),
        AirflowFailException,
        "file_format='csv' contradicts the path 'campaigns.jsonl', whose suffix .jsonl means jsonl",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-unsupported-scheme",
        lambda env: run_operator(env, output_path="s3://bucket/bsg/campaigns.jsonl"),
        AirflowFailException,
        "Airflow cannot write s3:// paths here (No filesystem registered for scheme s3); install "
        "apache-airflow-providers-amazon[s3fs] on the workers, or write to another scheme.",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-scheme-without-provider",
        lambda env: run_operator(env, output_path="memory://bucket/campaigns.jsonl"),
        AirflowFailException,
        "Airflow cannot write memory:// paths here (No filesystem registered for scheme memory); "
        "install the Airflow provider that registers it on the workers, or write to another scheme.",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-path-without-scheme",
        lambda env: run_operator(env, output_path="/data/bsg/campaigns.jsonl"),
        AirflowFailException,
        "output_path '/data/bsg/campaigns.jsonl' has no scheme; give a URL such as "
        "file:///data/bsg/campaigns.jsonl",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-path-is-a-directory",
        lambda env: run_operator(env, output_path=env.path("")),
        AirflowFailException,
        "names a directory; end it with a file name.",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-path-wrong-type",
        lambda env: run_operator(env, output_path=20250601),
        AirflowFailException,
        "output_path must be a URL string or an ObjectStoragePath, got int.",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-page-size-too-large",
        lambda env: operator(env, page_size=1000),
        BsgConfigError,
        "page_size must be from 30 to 500 (the API's page[limit] range), got 1000.",
        "operator __init__",
        requests=0,
    ),
    Case(
        "operator-page-size-too-small",
        lambda env: operator(env, page_size=29),
        BsgConfigError,
        "page_size must be from 30 to 500 (the API's page[limit] range), got 29.",
        "operator __init__",
        requests=0,
    ),
    Case(
        "operator-page-size-text",
        lambda env: operator(env, page_size="500"),
        BsgConfigError,
        "page_size must be an integer from 30 to 500, got '500'.",
        "operator __init__",
        requests=0,
    ),
    Case(
        "operator-start-after-end",
        lambda env: run_operator(env, start="2025-06-02T00:00:00Z", end="2025-06-01T00:00:00Z"),
        AirflowFailException,
        "start 2025-06-02T00:00:00+00:00 is after end 2025-06-01T00:00:00+00:00; "
        "the interval [start, end) needs start before end.",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-start-equals-end",
        lambda env: run_operator(env, start="2025-06-01T00:00:00Z", end="2025-06-01T00:00:00Z"),
        AirflowFailException,
        "The interval to extract is empty: start and end are both 2025-06-01T00:00:00+00:00",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-zero-width-data-interval",
        lambda env: run_operator(env, ZERO_WIDTH),
        AirflowFailException,
        "The run has no data interval to extract (data_interval_start == data_interval_end == "
        "2025-06-01T00:00:00+00:00)",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-no-data-interval",
        lambda env: run_operator(env, NO_INTERVAL),
        AirflowFailException,
        "The run has no data interval to extract (data_interval_start and data_interval_end are None)",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-naive-start-literal",
        lambda env: operator(env, start=datetime(2025, 6, 1)),
        BsgConfigError,
        "start 2025-06-01T00:00:00 has no timezone, so the instant it means is unknown",
        "operator __init__",
        requests=0,
    ),
    Case(
        "operator-naive-end-rendered",
        lambda env: run_operator(env, end="2025-06-02"),
        AirflowFailException,
        "end 2025-06-02T00:00:00 has no timezone, so the instant it means is unknown; add a UTC offset",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-start-not-a-timestamp",
        lambda env: run_operator(env, start="yesterday"),
        AirflowFailException,
        "start 'yesterday' is not an ISO 8601 timestamp; use a form such as '2024-05-01T00:00:00+00:00'.",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-start-wrong-type",
        lambda env: operator(env, start=20250601),
        BsgConfigError,
        "start must be a datetime or an ISO 8601 string with a UTC offset, got int 20250601.",
        "operator __init__",
        requests=0,
    ),
    Case(
        "operator-negative-lookback",
        lambda env: operator(env, lookback=timedelta(hours=-1)),
        BsgConfigError,
        "lookback must not be negative (it moves the interval's start back), got -1:00:00 (-3600 s).",
        "operator __init__",
        requests=0,
    ),
    Case(
        "operator-lookback-not-timedelta",
        lambda env: operator(env, lookback=2),
        BsgConfigError,
        "lookback must be a datetime.timedelta, e.g. timedelta(days=2), got 2.",
        "operator __init__",
        requests=0,
    ),
    Case(
        "operator-unknown-campaign-type",
        lambda env: operator(env, campaign_type="fax"),
        BsgConfigError,
        "campaign_type must be one of sms, rcs, whatsapp, got 'fax'.",
        "operator __init__",
        requests=0,
    ),
    Case(
        "operator-unknown-campaign-type-rendered",
        lambda env: run_operator(env, campaign_type="SMS"),
        AirflowFailException,
        "campaign_type must be one of sms, rcs, whatsapp, got 'SMS'.",
        "operator execute()",
        requests=0,
    ),
    Case(
        "operator-connection-without-key",
        lambda env: run_operator(env, bsg_conn_id=env.raw_connection(host=env.sim.url)),
        AirflowFailException,
        "Connection 'bsg_case' has no API key.",
        "operator execute()",
        requests=0,
    ),
    # -- sensor: __init__ (literal arguments) or execute() (rendered campaign_id) ------------------
    Case(
        "sensor-id-zero",
        lambda env: sensor(env, campaign_id=0),
        BsgConfigError,
        "campaign_id must be a campaign id or a list of ids after rendering, got 0: it is not a "
        "positive integer id.",
        "sensor __init__",
        requests=0,
    ),
    Case(
        "sensor-id-negative",
        lambda env: sensor(env, campaign_id=-7),
        BsgConfigError,
        "campaign_id must be a campaign id or a list of ids after rendering, got -7: it is not a "
        "positive integer id.",
        "sensor __init__",
        requests=0,
    ),
    Case(
        "sensor-id-literal-text",
        lambda env: sensor(env, campaign_id="abc"),
        BsgConfigError,
        "got 'abc': it is not a positive integer id.",
        "sensor __init__",
        requests=0,
    ),
    Case(
        "sensor-id-literal-fraction",
        lambda env: sensor(env, campaign_id=1.5),
        BsgConfigError,
        "got 1.5: it is not a positive integer id.",
        "sensor __init__",
        requests=0,
    ),
    Case(
        "sensor-id-text",
        lambda env: run_sensor(env, "abc"),
        AirflowFailException,
        "campaign_id must be a campaign id or a list of ids after rendering, got 'abc': it is not a "
        "positive integer id. Accepted: 123, '123', [123, 456]",
        "sensor execute()",
        requests=0,
    ),
    Case(
        "sensor-id-empty-text",
        lambda env: run_sensor(env, ""),
        AirflowFailException,
        "got '': it is not a positive integer id.",
        "sensor execute()",
        requests=0,
    ),
    Case(
        "sensor-id-none",
        lambda env: run_sensor(env, None),
        AirflowFailException,
        "got None: it is not a positive integer id.",
        "sensor execute()",
        requests=0,
    ),
    Case(
        "sensor-id-fraction",
        lambda env: run_sensor(env, 12.5),
        AirflowFailException,
        "got 12.5: it is not a positive integer id.",
        "sensor execute()",
        requests=0,
    ),
    Case(
        "sensor-id-boolean",
        lambda env: run_sensor(env, True),
        AirflowFailException,
        "got True: it is not a positive integer id.",
        "sensor execute()",
        requests=0,
    ),
    Case(
        "sensor-id-list-bad-item",
        lambda env: run_sensor(env, "[1, 'x']"),
        AirflowFailException,
        "got [1, 'x']: item 1 ('x') is not a positive integer id.",
        "sensor execute()",
        requests=0,
    ),
    Case(
        "sensor-id-list-unparsable",
        lambda env: run_sensor(env, "[1, 2"),
        AirflowFailException,
        "got '[1, 2': it looks like a list but does not parse as one.",
        "sensor execute()",
        requests=0,
    ),
    Case(
        "sensor-id-empty-list-deferrable",
        lambda env: run_sensor(env, [], deferrable=True),
        AirflowFailException,
        "campaign_id is an empty list; give at least one campaign id.",
        "sensor execute() (deferrable)",
        requests=0,
    ),
    Case(
        "sensor-id-mapping-deferrable",
        lambda env: run_sensor(env, {"id": 5}, deferrable=True),
        AirflowFailException,
        "got {'id': 5}: it is not a positive integer id.",
        "sensor execute() (deferrable)",
        requests=0,
    ),
    Case(
        "sensor-status-unknown-target",
        lambda env: sensor(env, target_statuses=("finished",)),
        BsgConfigError,
        "target_statuses contains 'finished', which is not a BSG campaign status; use some of creation, "
        "moderation, scheduled, sending, paused, stopped, done, spam.",
        "sensor __init__",
        requests=0,
    ),
    Case(
        "sensor-status-unknown-failure",
        lambda env: sensor(env, failure_statuses=("failed",)),
        BsgConfigError,
        "failure_statuses contains 'failed', which is not a BSG campaign status",
        "sensor __init__",
        requests=0,
    ),
    Case(
        "sensor-status-empty-target",
        lambda env: sensor(env, target_statuses=()),
        BsgConfigError,
        "target_statuses is empty, so the wait could never succeed; name at least one status, "
        "such as ('done', 'stopped').",
        "sensor __init__",
        requests=0,
    ),
    Case(
        "sensor-status-in-both-sets",
        lambda env: sensor(env, failure_statuses=("spam", "done")),
        BsgConfigError,
        "'done' is in both target_statuses and failure_statuses; a status can either end the wait "
        "successfully or fail it, not both.",
        "sensor __init__",
        requests=0,
    ),
    Case(
        "sensor-status-not-a-list",
        lambda env: sensor(env, target_statuses=5),
        BsgConfigError,
        "target_statuses must be a list of campaign statuses, got 5.",
        "sensor __init__",
        requests=0,
    ),
    Case(
        "sensor-unknown-campaign",
        lambda env: sensor(env, campaign_id=MISSING_ID).poke({}),
        AirflowFailException,
        f"BSG campaign {MISSING_ID} was not found (HTTP 404 from GET /api/campaigns/{MISSING_ID} through "
        "connection 'bsg_test'). Check the id, and that the connection's API key belongs to the account",
        "simulator: get answers 404 (no retry)",
        requests=2,
    ),
    # -- trigger: built by the sensor, or by the triggerer from its serialized kwargs ---------------
    Case(
        "trigger-unknown-status",
        lambda env: trigger(target_statuses=["finished"]),
        BsgConfigError,
        "target_statuses contains 'finished', which is not a BSG campaign status",
        "trigger __init__",
    ),
    Case(
        "trigger-naive-deadline",
        lambda env: trigger(deadline="2030-01-01T00:00:00"),
        BsgConfigError,
        "deadline must carry a UTC offset, got '2030-01-01T00:00:00'.",
        "trigger __init__",
    ),
    Case(
        "trigger-id-text",
        lambda env: trigger(["abc"]),
        BsgConfigError,
        "A campaign id must be a positive integer, got 'abc'.",
        "trigger __init__",
    ),
    Case(
        "trigger-id-zero",
        lambda env: trigger([0]),
        BsgConfigError,
        "A campaign id must be a positive integer, got 0.",
        "trigger __init__",
    ),
    Case(
        "trigger-deadline-not-iso",
        lambda env: trigger(deadline="tomorrow"),
        BsgConfigError,
        "deadline must be an ISO 8601 instant with a UTC offset, got 'tomorrow'.",
        "trigger __init__",
    ),
    Case(
        "trigger-poll-interval-text",
        lambda env: trigger(poll_interval="fast"),
        BsgConfigError,
        "poll_interval must be a number of seconds above 0, got 'fast'.",
        "trigger __init__",
    ),
    # -- hook arguments ----------------------------------------------------------------------------
    Case(
        "hook-campaign-type-unknown",
        lambda env: list(BsgHook(env.conn_id).iter_campaigns(DAY_START, DAY_END, campaign_type="email")),
        BsgConfigError,
        "campaign_type must be one of sms, rcs, whatsapp, got 'email'.",
        "BsgHook.iter_campaigns",
        requests=0,
    ),
    Case(
        "hook-page-size-out-of-range",
        lambda env: list(BsgHook(env.conn_id).iter_campaigns(DAY_START, DAY_END, page_size=10_000)),
        BsgConfigError,
        "page_size must be from 30 to 500 (the API's page[limit] range), got 10000.",
        "BsgHook.iter_campaigns",
        requests=0,
    ),
    Case(
        "hook-campaign-id-text",
        lambda env: BsgHook(env.conn_id).get_campaign("12a"),
        BsgConfigError,
        "A campaign id must be a positive integer, got '12a'.",
        "BsgHook.get_campaign",
        requests=0,
    ),
    Case(
        "hook-naive-start",
        lambda env: list(BsgHook(env.conn_id).iter_campaigns(datetime(2025, 6, 1), DAY_END)),
        BsgConfigError,
        "start 2025-06-01T00:00:00 has no timezone; pass an aware datetime",
        "BsgHook.iter_campaigns",
        requests=0,
    ),
    Case(
        "hook-start-after-end",
        lambda env: list(BsgHook(env.conn_id).iter_campaigns(DAY_END, DAY_START)),
        BsgConfigError,
        "start 2025-06-02T00:00:00+00:00 is after end 2025-06-01T00:00:00+00:00.",
        "BsgHook.iter_campaigns",
        requests=0,
    ),
    # -- API answers through the real simulator -------------------------------------------------------
    Case(
        "api-wrong-content-type",
        lambda env: get_with_fault(env, "html"),
        BsgMalformedResponseError,
        "with HTTP 200 but Content-Type 'text/html' instead of JSON (a proxy or maintenance page?).",
        "simulator: every get answers an HTML page (outlasts the retries)",
        requests=1 + ATTEMPTS,
    ),
    Case(
        "api-truncated-json",
        lambda env: get_with_fault(env, "malformed_json"),
        BsgMalformedResponseError,
        "with HTTP 200 and a body that is not valid JSON",
        "simulator: every get answers truncated JSON (outlasts the retries)",
        requests=1 + ATTEMPTS,
    ),
    Case(
        "api-server-error-persists",
        lambda env: list_with_fault(env, "status", status=503),
        BsgServerError,
        "BSG One API answered HTTP 503 to GET /api/campaigns (list)",
        "simulator: every list answers 503 (outlasts the retries)",
        requests=1 + ATTEMPTS,
    ),
    Case(
        "api-rate-limit-persists",
        lambda env: list_with_fault(env, "status", status=429, retry_after=1),
        BsgRateLimitError,
        "BSG One API answered HTTP 429 to GET /api/campaigns (list)",
        "simulator: every list answers 429 with Retry-After (outlasts the retries)",
        requests=1 + ATTEMPTS,
    ),
    Case(
        "api-validation-error",
        lambda env: list_with_fault(env, "status", status=422),
        BsgValidationError,
        "BSG One API rejected GET /api/campaigns (list) (HTTP 422:",
        "simulator: list answers 422 (no retry)",
        requests=2,
    ),
    Case(
        "api-unknown-campaign",
        lambda env: BsgHook(env.conn_id).get_campaign(MISSING_ID),
        BsgNotFoundError,
        f"BSG One API found nothing at GET /api/campaigns/{MISSING_ID} (get) (HTTP 404:",
        "simulator: get answers 404 (no retry)",
        requests=2,
    ),
    # -- API answers the simulator never sends: the pure readers -------------------------------------
    Case(
        "api-unknown-status",
        lambda env: unknown_status_warning(),
        WARNS,
        "BSG campaign 42 has status 'archived', which this provider does not know (known: creation, "
        "moderation, scheduled, sending, paused, stopped, done, spam); still waiting for done or stopped.",
        "statuses.StatusWatch + log_observation (pure; warning, the wait goes on)",
    ),
    Case(
        "api-record-without-id",
        lambda env: api.parse_campaign_page(page([{"name": "x"}])),
        BsgMalformedResponseError,
        "BSG One API's list answer is not what the API documents: "
        "a campaign whose id is None, not an integer.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-record-id-text",
        lambda env: api.parse_campaign_page(page([{"id": "12"}])),
        BsgMalformedResponseError,
        "a campaign whose id is '12', not an integer.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-record-id-fraction",
        lambda env: api.parse_campaign_page(page([{"id": 12.5}])),
        BsgMalformedResponseError,
        "a campaign whose id is 12.5, not an integer.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-record-not-an-object",
        lambda env: api.parse_campaign_page(page(["12"])),
        BsgMalformedResponseError,
        "a campaign that is not an object (str).",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-data-not-a-list",
        lambda env: api.parse_campaign_page(page({"id": 1}, total=1)),
        BsgMalformedResponseError,
        "'data' that is dict, not a list.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-data-missing",
        lambda env: api.parse_campaign_page({"meta": {"page": {"total": 0, "offset": 0, "limit": 30}}}),
        BsgMalformedResponseError,
        "'data' that is NoneType, not a list.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-negative-total",
        lambda env: api.parse_campaign_page(page([], total=-1)),
        BsgMalformedResponseError,
        "meta.page.total = -1, not a non-negative integer.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-missing-total",
        lambda env: api.parse_campaign_page(page([], total=None)),
        BsgMalformedResponseError,
        "meta.page.total = None, not a non-negative integer.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-total-as-text",
        lambda env: api.parse_campaign_page(page([], total="10")),
        BsgMalformedResponseError,
        "meta.page.total = '10', not a non-negative integer.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-missing-meta",
        lambda env: api.parse_campaign_page({"data": []}),
        BsgMalformedResponseError,
        "no 'meta.page' object.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-page-not-an-object",
        lambda env: api.parse_campaign_page([]),
        BsgMalformedResponseError,
        "a list instead of an object.",
        "api.parse_campaign_page (pure)",
    ),
    Case(
        "api-campaign-data-null",
        lambda env: api.parse_campaign({"data": None}),
        BsgMalformedResponseError,
        "BSG One API's get answer is not what the API documents: "
        "a campaign that is not an object (NoneType).",
        "api.parse_campaign (pure)",
    ),
    Case(
        "api-campaign-without-id",
        lambda env: api.parse_campaign({"data": {"status": "done"}}),
        BsgMalformedResponseError,
        "a campaign whose id is None, not an integer.",
        "api.parse_campaign (pure)",
    ),
    Case(
        "api-login-without-token",
        lambda env: api.parse_token({"token": "a.b.c"}),
        BsgMalformedResponseError,
        "BSG One API's login answer is not what the API documents: no token in the 'bearer' field.",
        "api.parse_token (pure)",
    ),
    Case(
        "api-content-type-text-plain",
        lambda env: api.read_answer(LIST, 200, b"{}", content_type="text/plain; charset=utf-8"),
        BsgMalformedResponseError,
        "BSG One API answered GET /api/campaigns with HTTP 200 but Content-Type 'text/plain' instead of JSON",
        "api.read_answer (pure)",
    ),
    Case(
        "api-error-without-json-body",
        lambda env: api.read_answer(LIST, 400, b"<html>Bad Request</html>", content_type="text/html"),
        BsgApiError,
        "BSG One API answered HTTP 400 to GET /api/campaigns (list): no message.",
        "api.read_answer (pure)",
    ),
    Case(
        "api-timestamp-not-a-timestamp",
        lambda env: RecordShaper().json_record({"id": 7, "created_at": "yesterday"}),
        BsgMalformedResponseError,
        "Campaign 7 has created_at 'yesterday', which is not a timestamp (the API documents "
        "'yyyy-mm-dd hh:mm:ss' or ISO 8601). To write the API's strings unchanged, "
        "set convert_timestamps=False.",
        "records.RecordShaper (pure)",
    ),
]


def _params() -> list[Any]:
    return [pytest.param(case, id=case.case_id) for case in CASES]


@pytest.fixture
def env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Env:
    return Env(request, monkeypatch, tmp_path)


@pytest.mark.parametrize("case", _params())
def test_bad_input(case: Case, env: Env, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]):
    caplog.set_level(logging.INFO)
    if isinstance(case.expected, type):
        with pytest.raises(BaseException) as caught:
            case.make_callable(env)
        error = caught.value
        assert not isinstance(error, (KeyError, TypeError, AttributeError, AssertionError)), (
            f"{case.case_id} ended in a bare {type(error).__name__}: {error}"
        )
        assert isinstance(error, case.expected), f"{type(error).__name__}: {error}"
        assert case.message in str(error)
    else:
        value = case.make_callable(env)
        if case.expected == WARNS:
            out, err = capfd.readouterr()
            # Airflow 3.0 logs through the logging module, 3.1+ through structlog to stdout.
            logged = caplog.text + out + err
            assert case.message in logged
            assert "WARNING" in logged.upper()
        else:
            assert case.message in str(value)
    if case.requests is not None:
        simulated = "simulator" in env.request.fixturenames
        assert (env.sim.count("any") if simulated else 0) == case.requests


def test_the_matrix_is_large_and_named_uniquely():
    ids = [case.case_id for case in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 35
    prefixes = {case_id.split("-")[0] for case_id in ids}
    assert prefixes == {"connection", "operator", "sensor", "trigger", "hook", "api"}


def test_every_expected_error_is_one_a_user_can_act_on():
    for case in CASES:
        if isinstance(case.expected, type):
            assert issubclass(case.expected, ALLOWED_ERRORS), case.case_id
            assert case.message.strip(), case.case_id
        else:
            assert case.expected in (WARNS, RETURNS), case.case_id
