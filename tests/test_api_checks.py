"""The probe's experiments and verdicts, without I/O."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from bsg_provider.extraction.windows import add_months
from bsg_provider.probe.checks import (
    ASSUMPTIONS,
    CANNOT_TELL,
    CONTRADICTED,
    FUTURE_STEPS,
    HOLDS,
    Answer,
    Campaign,
    EdgeTest,
    FieldTest,
    FutureSearch,
    Message,
    MessageFieldTest,
    MessagesFutureTest,
    SpanTest,
    Verdict,
    bound_verdicts,
    edge_candidates,
    exit_status,
    field_candidate,
    field_verdict,
    format_verdict,
    future_and_timezone_verdicts,
    message_field_candidate,
    message_field_verdict,
    messages_future_verdict,
    messages_outside,
    parse_stamp,
    precision_verdict,
    read_campaigns,
    read_messages,
    render_filter,
    span_anchor,
    span_verdict,
)

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 6, 15, 12, tzinfo=UTC)


def campaign(cid: int, created: str, start: str | None = None) -> Campaign:
    stamp = parse_stamp(created)
    assert stamp is not None
    return Campaign(cid, stamp, parse_stamp(start or created))


@pytest.mark.parametrize(
    ("text", "wall", "offset", "fraction"),
    [
        ("2024-04-03 12:14:49", datetime(2024, 4, 3, 12, 14, 49), None, None),
        ("2024-04-03 12:14:49+02:00", datetime(2024, 4, 3, 12, 14, 49), timedelta(hours=2), None),
        ("2000-01-23T04:56:07.000+00:00", datetime(2000, 1, 23, 4, 56, 7), timedelta(0), "000"),
        ("2000-01-23 04:56:07.250+00:00", datetime(2000, 1, 23, 4, 56, 7), timedelta(0), "250"),
        ("2000-01-23T04:56:07Z", datetime(2000, 1, 23, 4, 56, 7), timedelta(0), None),
    ],
)
def test_parse_stamp(text: str, wall: datetime, offset: timedelta | None, fraction: str | None) -> None:
    stamp = parse_stamp(text)
    assert stamp is not None
    assert (stamp.wall, stamp.offset, stamp.fraction) == (wall, offset, fraction)
    assert stamp.has_nonzero_fraction == bool(fraction and fraction != "000")


@pytest.mark.parametrize("value", [None, 5, "", "yesterday", "2024-13-01 00:00:00"])
def test_parse_stamp_refuses_non_timestamps(value: object) -> None:
    assert parse_stamp(value) is None


def test_filter_values() -> None:
    instant = datetime(2026, 11, 24, 18, 43, 44, tzinfo=UTC)
    assert render_filter(instant, BERLIN, "plain") == "2026-11-24 19:43:44"
    assert render_filter(instant, UTC, "iso") == "2026-11-24T18:43:44.000000+0000"
    stamp = parse_stamp("2026-11-24 19:43:44.900+01:00")
    assert stamp is not None
    # Plain values echo the shown wall clock, so they do not depend on the connection's timezone.
    assert stamp.filter_value(timedelta(seconds=1), UTC, "plain") == "2026-11-24 19:43:45"
    assert stamp.filter_value(timedelta(0), UTC, "iso") == "2026-11-24T19:43:44.000000+0100"


def test_span_anchor_separates_the_rules() -> None:
    for month in range(1, 13):
        now = datetime(2026, month, 17, 8, 30)
        anchor = span_anchor(now)
        assert anchor <= now and anchor.day == 1 and anchor.time() == datetime.min.time()
        assert (anchor - add_months(anchor, -3)).days >= 91


def test_months_back_clamp_to_the_months_last_day() -> None:
    assert add_months(datetime(2026, 5, 31), -3) == datetime(2026, 2, 28)
    assert add_months(datetime(2026, 1, 15), -3) == datetime(2025, 10, 15)
    assert add_months(datetime(2024, 11, 30, 23, 59, 59), 3) == datetime(2025, 2, 28, 23, 59, 59)
    berlin = datetime(2026, 3, 31, 12, tzinfo=ZoneInfo("Europe/Berlin"))
    assert add_months(berlin, -1) == datetime(2026, 2, 28, 12, tzinfo=ZoneInfo("Europe/Berlin"))


def test_candidates() -> None:
    found = read_campaigns(
        [
            {"id": 1, "created_at": "2026-06-01 10:00:00", "start_at": "2026-06-01 10:00:00"},
            {
                "id": 2,
                "created_at": "2026-06-01 10:00:00",
                "start_at": "2026-06-01 10:00:00",
            },  # shares a second
            {"id": 3, "created_at": "2026-06-01 11:00:00", "start_at": "2026-06-01 12:00:00"},
            {"id": 4, "created_at": "2026-06-01 13:00:00", "start_at": "2026-06-01 13:00:00"},
            {"id": "x", "created_at": "2026-06-01 13:00:00"},
            {"id": 5, "created_at": None},
        ]
    )
    assert [c.id for c in found] == [1, 2, 3, 4]
    assert [c.id for c in edge_candidates(found)] == [4]
    chosen = field_candidate(found, datetime(2026, 7, 1))
    assert chosen is not None and chosen.id == 3
    assert field_candidate(found, datetime(2026, 6, 1, 11, 30)) is None


X = campaign(7, "2026-06-01 10:00:00")


@pytest.mark.parametrize(
    ("exact", "from_edge", "to_edge", "fraction_shown", "expected"),
    [
        (True, True, True, False, (HOLDS, HOLDS, HOLDS)),
        (False, False, True, False, (CONTRADICTED, HOLDS, HOLDS)),  # exclusive from
        (False, True, False, False, (HOLDS, CONTRADICTED, CANNOT_TELL)),  # exclusive to, or a hidden fraction
        (False, False, False, False, (CONTRADICTED, CONTRADICTED, HOLDS)),  # both exclusive
        (False, True, False, True, (HOLDS, CANNOT_TELL, CONTRADICTED)),  # a fraction is shown
    ],
)
def test_bound_and_precision_verdicts(exact, from_edge, to_edge, fraction_shown, expected) -> None:
    shown = campaign(8, "2026-06-01 10:00:00.250+00:00") if fraction_shown else X
    test = EdgeTest(shown, True, exact, from_edge, to_edge)
    from_v, to_v = bound_verdicts([test], fraction_shown)
    precision = precision_verdict([shown], [test])
    assert (from_v.verdict, to_v.verdict, precision.verdict) == expected
    assert "campaign" in from_v.evidence and "filter[to]=C" in to_v.evidence


def test_bounds_cannot_tell_without_evidence() -> None:
    assert {v.verdict for v in bound_verdicts([], False)} == {CANNOT_TELL}
    missing = bound_verdicts([EdgeTest(X, False)], False)
    assert {v.verdict for v in missing} == {CANNOT_TELL}
    assert "not returned even by" in missing[0].evidence
    assert precision_verdict([], []).verdict == CANNOT_TELL


def test_precision_holds_when_shown_fractions_are_zero() -> None:
    shown = [campaign(i, f"2026-06-01 10:00:{i:02d}.000+00:00") for i in range(20)]
    assert precision_verdict(shown, []).verdict == HOLDS


def test_field_verdicts() -> None:
    y = campaign(9, "2026-06-01 10:00:00", "2026-06-01 12:00:00")
    window = "[2026-05-01 00:00:00, 2026-06-02 00:00:00]"
    assert field_verdict(FieldTest(y, True, False), [], window).verdict == HOLDS
    on_start = field_verdict(FieldTest(y, False, True), [], window)
    assert on_start.verdict == CONTRADICTED and "start_at" in on_start.evidence
    assert field_verdict(FieldTest(y, False, False), [], window).verdict == CONTRADICTED
    assert field_verdict(FieldTest(y, True, True), [], window).verdict == CANNOT_TELL
    assert field_verdict(None, [], window).verdict == CANNOT_TELL
    outside = field_verdict(None, [campaign(10, "2026-04-30 23:00:00", "2026-05-01 00:30:00")], window)
    assert outside.verdict == CONTRADICTED and "created outside it" in outside.evidence


def test_format_verdicts() -> None:
    ok, refused = Answer(True), Answer(False, fields=("filter[from]", "filter[to]"), message="bad")
    assert format_verdict(ok, refused).verdict == HOLDS
    iso_only = format_verdict(refused, ok)
    assert iso_only.verdict == CONTRADICTED and "ISO 8601 only" in iso_only.evidence
    assert format_verdict(refused, refused).verdict == CONTRADICTED
    assert format_verdict(None, None).verdict == CANNOT_TELL


def test_span_verdicts() -> None:
    anchor = datetime(2026, 6, 1)
    ok, no = Answer(True), Answer(False, fields=("filter[from]",))
    assert span_verdict(SpanTest(anchor, ok, ok, no)).verdict == HOLDS
    ninety = span_verdict(SpanTest(anchor, ok, no, no, ok))
    assert ninety.verdict == CONTRADICTED and "90 days" in ninety.evidence and "92 days" in ninety.evidence
    assert "between 89 and 90" in span_verdict(SpanTest(anchor, ok, no, no, no)).evidence
    assert span_verdict(SpanTest(anchor, no, no, no)).verdict == CONTRADICTED
    assert "more than 3" in span_verdict(SpanTest(anchor, ok, ok, ok)).evidence
    assert span_verdict(SpanTest(anchor, ok, None, None)).verdict == CANNOT_TELL


def run_search(limit_offset: float) -> FutureSearch:
    """Bisect against an API whose limit lies ``limit_offset`` seconds after now + 30 days."""
    search = FutureSearch()
    while (offset := search.next_offset()) is not None:
        search.record(offset, offset <= limit_offset)
    return search


@pytest.mark.parametrize("limit_offset", [0.0, 3600.0, -5 * 3600.0, 20000.0, -42.0])
def test_future_search_brackets_the_limit(limit_offset: float) -> None:
    search = run_search(limit_offset)
    assert search.boundary is not None
    assert abs(search.boundary - limit_offset) < 240
    assert len(search.steps) == FUTURE_STEPS + 2


def test_future_search_stops_outside_its_bracket() -> None:
    assert run_search(-20 * 3600.0).boundary is None
    assert len(run_search(-20 * 3600.0).steps) == 1
    assert len(run_search(20 * 3600.0).steps) == 2


def future(limit_offset: float, campaigns: list[Campaign] | None = None, tz=UTC, name="UTC"):
    return future_and_timezone_verdicts(
        run_search(limit_offset), api_timezone=name, tz=tz, now=NOW, campaigns=campaigns or []
    )


def test_future_and_timezone_hold_on_a_30_day_boundary() -> None:
    future_v, tz_v = future(30.0)
    assert (future_v.verdict, tz_v.verdict) == (HOLDS, HOLDS)


def test_a_shifted_boundary_points_at_the_timezone() -> None:
    future_v, tz_v = future(7200.0)
    assert (future_v.verdict, tz_v.verdict) == (CANNOT_TELL, CONTRADICTED)
    assert "UTC+02:00" in tz_v.evidence


def test_a_shifted_boundary_with_a_confirmed_timezone_is_the_limit() -> None:
    confirmed = [campaign(1, "2026-06-10 10:00:00+00:00")]
    future_v, tz_v = future(7200.0, confirmed)
    assert (future_v.verdict, tz_v.verdict) == (CONTRADICTED, HOLDS)


def test_limits_outside_the_search() -> None:
    assert future(-20 * 3600.0)[0].verdict == CONTRADICTED
    assert future(20 * 3600.0)[0].verdict == CONTRADICTED


def test_offsets_and_future_timestamps_contradict_the_timezone() -> None:
    tokyo = [campaign(1, "2026-06-10 10:00:00+09:00")]
    assert "UTC+09:00" in future(0.0, tokyo)[1].evidence
    assert future(0.0, tokyo)[1].verdict == CONTRADICTED
    ahead = [campaign(2, "2026-06-15 13:00:00")]  # an hour after NOW, read in UTC
    assert future(0.0, ahead)[1].verdict == CONTRADICTED
    assert (
        future(0.0, [campaign(3, "2026-06-15 14:00:00+02:00")], BERLIN, "Europe/Berlin")[1].verdict == HOLDS
    )


def test_exit_status_and_report_shape() -> None:
    verdicts = [Verdict(key, HOLDS, "e") for key in ASSUMPTIONS]
    assert exit_status(verdicts) == 0
    assert exit_status([*verdicts, Verdict("span_rule", CANNOT_TELL, "e")]) == 0
    assert exit_status([*verdicts, Verdict("span_rule", CONTRADICTED, "e")]) == 1
    assert verdicts[0].as_dict()["text"] == ASSUMPTIONS[verdicts[0].key]


# -- messages -------------------------------------------------------------------------------------


def message(mid: int, created: str, delivered: str | None = None) -> Message:
    stamp = parse_stamp(created)
    assert stamp is not None
    return Message(mid, stamp, parse_stamp(delivered))


def test_read_messages_and_the_field_candidate() -> None:
    records = [
        {
            "id": 1,
            "created_at": "2026-06-01 10:00:00",
            "sent_at": "2026-06-01 10:00:00",
            "delivered_at": None,
        },
        {"id": 2, "created_at": "2026-06-01 10:00:00", "sent_at": "2026-06-01 10:00:01"},
        {"id": 3, "created_at": "2026-06-01 10:00:00", "delivered_at": "2026-06-01 10:00:45"},
        {"id": "4", "created_at": "2026-06-01 10:00:00"},
        {"id": 5, "created_at": None},
        "not a message",
    ]
    found = read_messages(records)
    assert [m.id for m in found] == [1, 2, 3]
    assert found[1].delivered is not None and found[1].delivered.text == "2026-06-01 10:00:01"  # sent_at
    # Only a message whose later timestamp is 3 s or more after its creation tells the fields apart.
    candidate = message_field_candidate(found, datetime(2026, 7, 1))
    assert candidate is not None and candidate.id == 3
    assert message_field_candidate(found, datetime(2026, 6, 1, 10, 0, 30)) is None  # past the future limit
    lo, hi = datetime(2026, 6, 1, 9), datetime(2026, 6, 1, 9, 59, 59)
    assert [m.id for m in messages_outside(found, lo, hi)] == [1, 2, 3]
    assert messages_outside(found, lo, datetime(2026, 6, 1, 10)) == []


def test_message_field_verdicts() -> None:
    m = message(7, "2026-06-01 10:00:00", "2026-06-01 10:00:45")
    window = "[2026-04-01 00:00:00, 2026-06-02 00:00:00]"
    ok = Answer(True, ids=frozenset({7}))
    assert message_field_verdict(ok, MessageFieldTest(m, True, False), [], window).verdict == HOLDS
    on_delivery = message_field_verdict(ok, MessageFieldTest(m, False, True), [], window)
    assert on_delivery.verdict == CONTRADICTED and "delivered_at" in on_delivery.evidence
    assert message_field_verdict(ok, MessageFieldTest(m, False, False), [], window).verdict == CONTRADICTED
    assert message_field_verdict(ok, MessageFieldTest(m, True, True), [], window).verdict == CANNOT_TELL
    assert message_field_verdict(ok, None, [], window).verdict == CANNOT_TELL
    stray = [message(8, "2026-03-31 23:00:00")]
    outside = message_field_verdict(ok, None, stray, window)
    assert (
        outside.verdict == CONTRADICTED
        and "created outside it" in outside.evidence
        and "8" in outside.evidence
    )
    assert message_field_verdict(ok, MessageFieldTest(m, True, False), stray, window).verdict == CONTRADICTED
    refused = message_field_verdict(Answer(False, fields=("filter[from]",)), None, [], window)
    assert refused.verdict == CANNOT_TELL and "refused" in refused.evidence
    assert message_field_verdict(None, None, [], window).verdict == CANNOT_TELL


def test_messages_span_verdict_has_its_own_key() -> None:
    anchor = datetime(2026, 6, 1)
    ok, no = Answer(True), Answer(False, fields=("filter[from]",))
    holds = span_verdict(SpanTest(anchor, ok, ok, no), "messages_span_rule")
    assert (holds.key, holds.verdict) == ("messages_span_rule", HOLDS)
    ninety = span_verdict(SpanTest(anchor, ok, no, no, ok), "messages_span_rule")
    assert (ninety.key, ninety.verdict) == ("messages_span_rule", CONTRADICTED)
    assert "90 days" in ninety.evidence


def test_messages_future_verdicts() -> None:
    ok, no = Answer(True), Answer(False, fields=("filter[to]",), message="too far")
    holds = messages_future_verdict(MessagesFutureTest(120.0, True, ok, no))
    assert holds.verdict == HOLDS and "campaigns' limit" in holds.evidence
    shorter = messages_future_verdict(MessagesFutureTest(120.0, True, no, no))
    assert shorter.verdict == CONTRADICTED and "before the campaigns' limit" in shorter.evidence
    longer = messages_future_verdict(MessagesFutureTest(0.0, False, ok, ok))
    assert longer.verdict == CONTRADICTED and "after now + 30 days" in longer.evidence
    other = Answer(False, fields=("page[limit]",))
    assert messages_future_verdict(MessagesFutureTest(0.0, False, other, no)).verdict == CANNOT_TELL
    assert messages_future_verdict(MessagesFutureTest(0.0, False, ok, None)).verdict == CANNOT_TELL
