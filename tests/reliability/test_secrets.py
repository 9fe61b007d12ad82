"""
The secrets canary: a recognisable API key goes through every path, and neither it nor any
token the simulator issued may turn up anywhere a person or another system can read.

The places searched: captured stdout/stderr and log records, the text (and traceback) of
every exception, every XCom value and rendered template field the runs left in the metadata
DB, trigger kwargs (serialized and as stored), and the simulator's request log. Tokens are
JWTs, so a JWT-shaped regex finds any of them. Each test also plants a control string through
the same channels, unregistered with any masker, and checks that the search finds it, so a
silent search cannot pass for a clean one. Outside a task Airflow's masker is not active,
so the direct hook and operator runs show what the provider itself emits, unredacted.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import traceback
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from airflow import __version__ as airflow_version
from airflow.providers.common.compat.sdk import DAG, TaskDeferred
from packaging.version import Version

from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.hooks.bsg_async import BsgAsyncHook
from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from bsg_provider.sensors.campaign import BsgCampaignStatusSensor
from bsg_provider.simulator import BsgSimulator
from bsg_provider.triggers.campaign import BsgCampaignStatusTrigger
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env
from tests.dag_helpers import register_dag, task_states
from tests.sensors.conftest import parsed_reschedule_dates  # noqa: F401 -- fixture, used by name
from tests.sensors.status_flip import StatusFlip

CANARY = "live_CANARY_7d3f9a1e5b"
#: Shaped like a key, registered with no masker, sent through the same channels: the search must find it.
CONTROL = "live_CONTROL_2e8c4a6f0d"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
CONN_ID = "bsg_canary"
MISSING_ID = 987654321
UTC = timezone.utc
#: Tokens must be renewed 30 s before they expire: with 31 s, every second brings a refresh.
TOKEN_TTL = 31.0
#: Airflow 3.0's in-process supervisor (dag.test only) echoes each value it is asked to mask at
#: debug level, whatever the log level: that is Airflow registering the secret, not the provider
#: leaking it, so exactly those echoes are blanked before the search.
AIRFLOW_MASK_ECHO = re.compile(r"MaskSecret\(value=(?:'[^']*'|\"[^\"]*\")")
AIRFLOW_3_0 = Version(airflow_version).release[:2] == (3, 0)


class Evidence:
    """
    Every text a secret could leak into, labelled with where it came from.

    :param caplog: pytest's log capture (Airflow 3.0 logs through :mod:`logging`).
    :param capfd: pytest's output capture (Airflow 3.1+ logs through structlog to stdout).
    """

    def __init__(self, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> None:
        self._caplog = caplog
        self._capfd = capfd
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, text: Any) -> None:
        self.texts.append((where, text if isinstance(text, str) else json.dumps(text, default=repr)))

    def add_error(self, where: str, error: BaseException) -> None:
        """The message, repr and full traceback, causes and contexts included."""
        self.add(where, f"{error!s}\n{error!r}\n" + "".join(traceback.format_exception(error)))

    def read_output(self) -> None:
        out, err = self._capfd.readouterr()
        for where, text in (("stdout", out), ("stderr", err), ("log records", self._caplog.text)):
            self.add(where, AIRFLOW_MASK_ECHO.sub("MaskSecret(value=<echo>", text))
        self._caplog.clear()

    def where(self, needle: str | re.Pattern[str]) -> list[str]:
        """The sources holding ``needle``."""
        found = (
            (lambda t: bool(needle.search(t))) if isinstance(needle, re.Pattern) else (lambda t: needle in t)
        )
        return sorted({where for where, text in self.texts if found(text)})

    def assert_no_secret(self) -> None:
        assert self.where(CANARY) == [], "the API key leaked"
        leaked = {where: JWT.findall(text) for where, text in self.texts if JWT.search(text)}
        assert leaked == {}, "a token leaked"


@pytest.fixture
def canary(monkeypatch: pytest.MonkeyPatch) -> Iterator[BsgSimulator]:
    """A simulator that accepts only the canary key, with tokens that need renewal within a second."""
    with BsgSimulator(campaigns=1000, seed=23, api_key=CANARY, token_ttl=TOKEN_TTL) as sim:
        name, value = bsg_connection_env(CONN_ID, host=sim.url, api_key=CANARY, **FAST_RETRY_EXTRAS)
        monkeypatch.setenv(name, value)
        yield sim


@pytest.fixture
def evidence(caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]) -> Evidence:
    # INFO, as Airflow logs by default; the direct hook and operator tests lower it to DEBUG.
    caplog.set_level(logging.INFO)
    return Evidence(caplog, capfd)


def failing(evidence: Evidence, where: str, action: Callable[[], Any]) -> BaseException:
    """Run ``action``, which must fail; keep its error as evidence."""
    with pytest.raises(Exception) as caught:
        action()
    evidence.add_error(where, caught.value)
    return caught.value


def settled_interval(sim: BsgSimulator, days: int) -> tuple[datetime, datetime]:
    end = sim.now().replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    return end - timedelta(days=days), end


def run_records(dag_run: Any) -> list[tuple[str, Any]]:
    """What a run left in the metadata DB: XCom values, rendered fields, next_kwargs, our triggers."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import Trigger
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    keys = {"dag_id": dag_run.dag_id, "run_id": dag_run.run_id}
    records: list[tuple[str, Any]] = []
    with create_session() as session:
        for row in session.query(XComModel).filter_by(**keys):
            records.append((f"xcom {row.task_id}.{row.key}", row.value))
        for row in session.query(RenderedTaskInstanceFields).filter_by(**keys):
            records.append((f"rendered fields {row.task_id}", row.rendered_fields))
        for ti in session.query(TaskInstance).filter_by(**keys):
            records.append((f"next_kwargs {ti.task_id}", ti.next_kwargs))
        for trigger in session.query(Trigger).filter(Trigger.classpath.like("bsg_provider.%")):
            records.append((f"trigger {trigger.id}", [trigger.classpath, trigger.kwargs]))
    return records


