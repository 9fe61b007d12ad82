"""BsgCampaignStatusSensor's own methods against the simulator: arguments, poke, deferral, resumption."""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta, timezone

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
from bsg_provider import metrics
from bsg_provider.errors import BsgConfigError
from bsg_provider.sensors.campaign import BsgCampaignStatusSensor
from bsg_provider.triggers.campaign import BsgCampaignStatusTrigger


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
            ({"campaign_id": 0}, "A campaign id must be a positive integer, got 0"),
        ],
    )
    def test_literal_mistakes_fail_when_the_dag_is_parsed(self, kwargs, message):
        with pytest.raises(BsgConfigError, match=message):
            _sensor(**kwargs)

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
        sensor = _sensor(bsg_conn_id, campaign_id=campaign_id, deferrable=deferrable, poke_interval=0)
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
        assert _times_logged(caplog, out, f"BSG campaign {campaign['id']} is sending.") == 1
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
        with pytest.raises(AirflowFailException, match=rf"BSG campaign {campaign['id']} is 'spam'"):
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

    def test_polls_and_the_outcome_reach_airflow_metrics(self, simulator, bsg_conn_id, recording_stats):
        campaign = simulator.add_campaign(simulator.now(), status="sending")
        sensor = _sensor(bsg_conn_id, campaign_id=campaign["id"], mode="reschedule")
        sensor.poke({})
        simulator.set_status(campaign["id"], "stopped")
        sensor.poke({})
        assert recording_stats.tags_of(metrics.SENSOR_POLLS) == [{"mode": "reschedule"}] * 2
        assert recording_stats.tags_of(metrics.SENSOR_OUTCOMES) == [{"outcome": "success"}]


class TestDeferral:
    def test_execute_defers_to_the_trigger_without_any_request(self, simulator, bsg_conn_id):
        sensor = _sensor(
            bsg_conn_id,
            campaign_id="[5, 6, 5]",
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
        assert deferred.timeout == timedelta(seconds=120)
        assert isinstance(deferred.trigger, BsgCampaignStatusTrigger)
        _, kwargs = deferred.trigger.serialize()
        deadline = datetime.fromisoformat(kwargs.pop("deadline"))
        assert (
            before + timedelta(seconds=120) <= deadline <= datetime.now(timezone.utc) + timedelta(seconds=120)
        )
        assert kwargs == {
            "campaign_ids": [5, 6, 5],
            "bsg_conn_id": bsg_conn_id,
            "target_statuses": ["done"],
            "failure_statuses": ["spam", "stopped"],
            "poll_interval": 3.0,
        }
        assert simulator.count("any") == 0

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
