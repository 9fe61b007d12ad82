"""The status gate: campaign id parsing, status set validation, decisions and change tracking."""

from __future__ import annotations

import logging

import pytest

from bsg_provider.client.api import CAMPAIGN_STATUSES
from bsg_provider.client.statuses import (
    CampaignIds,
    Failed,
    StatusGate,
    StatusWatch,
    Succeeded,
    Waiting,
    log_observation,
    not_found_message,
    parse_campaign_ids,
    unknown_status_message,
)
from bsg_provider.errors import BsgConfigError


class TestParseCampaignIds:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (7, CampaignIds((7,), single=True)),
            ("42", CampaignIds((42,), single=True)),
            (" 42 ", CampaignIds((42,), single=True)),
            ([3, "4"], CampaignIds((3, 4), single=False)),
            ((5,), CampaignIds((5,), single=False)),
            ("[1, 2]", CampaignIds((1, 2), single=False)),
            ("['1', '2']", CampaignIds((1, 2), single=False)),  # Jinja's rendering of a list of strings
            ("(8, 9)", CampaignIds((8, 9), single=False)),
            ([2, 2, 1], CampaignIds((2, 2, 1), single=False)),
        ],
    )
    def test_accepts_ids_lists_and_rendered_lists(self, value, expected):
        assert parse_campaign_ids(value) == expected

    @pytest.mark.parametrize(
        ("value", "fragment"),
        [
            ("abc", "'abc': it is not a positive integer id"),
            (0, "0: it is not a positive integer id"),
            (-3, "-3: it is not a positive integer id"),
            (True, "True: it is not a positive integer id"),
            (None, "None: it is not a positive integer id"),
            (1.5, "1.5: it is not a positive integer id"),
            ([1, "x"], "item 1 ('x') is not a positive integer id"),
            ([1, [2]], "item 1 ([2]) is not a positive integer id"),
            ("[1, 2", "it looks like a list but does not parse as one"),
            ("[1, __import__('os')]", "it looks like a list but does not parse as one"),
            ("({'a': 1})", "it is not a list of ids"),
        ],
    )
    def test_rejects_anything_else_saying_what_and_how(self, value, fragment):
        with pytest.raises(BsgConfigError) as info:
            parse_campaign_ids(value)
        message = str(info.value)
        assert fragment in message
        assert "render_template_as_native_obj=True" in message

    @pytest.mark.parametrize("value", [[], (), "[]"])
    def test_rejects_an_empty_list(self, value):
        with pytest.raises(BsgConfigError, match="empty list; give at least one campaign id"):
            parse_campaign_ids(value)

    def test_a_huge_value_is_shortened_in_the_message(self):
        with pytest.raises(BsgConfigError) as info:
            parse_campaign_ids("x" * 5000)
        assert len(str(info.value)) < 600

    def test_shape_follows_the_input(self):
        records = {1: {"id": 1}, 2: {"id": 2}}
        assert parse_campaign_ids(1).shape(records) == {"id": 1}
        assert parse_campaign_ids([2, 1, 2]).shape(records) == [{"id": 2}, {"id": 1}, {"id": 2}]
        assert parse_campaign_ids([2, 1, 2]).unique == (2, 1)


class TestStatusGateValidation:
    def test_defaults(self):
        gate = StatusGate()
        assert gate.target_statuses == ("done", "stopped")
        assert gate.failure_statuses == ("spam",)

    def test_accepts_a_single_string_and_drops_duplicates(self):
        gate = StatusGate("done", ["spam", "spam", "paused"])
        assert gate.target_statuses == ("done",)
        assert gate.failure_statuses == ("spam", "paused")

    def test_failure_statuses_may_be_empty(self):
        assert StatusGate(("done",), ()).failure_statuses == ()

    @pytest.mark.parametrize("target", [(), [], set()])
    def test_rejects_empty_target(self, target):
        with pytest.raises(BsgConfigError, match="target_statuses is empty"):
            StatusGate(target, ("spam",))

    def test_rejects_a_status_in_both_sets(self):
        with pytest.raises(BsgConfigError, match="'done' is in both target_statuses and failure_statuses"):
            StatusGate(("done", "stopped"), ("spam", "done"))

    @pytest.mark.parametrize(
        ("target", "failure", "name", "bad"),
        [
            (("Done",), (), "target_statuses", "'Done'"),
            (("done",), ("rejected",), "failure_statuses", "'rejected'"),
            ((1,), (), "target_statuses", "1"),
        ],
    )
    def test_rejects_unknown_statuses_listing_the_known_ones(self, target, failure, name, bad):
        with pytest.raises(BsgConfigError) as info:
            StatusGate(target, failure)
        message = str(info.value)
        assert f"{name} contains {bad}, which is not a BSG campaign status" in message
        assert ", ".join(CAMPAIGN_STATUSES) in message

    def test_rejects_a_non_iterable(self):
        with pytest.raises(BsgConfigError, match="target_statuses must be a list of campaign statuses"):
            StatusGate(5, ())


