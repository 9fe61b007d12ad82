"""BsgCampaignStatusSensor's own methods against the simulator: arguments, poke, deferral, resumption."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import (
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    PokeReturnValue,
    TaskDeferred,
)
from airflow.sdk.bases.operator import TRIGGER_FAIL_REPR, TriggerFailureReason

import bsg_provider.simulator.dataset as simulator_dataset
from bsg_provider.errors import BsgConfigError
from bsg_provider.hooks import metrics
from bsg_provider.sensors.campaign import BsgCampaignStatusSensor
from bsg_provider.triggers.campaign import BsgCampaignStatusTrigger
from tests.conftest import FAST_RETRY_EXTRAS, bsg_connection_env


def _times_logged(caplog, out: str, needle: str) -> int:
    """How often a message was logged: Airflow 3.0 logs through stdlib logging, 3.3 to stdout, or both."""
    return max(caplog.text.count(needle), out.count(needle))


def _sensor(conn_id: str = "bsg_default", **kwargs) -> BsgCampaignStatusSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("campaign_id", 1)
    return BsgCampaignStatusSensor(bsg_conn_id=conn_id, **kwargs)


class TestArguments:
    def test_defaults(self):
        sensor = _sensor()
        assert sensor.target_statuses == ("done", "stopped")
        assert sensor.failure_statuses == ("spam",)
        assert sensor.bsg_conn_id == "bsg_default"
        assert sensor.deferrable is False  # [operators] default_deferrable is off here
        assert BsgCampaignStatusSensor.template_fields == ("campaign_id",)

    @pytest.mark.parametrize(
        ("kwargs", "message"),
        [
            ({"target_statuses": ()}, "target_statuses is empty"),
            (
                {"failure_statuses": ("spam", "done")},
                "'done' is in both target_statuses and failure_statuses",
            ),
            ({"target_statuses": ("finished",)}, "target_statuses contains 'finished', which is not a BSG"),
            ({"failure_statuses": ("failed",)}, "failure_statuses contains 'failed', which is not a BSG"),
            ({"campaign_id": 0}, "got 0: it is not a positive integer id"),
            ({"campaign_id": -1}, "got -1: it is not a positive integer id"),
            ({"campaign_id": 1.5}, "got 1.5: it is not a positive integer id"),
            ({"campaign_id": True}, "got True: it is not a positive integer id"),
            ({"campaign_id": "abc"}, "got 'abc': it is not a positive integer id"),
            ({"campaign_id": [1, "x"]}, r"item 1 \('x'\) is not a positive integer id"),
            ({"campaign_id": []}, "empty list"),
        ],
    )
    def test_literal_mistakes_fail_when_the_dag_is_parsed(self, kwargs, message):
        with pytest.raises(BsgConfigError, match=message):
            _sensor(**kwargs)

    @pytest.mark.parametrize("campaign_id", [12, "12", " 12 ", [12, 13], "[12, 13]", "{{ params.id }}"])
    def test_ids_and_templates_are_accepted_when_the_dag_is_parsed(self, campaign_id):
        assert _sensor(campaign_id=campaign_id).campaign_id == campaign_id

    def test_an_xcom_reference_is_left_for_run_time(self):
        from airflow.providers.common.compat.sdk import DAG
        from airflow.providers.standard.operators.python import PythonOperator

        with DAG("ids_from_xcom", schedule=None):
            upstream = PythonOperator(task_id="send", python_callable=lambda: [1, 2])
            sensor = _sensor(campaign_id=upstream.output)
        assert sensor.campaign_id.operator is upstream  # kept as the reference, read at run time

    @pytest.mark.parametrize("deferrable", [False, True])
    @pytest.mark.parametrize(
        ("campaign_id", "message"),
        [
            ("abc", "'abc': it is not a positive integer id"),
            ("[1, 'x']", "item 1 ('x') is not a positive integer id"),
            ("", "'': it is not a positive integer id"),
            ([], "empty list"),
        ],
    )
    def test_a_bad_rendered_id_fails_before_any_request(
        self, simulator, bsg_conn_id, campaign_id, message, deferrable
    ):
        sensor = _sensor(bsg_conn_id, campaign_id="{{ x }}", deferrable=deferrable, poke_interval=0)
        sensor.campaign_id = campaign_id  # what rendering the template gave
        with pytest.raises(AirflowFailException, match=re.escape(message)):
            sensor.execute(context={})
        assert simulator.count("any") == 0


class TestPoke:
    def test_waits_then_returns_the_campaign(self, simulator, bsg_conn_id, caplog, capfd):
        campaign = simulator.add_campaign(simulator.now(), status="sending")
        sensor = _sensor(bsg_conn_id, campaign_id=str(campaign["id"]))
        with caplog.at_level(logging.INFO):
            assert sensor.poke({}) is False
            assert sensor.poke({}) is False
            simulator.set_status(campaign["id"], "done")
            result = sensor.poke({})
        assert isinstance(result, PokeReturnValue)
        assert result.is_done
        assert result.xcom_value == simulator.campaign(campaign["id"])
        assert simulator.count("login") == 1, "one hook, one token for every poke"
        out = capfd.readouterr().out
        assert _times_logged(caplog, out, f"BSG campaign {campaign['id']} has status sending.") == 1
        assert _times_logged(caplog, out, f"BSG campaign {campaign['id']} changed from sending to done.") == 1

    def test_a_list_returns_records_in_the_given_order_once_all_are_done(self, simulator, bsg_conn_id):
        first = simulator.add_campaign(simulator.now(), status="done")
        second = simulator.add_campaign(simulator.now(), status="scheduled")
        sensor = _sensor(bsg_conn_id, campaign_id=[second["id"], first["id"]])
        assert sensor.poke({}) is False
        assert sensor.poke({}) is False
        simulator.set_status(second["id"], "stopped")
        result = sensor.poke({})
        assert [c["id"] for c in result.xcom_value] == [second["id"], first["id"]]
        assert [c["status"] for c in result.xcom_value] == ["stopped", "done"]
        reads = [r.path for r in simulator.requests if r.endpoint == "get"]
        # The one already done was read once and remembered; the other once per poke.
        assert reads.count(f"/api/campaigns/{first['id']}") == 1
        assert reads.count(f"/api/campaigns/{second['id']}") == 3

    def test_a_failure_status_fails_without_retries_naming_campaign_and_status(self, simulator, bsg_conn_id):
        campaign = simulator.add_campaign(simulator.now(), status="spam")
        with pytest.raises(AirflowFailException, match=rf"BSG campaign {campaign['id']} has status 'spam'"):
            _sensor(bsg_conn_id, campaign_id=campaign["id"]).poke({})

    def test_custom_status_sets(self, simulator, bsg_conn_id):
        campaign = simulator.add_campaign(simulator.now(), status="paused")
        sensor = _sensor(
            bsg_conn_id,
            campaign_id=campaign["id"],
            target_statuses=("sending",),
            failure_statuses=("paused",),
        )
        with pytest.raises(AirflowFailException, match="'paused', one of the failure statuses"):
            sensor.poke({})
        simulator.set_status(campaign["id"], "sending")
        assert sensor.poke({}).xcom_value["status"] == "sending"

    def test_an_unknown_id_fails_saying_not_found(self, simulator, bsg_conn_id):
        with pytest.raises(AirflowFailException, match="BSG campaign 987654321 was not found"):
            _sensor(bsg_conn_id, campaign_id=987654321).poke({})
        assert simulator.count("get") == 1

    def test_a_connection_without_key_fails_without_task_retries(self, simulator, monkeypatch):
        monkeypatch.setenv("AIRFLOW_CONN_BSG_NOKEY", f'{{"conn_type": "bsg", "host": "{simulator.url}"}}')
        with pytest.raises(AirflowFailException, match="Connection 'bsg_nokey' has no API key"):
            _sensor("bsg_nokey", campaign_id=1).poke({})
        assert simulator.count("any") == 0

    def test_an_unknown_status_keeps_waiting_and_warns_once(
        self, simulator, bsg_conn_id, monkeypatch, caplog, capfd
    ):
        monkeypatch.setattr(simulator_dataset, "STATUSES", (*simulator_dataset.STATUSES, "archived"))
        campaign = simulator.add_campaign(simulator.now(), status="archived")
        sensor = _sensor(bsg_conn_id, campaign_id=campaign["id"])
        with caplog.at_level(logging.INFO):
            assert [sensor.poke({}) for _ in range(3)] == [False, False, False]
        out = capfd.readouterr().out
        assert _times_logged(caplog, out, "'archived', which this provider does not know") == 1

    def test_transient_errors_are_retried_by_the_hook(self, simulator, bsg_conn_id):
        campaign = simulator.add_campaign(simulator.now(), status="done")
        simulator.inject("status", endpoint="get", status=503, times=2)
        assert _sensor(bsg_conn_id, campaign_id=campaign["id"]).poke({}).is_done
        assert [r.status for r in simulator.requests if r.endpoint == "get"] == [503, 503, 200]

    def test_an_outage_beyond_the_retry_budget_means_not_known_yet(
        self, simulator, bsg_conn_id, caplog, capfd
    ):
        campaign = simulator.add_campaign(simulator.now(), status="sending")
        sensor = _sensor(bsg_conn_id, campaign_id=campaign["id"])
        assert sensor.poke({}) is False
        fault = simulator.inject("status", endpoint="get", status=503, times=None)
        budget = FAST_RETRY_EXTRAS["max_retries"] + 1
        with caplog.at_level(logging.INFO):
            assert sensor.poke({}) is False
            assert simulator.count("get") == 1 + budget
            # While the outage lasts, each poke tries once: the next poke is the next retry.
            assert [sensor.poke({}) for _ in range(3)] == [False] * 3
            assert simulator.count("get") == 1 + budget + 3
            simulator.clear_faults()
            simulator.set_status(campaign["id"], "done")
            result = sensor.poke({})
        assert fault.hits == budget + 3
        assert result.xcom_value == simulator.campaign(campaign["id"])
        out = capfd.readouterr().out
        assert _times_logged(caplog, out, "BSG One API did not answer (503)") == 1
        assert _times_logged(caplog, out, "BSG One API answers again, after 4 unanswered poll(s)") == 1

    @pytest.mark.parametrize(
        ("fault", "reason"),
        [
            ({"kind": "status", "status": 429}, "429"),
            ({"kind": "reset"}, "connection"),
            ({"kind": "malformed_json"}, "malformed_json"),
            ({"kind": "html"}, "not_json"),
        ],
    )
    def test_every_transient_failure_keeps_the_wait_going(
        self, simulator, bsg_conn_id, fault, reason, caplog, capfd
    ):
        campaign = simulator.add_campaign(simulator.now(), status="sending")
        spec = dict(fault)
        simulator.inject(spec.pop("kind"), endpoint="get", times=None, **spec)
        sensor = _sensor(bsg_conn_id, campaign_id=campaign["id"])
        with caplog.at_level(logging.INFO):
            assert sensor.poke({}) is False
        simulator.clear_faults()
        simulator.set_status(campaign["id"], "stopped")
        assert sensor.poke({}).xcom_value["status"] == "stopped"
        assert _times_logged(caplog, capfd.readouterr().out, f"BSG One API did not answer ({reason})") == 1

    def test_a_token_refused_after_a_fresh_login_fails_at_once(self, simulator, bsg_conn_id):
        campaign = simulator.add_campaign(simulator.now(), status="sending")
        simulator.inject("status", endpoint="get", status=401, times=None)
        with pytest.raises(AirflowFailException, match=r"refused GET /api/campaigns/\d+ .*HTTP 401"):
            _sensor(bsg_conn_id, campaign_id=campaign["id"]).poke({})
        # The first read, one fresh login, the replay: then the verdict, with no retries.
        assert [r.endpoint for r in simulator.requests] == ["login", "get", "login", "get"]

    def test_a_wrong_api_key_fails_at_once(self, simulator, monkeypatch):
        monkeypatch.setenv(*bsg_connection_env("bsg_wrong", host=simulator.url, api_key="test_wrong_key_1"))
        with pytest.raises(
            AirflowFailException, match="check the API key in the connection's password field"
        ):
            _sensor("bsg_wrong", campaign_id=1).poke({})
        assert simulator.count("login") == 1

    def test_polls_and_the_outcome_reach_airflow_metrics(self, simulator, bsg_conn_id, recording_stats):
        campaign = simulator.add_campaign(simulator.now(), status="sending")
        sensor = _sensor(bsg_conn_id, campaign_id=campaign["id"], mode="reschedule")
        sensor.poke({})
        simulator.set_status(campaign["id"], "stopped")
        sensor.poke({})
        assert recording_stats.tags_of(metrics.SENSOR_POLLS) == [{"mode": "reschedule"}] * 2
        assert recording_stats.tags_of(metrics.SENSOR_OUTCOMES) == [{"outcome": "success"}]


class TestDeferral:
    def test_execute_pokes_once_then_defers_with_an_absolute_deadline(self, simulator, bsg_conn_id):
        first = simulator.add_campaign(simulator.now(), status="sending")
        second = simulator.add_campaign(simulator.now(), status="scheduled")
        ids = f"[{first['id']}, {second['id']}, {first['id']}]"
        sensor = _sensor(
            bsg_conn_id,
            campaign_id=ids,
            deferrable=True,
            poke_interval=3,
            timeout=120,
            target_statuses=("done",),
            failure_statuses=("spam", "stopped"),
        )
        before = datetime.now(timezone.utc)
        with pytest.raises(TaskDeferred) as info:
            sensor.execute(context={})
        deferred = info.value
        assert deferred.method_name == "execute_complete"
        assert isinstance(deferred.trigger, BsgCampaignStatusTrigger)
        _, kwargs = deferred.trigger.serialize()
        deadline = datetime.fromisoformat(kwargs.pop("deadline"))
        assert before + timedelta(seconds=120) <= deadline
        assert deadline <= datetime.now(timezone.utc) + timedelta(seconds=120)
        # The scheduler's bound ends with the trigger's deadline, not later.
        assert deferred.timeout <= timedelta(seconds=120)
        assert kwargs == {
            "campaign_ids": [first["id"], second["id"], first["id"]],
            "bsg_conn_id": bsg_conn_id,
            "target_statuses": ["done"],
            "failure_statuses": ["spam", "stopped"],
            "poll_interval": 3.0,
        }
        # One poke before deferring: each campaign read once.
        assert [r.endpoint for r in simulator.requests] == ["login", "get", "get"]
        assert "_session" not in vars(sensor.hook), "the hook's session outlived the poke"

    @pytest.mark.parametrize("soft_fail", [False, True])
    def test_a_campaign_already_done_never_goes_through_the_triggerer(
        self, simulator, bsg_conn_id, soft_fail
    ):
        campaign = simulator.add_campaign(simulator.now(), status="done")
        sensor = _sensor(bsg_conn_id, campaign_id=campaign["id"], deferrable=True, soft_fail=soft_fail)
        assert sensor.execute(context={}) == simulator.campaign(campaign["id"])
        assert simulator.count("get") == 1

    @pytest.mark.parametrize(
        ("soft_fail", "error"), [(False, AirflowFailException), (True, AirflowSkipException)]
    )
    def test_a_verdict_before_deferral_fails_or_skips_at_once(self, simulator, bsg_conn_id, soft_fail, error):
        campaign = simulator.add_campaign(simulator.now(), status="spam")
        sensor = _sensor(bsg_conn_id, campaign_id=campaign["id"], deferrable=True, soft_fail=soft_fail)
        with pytest.raises(error, match=rf"BSG campaign {campaign['id']} has status 'spam'"):
            sensor.execute(context={})
        assert simulator.count("get") == 1

    def test_an_outage_before_deferral_still_defers(self, simulator, bsg_conn_id):
        campaign = simulator.add_campaign(simulator.now(), status="sending")
        simulator.inject("status", endpoint="get", status=503, times=None)
        with pytest.raises(TaskDeferred):
            _sensor(bsg_conn_id, campaign_id=campaign["id"], deferrable=True).execute(context={})
        assert simulator.count("get") == FAST_RETRY_EXTRAS["max_retries"] + 1

    def test_success_event_gives_one_record_for_one_id(self):
        sensor = _sensor(campaign_id="7")
        record = {"id": 7, "status": "done"}
        assert sensor.execute_complete({}, {"status": "success", "campaigns": [record]}) == record

    def test_success_event_gives_a_list_for_a_list(self):
        sensor = _sensor(campaign_id=[7, 8])
        records = [{"id": 7, "status": "done"}, {"id": 8, "status": "stopped"}]
        assert sensor.execute_complete({}, {"status": "success", "campaigns": records}) == records

    @pytest.mark.parametrize(
        ("event", "error", "message"),
        [
            (
                {"status": "failure", "campaign_id": 7, "campaign_status": "spam", "message": "7 is 'spam'"},
                AirflowFailException,
                "7 is 'spam'",
            ),
            (
                {"status": "not_found", "campaign_id": 7, "message": "7 was not found"},
                AirflowFailException,
                "7 was not found",
            ),
            ({"status": "refused", "message": "HTTP 401"}, AirflowFailException, "HTTP 401"),
            ({"status": "timeout", "message": "Timed out at X"}, AirflowSensorTimeout, "Timed out at X"),
            (
                {"status": "error", "message": "HTTP 503"},
                AirflowException,
                "Waiting for BSG campaigns failed: HTTP 503",
            ),
            ({"status": "odd"}, AirflowException, "an event this sensor does not know"),
            (None, AirflowException, "an event this sensor does not know"),
        ],
    )
    def test_other_events_raise(self, event, error, message):
        with pytest.raises(error, match=message):
            _sensor().execute_complete({}, event)

    def test_error_events_are_not_mistaken_for_failures(self):
        with pytest.raises(AirflowException) as info:
            _sensor().execute_complete({}, {"status": "error", "message": "HTTP 503"})
        assert not isinstance(info.value, (AirflowFailException, AirflowSensorTimeout))

    def test_a_deferral_timed_out_by_the_scheduler_is_a_sensor_timeout(self):
        # What the scheduler hands back when the trigger outlives the defer timeout.
        with pytest.raises(AirflowSensorTimeout):
            _sensor(deferrable=True).resume_execution(
                TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context={}
            )

    def test_with_soft_fail_a_deferral_timeout_skips(self):
        with pytest.raises(AirflowSkipException):
            _sensor(deferrable=True, soft_fail=True).resume_execution(
                TRIGGER_FAIL_REPR, {"error": TriggerFailureReason.TRIGGER_TIMEOUT}, context={}
            )

    def test_with_soft_fail_a_timeout_event_skips(self):
        with pytest.raises(AirflowSkipException):
            _sensor(deferrable=True, soft_fail=True).resume_execution(
                "execute_complete", {"event": {"status": "timeout", "message": "late"}}, context={}
            )

    def test_resuming_with_an_event_returns_the_result(self):
        record = {"id": 1, "status": "done"}
        result = _sensor(deferrable=True).resume_execution(
            "execute_complete", {"event": {"status": "success", "campaigns": [record]}}, context={}
        )
        assert result == record


class TestTimeoutAcrossTries:
    """``timeout`` counts from the first try's start; the task instance is stood in, for the clock's sake."""

    @staticmethod
    def _context(
        *, started: datetime, try_number: int = 1, retries: int = 0, run_started: datetime | None = None
    ):
        ti = SimpleNamespace(
            start_date=started,
            try_number=try_number,
            max_tries=retries,
            get_first_reschedule_date=lambda context: None,
        )
        return {"ti": ti, "dag_run": SimpleNamespace(start_date=run_started or started)}

    def test_a_deferral_keeps_the_deadline_of_the_try_start(self, simulator, bsg_conn_id):
        campaign = simulator.add_campaign(simulator.now(), status="sending")
        started = datetime.now(timezone.utc) - timedelta(seconds=50)
        sensor = _sensor(bsg_conn_id, campaign_id=campaign["id"], deferrable=True, timeout=120)
        with pytest.raises(TaskDeferred) as info:
            sensor.execute(self._context(started=started))
        _, kwargs = info.value.trigger.serialize()
        assert datetime.fromisoformat(kwargs["deadline"]) == started + timedelta(seconds=120)
        assert info.value.timeout <= timedelta(seconds=70)

    @pytest.mark.parametrize("mode", [{"mode": "poke"}, {"mode": "reschedule"}, {"deferrable": True}])
    def test_a_retry_does_not_restart_the_timeout(self, simulator, bsg_conn_id, mode):
        campaign = simulator.add_campaign(simulator.now(), status="sending")
        now = datetime.now(timezone.utc)
        # Second try of a task with one retry, in a run that began longer than ``timeout`` ago.
        context = self._context(
            started=now, try_number=2, retries=1, run_started=now - timedelta(seconds=121)
        )
        sensor = _sensor(
            bsg_conn_id, campaign_id=campaign["id"], timeout=120, retries=1, poke_interval=0, **mode
        )
        with pytest.raises(
            AirflowSensorTimeout, match=rf"waiting for BSG campaign\(s\) {campaign['id']} \(sending\)"
        ):
            sensor.execute(context)
        assert simulator.count("get") == 1, "it looked once, then gave up"

    def test_the_first_try_waits_its_whole_timeout(self, simulator, bsg_conn_id):
        campaign = simulator.add_campaign(simulator.now(), status="done")
        now = datetime.now(timezone.utc)
        sensor = _sensor(bsg_conn_id, campaign_id=campaign["id"], timeout=120, retries=1)
        # First try: the run's start (long ago) does not count, the try's own start does.
        context = self._context(started=now, try_number=1, retries=1, run_started=now - timedelta(days=1))
        assert sensor.wait_started_at(context) == now
        assert sensor.execute(context)["status"] == "done"