def add_run(evidence: Evidence, dag_run: Any) -> list[tuple[str, Any]]:
    records = run_records(dag_run)
    for where, value in records:
        evidence.add(where, value)
    evidence.read_output()
    return records


def _log_control(marker: str) -> str:
    """A task that logs, renders and returns the control string, as a leaking task would the key."""
    logging.getLogger("bsg_provider.tests.control").warning("control marker %s", marker)
    return marker


def control_task() -> Any:
    from airflow.providers.standard.operators.python import PythonOperator

    return PythonOperator(
        task_id="control", python_callable=_log_control, op_kwargs={"marker": "{{ params.marker }}"}
    )


def assert_channels_live(evidence: Evidence, records: list[tuple[str, Any]]) -> None:
    """The control string reached the log, its XCom and its rendered fields: those searches see."""
    found = evidence.where(CONTROL)
    assert "xcom control.return_value" in found
    assert "rendered fields control" in found
    assert {"stdout", "log records"} & set(found)


# -- (a) the hooks, directly ------------------------------------------------------------------------


def test_hooks_through_success_and_failure_emit_no_secret(canary, evidence, caplog):
    caplog.set_level(logging.DEBUG)
    sim = canary
    hook = BsgHook(CONN_ID)
    start, end = settled_interval(sim, 40)
    assert len(list(hook.iter_campaigns(start, end, page_size=30))) > 30
    campaign_id = min(sim.ground_truth_ids(start, end))
    assert hook.get_campaign(campaign_id)["id"] == campaign_id
    evidence.add("repr(settings)", repr(hook.settings))

    sim.inject("expire_token", endpoint="get")  # a revoked token: one new login, then the replay
    hook.get_campaign(campaign_id)
    sim.inject("status", endpoint="refresh", status=500)  # a failed refresh: log in again
    hook._token_expiry = datetime.now(UTC)
    hook.get_campaign(campaign_id)
    for kind, fault in [
        ("status", {"status": 503, "times": None}),
        ("status", {"status": 422}),
        ("html", {"times": None}),
        ("malformed_json", {"times": None}),
    ]:
        sim.clear_faults()
        sim.inject(kind, endpoint="get", **fault)
        failing(evidence, f"get with {kind} {fault}", lambda: hook.get_campaign(campaign_id))
    sim.clear_faults()
    failing(evidence, "unknown campaign", lambda: hook.get_campaign(MISSING_ID))
    sim.inject("status", endpoint="login", status=401, times=None)
    failing(evidence, "login refused", lambda: BsgHook(CONN_ID).get_campaign(campaign_id))

    async def use_async_hook() -> None:
        async with BsgAsyncHook(CONN_ID) as async_hook:
            evidence.add("repr(async settings)", repr(await async_hook.get_settings()))
            failing_async = sim.inject("status", endpoint="login", status=401)
            with pytest.raises(Exception) as caught:
                await async_hook.get_campaign(campaign_id)
            evidence.add_error("async login refused", caught.value)
            assert failing_async.hits == 1
            sim.clear_faults()
            assert (await async_hook.get_campaign(campaign_id))["id"] == campaign_id
            sim.inject("expire_token", endpoint="get")
            assert (await async_hook.get_campaign(campaign_id))["id"] == campaign_id
            sim.inject("status", endpoint="get", status=503, times=None)
            with pytest.raises(Exception) as caught:
                await async_hook.get_campaign(campaign_id)
            evidence.add_error("async get 503", caught.value)

    sim.clear_faults()
    asyncio.run(use_async_hook())
    evidence.add("simulator request log", [repr(record) for record in sim.requests])

    hook.log.warning("control marker %s", CONTROL)
    evidence.read_output()
    assert sim.count("login") >= 5 and sim.count("refresh") >= 1
    assert "stdout" in evidence.where(CONTROL) or "log records" in evidence.where(CONTROL)
    assert len(evidence.where("BSG One API answered HTTP 503")) >= 2  # the failures were captured
    evidence.assert_no_secret()