class TestEvaluate:
    gate = StatusGate(("done", "stopped"), ("spam",))

    def test_all_in_target_statuses_succeeds(self):
        assert self.gate.evaluate({1: "done", 2: "stopped"}) == Succeeded()

    def test_any_in_a_target_status_still_waits_for_the_others(self):
        decision = self.gate.evaluate({1: "done", 2: "sending", 3: "moderation"})
        assert decision == Waiting(((2, "sending"), (3, "moderation")))
        assert decision.describe() == "2 (sending), 3 (moderation)"

    def test_a_failure_wins_over_waiting_and_names_the_first_failed_campaign(self):
        assert self.gate.evaluate({1: "sending", 2: "spam", 3: "spam"}) == Failed(2, "spam")

    def test_unknown_and_missing_statuses_keep_waiting(self):
        assert self.gate.evaluate({1: "archived", 2: None}) == Waiting(((1, "archived"), (2, None)))

    def test_user_defined_sets(self):
        gate = StatusGate(("sending",), ("paused", "stopped"))
        assert gate.evaluate({1: "sending"}) == Succeeded()
        assert gate.evaluate({1: "sending", 2: "stopped"}) == Failed(2, "stopped")

    def test_only_terminal_target_statuses_are_settled(self):
        gate = StatusGate(("done", "sending"), ())
        assert gate.settled("done")
        assert not gate.settled("sending")  # it may still move on
        assert not gate.settled("stopped")  # terminal, but not a target here

    def test_messages_name_campaign_status_and_the_way_out(self):
        message = self.gate.failure_message(17, "spam")
        assert "BSG campaign 17 has status 'spam'" in message
        assert "done or stopped" in message
        message = not_found_message(17, "bsg_prod")
        assert "BSG campaign 17 was not found" in message
        assert "'bsg_prod'" in message
        assert "Check the id" in message
        message = unknown_status_message(17, "archived", self.gate)
        assert "'archived', which this provider does not know" in message
        assert "still waiting for done or stopped" in message


class TestStatusWatch:
    def test_reports_each_change_once_and_each_unknown_status_once(self):
        watch = StatusWatch()
        first = watch.observe({1: "creation", 2: "archived"})
        assert first.changes == ((1, None, "creation"), (2, None, "archived"))
        assert first.unknown == ((2, "archived"),)

        same = watch.observe({1: "creation", 2: "archived"})
        assert same.changes == ()
        assert same.unknown == ()

        moved = watch.observe({1: "moderation", 2: "weird"})
        assert moved.changes == ((1, "creation", "moderation"), (2, "archived", "weird"))
        assert moved.unknown == ((2, "weird"),)

        back = watch.observe({1: "moderation", 2: "archived"})
        assert back.changes == ((2, "weird", "archived"),)
        assert back.unknown == ()  # already warned about (2, "archived")

    def test_a_missing_status_is_unknown_too(self):
        assert StatusWatch().observe({5: None}).unknown == ((5, None),)

    def test_log_observation_says_changes_at_info_and_unknown_statuses_at_warning(self, caplog):
        log = logging.getLogger("test_statuses")
        watch = StatusWatch()
        with caplog.at_level(logging.INFO, logger="test_statuses"):
            log_observation(log, watch.observe({1: "sending", 2: "archived"}), StatusGate())
            log_observation(log, watch.observe({1: "done", 2: "archived"}), StatusGate())
        assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
            (logging.INFO, "BSG campaign 1 has status sending."),
            (logging.INFO, "BSG campaign 2 has status archived."),
            (logging.WARNING, unknown_status_message(2, "archived", StatusGate())),
            (logging.INFO, "BSG campaign 1 changed from sending to done."),
        ]