# -- (b) the operator, directly and under dag.test() --------------------------------------------------


def test_operator_execute_through_success_and_failure_emits_no_secret(canary, evidence, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    sim = canary
    start, end = settled_interval(sim, 30)

    def extract(name: str) -> dict[str, Any]:
        operator = BsgExtractCampaignsOperator(
            task_id="extract", output_path=f"file://{tmp_path}/{name}", bsg_conn_id=CONN_ID, page_size=30
        )
        return operator.execute({"data_interval_start": start, "data_interval_end": end})

    summary = extract("ok.jsonl")
    evidence.add("summary (XCom value)", summary)
    assert summary["records"] > 30
    sim.inject("status", endpoint="list", status=503, times=None, skip=1)
    failing(evidence, "extract with 503", lambda: extract("failing.jsonl"))
    sim.clear_faults()
    sim.inject("status", endpoint="login", status=401, times=None)
    failing(evidence, "extract with a refused key", lambda: extract("refused.jsonl"))

    evidence.read_output()
    assert sim.count("login") >= 3
    assert evidence.where("answered HTTP 503") and evidence.where("check the API key")
    evidence.assert_no_secret()


def test_operator_under_dag_test_leaves_no_secret(airflow_db, canary, evidence, tmp_path):
    from airflow.providers.standard.operators.python import PythonOperator

    sim = canary
    start, end = settled_interval(sim, 30)

    def extractor(task_id: str, **kwargs: Any) -> BsgExtractCampaignsOperator:
        return BsgExtractCampaignsOperator(
            task_id=task_id,
            output_path=f"file://{tmp_path}/{task_id}-{{{{ ds }}}}.jsonl",
            start="{{ params.start }}",
            end="{{ params.end }}",
            page_size=30,
            bsg_conn_id=CONN_ID,
            **kwargs,
        )

    def break_list() -> None:
        sim.inject("expire_token", endpoint="list")
        sim.inject("status", endpoint="list", status=503, times=None, skip=1)

    def refuse_login() -> None:
        sim.clear_faults()
        sim.inject("status", endpoint="login", status=401, times=None)

    params = {"marker": CONTROL, "start": start.isoformat(), "end": end.isoformat()}
    with DAG(
        "secrets_operator", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC), params=params
    ) as dag:
        (
            control_task()
            >> extractor("extract")
            >> PythonOperator(task_id="break_list", python_callable=break_list)
            >> extractor("extract_503")
            >> PythonOperator(task_id="refuse_login", python_callable=refuse_login, trigger_rule="all_done")
            >> extractor("extract_refused")
        )
    register_dag(dag)
    dag_run = dag.test(logical_date=datetime(2025, 6, 1, tzinfo=UTC))
    records = add_run(evidence, dag_run)

    assert task_states(dag_run) == {
        "control": "success",
        "extract": "success",
        "break_list": "success",
        "extract_503": "failed",
        "refuse_login": "success",
        "extract_refused": "failed",
    }
    assert "xcom extract.return_value" in {where for where, _ in records}
    assert "rendered fields extract" in {where for where, _ in records}
    assert sim.count("login") >= 2
    assert evidence.where("answered HTTP 503")
    assert_channels_live(evidence, records)
    evidence.assert_no_secret()


# -- (c) the sensor in every mode, under dag.test() ---------------------------------------------------

#: Per mode, the waits to run. Reschedule mode pokes through the same hook calls as poke mode, so it
#: runs the two outcomes only; an unknown id fails through the same path in the trigger as a 503.
SENSOR_SCENARIOS = {
    "poke": ["done", "spam", "missing", "503", "refused"],
    "reschedule": ["done", "spam"],
    "deferrable": ["done", "spam", "503", "refused"],
}
SENSOR_MODES = {
    "poke": {"mode": "poke"},
    "reschedule": {"mode": "reschedule"},
    "deferrable": {"deferrable": True},
}


@pytest.mark.usefixtures("parsed_reschedule_dates")
@pytest.mark.parametrize(
    "mode",
    [
        "poke",
        "reschedule",
        "deferrable",
    ],
)
def test_sensor_under_dag_test_leaves_no_secret(airflow_db, canary, evidence, mode):
    from airflow.providers.standard.operators.python import PythonOperator

    sim = canary
    scenarios = SENSOR_SCENARIOS[mode]
    done = sim.add_campaign(sim.now(), status="sending")["id"]
    spam = sim.add_campaign(sim.now(), status="moderation")["id"]
    # Moved only once the sensor has read them, so a pass means it really waited.
    flips = [StatusFlip(sim, done, "done", 1), StatusFlip(sim, spam, "spam", 1)]
    for flip in flips:
        flip.start()

    def sensor(task_id: str, campaign_id: Any, timeout: float = 30) -> BsgCampaignStatusSensor:
        return BsgCampaignStatusSensor(
            task_id=task_id,
            campaign_id=campaign_id,
            bsg_conn_id=CONN_ID,
            poke_interval=0.1,
            timeout=timeout,
            trigger_rule="all_done",
            **SENSOR_MODES[mode],
        )

    def break_get() -> None:
        sim.inject("status", endpoint="get", status=503, times=None)

    def refuse_login() -> None:
        sim.clear_faults()
        sim.inject("status", endpoint="login", status=401, times=None)

    steps = {
        "done": [sensor("wait_done", "{{ params.done }}")],
        "spam": [sensor("wait_spam", "{{ params.spam }}")],
        "missing": [sensor("wait_missing", MISSING_ID)],
        "503": [
            PythonOperator(task_id="break_get", python_callable=break_get, trigger_rule="all_done"),
            # A 503 is "not known yet": the sensor logs it and waits on until its timeout ends the task.
            sensor("wait_503", "{{ params.done }}", timeout=3),
        ],
        "refused": [
            PythonOperator(task_id="refuse_login", python_callable=refuse_login, trigger_rule="all_done"),
            sensor("wait_refused", "{{ params.done }}"),
        ],
    }
    params = {"marker": CONTROL, "done": done, "spam": spam}
    with DAG(
        f"secrets_sensor_{mode}", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC), params=params
    ) as dag:
        tasks = [control_task(), *(task for name in scenarios for task in steps[name])]
        for upstream, downstream in itertools.pairwise(tasks):
            upstream >> downstream
    register_dag(dag)
    try:
        dag_run = dag.test()
    finally:
        for flip in flips:
            flip.stop()
    records = add_run(evidence, dag_run)

    expected = {"control": "success", "wait_done": "success", "wait_spam": "failed"}
    if "missing" in scenarios:
        expected["wait_missing"] = "failed"
    if "refused" in scenarios:
        expected |= {"break_get": "success", "wait_503": "failed"}
        expected |= {"refuse_login": "success", "wait_refused": "failed"}
    assert task_states(dag_run) == expected
    assert all(flip.reads_before is not None for flip in flips), "a sensor did not wait"
    sources = {where for where, _ in records}
    assert {"xcom wait_done.return_value", "rendered fields wait_done"} <= sources
    if mode == "deferrable":
        assert any(where.startswith("trigger ") for where in sources), "no stored trigger was searched"
    assert sim.count("login") >= 1
    messages = {"missing": "was not found", "503": "answered HTTP 503", "refused": "check the API key"}
    for scenario, message in messages.items():
        if scenario in scenarios:
            assert evidence.where(message), f"the failure saying {message!r} was not captured"
    assert_channels_live(evidence, records)
    evidence.assert_no_secret()


# -- (d) triggers, serialized --------------------------------------------------------------------------


def test_serialized_triggers_hold_no_secret(canary, evidence):
    sim = canary
    campaign_id = sim.add_campaign(sim.now(), status="sending")["id"]
    BsgHook(CONN_ID).get_campaign(campaign_id)  # the key and a token are now known to the process
    built = BsgCampaignStatusTrigger([campaign_id], bsg_conn_id=CONN_ID, deadline="2030-01-01T00:00:00+00:00")
    sensor = BsgCampaignStatusSensor(
        task_id="wait", campaign_id=campaign_id, bsg_conn_id=CONN_ID, deferrable=True, timeout=60
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    for where, trigger in [("built trigger", built), ("sensor's trigger", deferred.value.trigger)]:
        text = json.dumps(trigger.serialize())
        assert CONN_ID in text  # the connection id travels, the connection does not
        evidence.add(where, text)
    evidence.add("deferral", repr(deferred.value))
    control = BsgCampaignStatusTrigger([campaign_id], bsg_conn_id=CONTROL)
    evidence.add("control trigger", json.dumps(control.serialize()))
    evidence.read_output()

    # The hook above, and the sensor's own poke before it deferred.
    assert sim.count("login") == 2
    assert evidence.where(CONTROL) == ["control trigger"]
    evidence.assert_no_secret()


# -- tracebacks rendered with their locals --------------------------------------------------------------


def test_tracebacks_with_locals_show_no_secret(canary, monkeypatch):
    """
    What Airflow 3.0 prints for a failed task in the console (and what error trackers that keep
    frame locals, such as Sentry, receive): the traceback with each frame's local variables.
    """
    import io

    import structlog

    sim = canary
    campaign_id = sim.add_campaign(sim.now(), status="done")["id"]
    # The formatter Airflow 3.0's console renderer uses (airflow/sdk/log.py), locals shown.
    render = structlog.dev.RichTracebackFormatter(
        color_system=None, width=200, extra_lines=0, max_frames=30, show_locals=True
    )
    name, value = bsg_connection_env("bsg_canary_bad_extra", host=sim.url, api_key=CANARY, timeout="fast")
    monkeypatch.setenv(name, value)
    sim.inject("status", endpoint="login", status=401)
    failures = {
        "login refused": lambda: BsgHook(CONN_ID).get_campaign(campaign_id),
        "bad extra": lambda: BsgHook("bsg_canary_bad_extra").settings,
        "503 on get": lambda: BsgHook(CONN_ID).get_campaign(campaign_id),
    }
    shown = {}
    for label, action in failures.items():
        if label == "503 on get":
            sim.inject("status", endpoint="get", status=503, times=None)
        with pytest.raises(Exception) as caught:
            action()
        error = caught.value
        buffer = io.StringIO()
        # From the frame below this test's own: the provider's and Airflow's frames.
        render(buffer, (type(error), error, error.__traceback__.tb_next))
        shown[label] = buffer.getvalue()
    assert "self = <bsg_provider.hooks.bsg.BsgHook" in shown["login refused"]  # locals are rendered
    assert CONTROL not in "".join(shown.values())
    assert {label: CANARY in text or bool(JWT.search(text)) for label, text in shown.items()} == {
        label: False for label in failures
    }
