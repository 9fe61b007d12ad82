"""WindowFilter: the run-time checks of a page against its request, and the exact cut."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_provider.errors import BsgAssumptionError
from bsg_provider.extraction.window_filter import WindowFilter
from bsg_provider.extraction.windows import plan_windows, wall_readings

UTC = timezone.utc
NOW = datetime(2026, 11, 27, tzinfo=UTC)
DAY = (datetime(2026, 11, 1, tzinfo=UTC), datetime(2026, 11, 2, tzinfo=UTC))


def _filter(tz="UTC", window=DAY, campaign_type="sms"):
    (w,) = plan_windows(*window, tz=tz, now=NOW).windows
    f = WindowFilter(tz=tz, campaign_type=campaign_type, conn_id="bsg_x")
    f.window(w)
    return f


def _campaign(i, created, **fields):
    return {"id": i, "message_type": "sms", "created_at": created, **fields}


def test_records_are_cut_to_the_half_open_window():
    f = _filter()
    page = [
        _campaign(1, "2025-10-31 23:59:59"),  # the extra second below: asked for, not kept
        _campaign(2, "2026-11-01 00:00:00"),
        _campaign(3, "2026-11-01T23:59:59.999+00:00"),
        _campaign(4, "2026-11-02 00:00:00"),  # the extra second above
        _campaign(5, "2026-11-01 12:00:00+01:00"),
    ]
    page[0]["created_at"] = "2026-10-31 23:59:59"
    assert [c["id"] for c in f.keep(page)] == [2, 3, 5]
    assert f.outside == 2


def test_a_record_outside_the_request_names_the_assumption_and_the_evidence():
    f = _filter()
    late = _campaign(7, "2026-10-20 08:00:00", start_at="2026-11-01 09:00:00")
    with pytest.raises(BsgAssumptionError) as info:
        f.keep([late])
    message = str(info.value)
    assert info.value.assumption == "filter_field"
    assert "campaign 7 for filter[from]='2026-10-31 23:59:59' filter[to]='2026-11-02 00:00:00'" in message
    assert "created_at '2026-10-20 08:00:00', start_at '2026-11-01 09:00:00'" in message
    assert "select on created_at" in message and "Nothing was written" in message
    assert "`python -m bsg_provider.check_api --conn-id bsg_x`" in message


def test_a_fraction_past_a_bound_is_what_an_api_comparing_whole_seconds_returns():
    # filter[to]='2026-11-02 00:00:00' inclusive on the truncated second returns 00:00:00.400:
    # asked for, cut, never taken for a filter on another field. A whole second past is.
    f = _filter()
    page = [
        _campaign(1, "2026-11-02T00:00:00.400+00:00"),
        _campaign(2, "2026-10-31T23:59:58.600+00:00"),
        _campaign(3, "2026-11-01T00:00:00.400+00:00"),
    ]
    assert [c["id"] for c in f.keep(page)] == [3]
    assert f.outside == 2
    for late in ("2026-11-02T00:00:01.000+00:00", "2026-10-31T23:59:58.000+00:00"):
        with pytest.raises(BsgAssumptionError):
            _filter().keep([_campaign(9, late)])


def test_a_record_of_another_type_fails_the_type_assumption():
    f = _filter()
    with pytest.raises(BsgAssumptionError) as info:
        f.keep([_campaign(1, "2026-11-01 10:00:00"), _campaign(2, "2026-11-01 10:00:00", message_type="rcs")])
    assert info.value.assumption == "filter_type"
    assert "campaign 2 with message_type 'rcs' for filter[type]=sms" in str(info.value)


def test_a_created_at_that_is_no_timestamp_fails_clearly():
    with pytest.raises(BsgAssumptionError, match="has created_at 'yesterday', which is not a timestamp"):
        _filter("Europe/Berlin").keep([_campaign(1, "yesterday")])


def test_a_plain_time_of_the_repeated_hour_is_kept_where_either_reading_lies_once_per_extraction():
    berlin = "Europe/Berlin"
    cuts = [datetime(2026, 10, 25, 0, 0, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)]
    cuts.append(datetime(2026, 10, 25, 2, tzinfo=UTC))
    plan = plan_windows(cuts[0], cuts[-1], tz=berlin, now=NOW)
    record = _campaign(9, "2026-10-25 02:30:00")
    per_interval = []
    for lo, hi in itertools.pairwise(cuts):
        f = _filter(berlin, (lo, hi))
        per_interval.append(len(f.keep([record])))
    assert per_interval == [1, 1], "each interval holds one of its two instants"
    f = WindowFilter(tz=berlin, campaign_type="sms")
    kept = 0
    for window in plan_windows(cuts[0], cuts[-1], tz=berlin, now=NOW, span=plan.span).windows:
        f.window(window)
        kept += len(f.keep([record]))
    assert kept == 1


# -- the proof, as a property: every reading of the API, every cut -------------------------------

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe"]


def _selects(reading, walls, zone, created):
    """The API under one reading: does it return a campaign created at ``created`` (aware UTC)?"""
    from_bound, to_bound, precision, compare, fold = reading
    key = created if precision == "subsecond" else created.replace(microsecond=0)
    api_from, api_to = walls
    if compare == "wall":
        value = key.astimezone(zone).replace(tzinfo=None)
        lo, hi = api_from, api_to
    else:
        value = key
        lo = api_from.replace(tzinfo=zone, fold=fold).astimezone(UTC)
        hi = api_to.replace(tzinfo=zone, fold=fold).astimezone(UTC)
    above = value >= lo if from_bound == "inclusive" else value > lo
    below = value <= hi if to_bound == "inclusive" else value < hi
    return above and below


def _render(created, zone, with_offset):
    whole = created.replace(microsecond=0).astimezone(zone)
    return whole.isoformat() if with_offset else whole.strftime("%Y-%m-%d %H:%M:%S")


readings = st.tuples(
    st.sampled_from(["inclusive", "exclusive"]),
    st.sampled_from(["inclusive", "exclusive"]),
    st.sampled_from(["second", "subsecond"]),
    st.sampled_from(["instant", "wall"]),
    st.sampled_from([0, 1]),
)
instants = st.datetimes(
    min_value=datetime(2026, 3, 20), max_value=datetime(2026, 11, 5), timezones=st.just(UTC)
)


def _exactly_once(reading, tz, with_offset, cuts, created, on_cuts):
    zone = ZoneInfo(tz)
    cuts = sorted(c.replace(microsecond=0) for c in cuts)
    if on_cuts:
        created = created + [c + d for c in cuts for d in (timedelta(0), -timedelta(milliseconds=1))]
    if reading[2] == "second":
        created = [c.replace(microsecond=0) for c in created]
    counts = dict.fromkeys(range(len(created)), 0)
    for lo, hi in itertools.pairwise(cuts):
        if lo == hi:
            continue
        f = WindowFilter(tz=tz, campaign_type="sms")
        for window in plan_windows(lo, hi, tz=tz, now=NOW).windows:
            walls = window.api_walls(tz)
            assert walls[0] < walls[1], "never an inverted window"
            f.window(window)
            page = [
                _campaign(i, _render(c, zone, with_offset))
                for i, c in enumerate(created)
                if _selects(reading, walls, zone, c)
            ]
            for record in f.keep(page):  # never raises: every record was asked for
                counts[record["id"]] += 1
    for i, c in enumerate(created):
        inside = cuts[0] <= c < cuts[-1]
        ambiguous = not with_offset and len(wall_readings(_render_wall(c, zone), zone)) > 1
        if not inside and not ambiguous:
            assert counts[i] == 0
        elif ambiguous:
            assert counts[i] >= (1 if inside else 0), "never lost"
        else:
            assert counts[i] == 1, (c, counts[i])


@settings(max_examples=150, deadline=None)
@given(
    reading=readings,
    tz=st.sampled_from(ZONES),
    with_offset=st.booleans(),
    cuts=st.lists(instants, min_size=2, max_size=4, unique=True),
    created=st.lists(instants, min_size=1, max_size=20),
    on_cuts=st.booleans(),
)
def test_every_reading_gives_each_campaign_to_exactly_one_interval(
    reading, tz, with_offset, cuts, created, on_cuts
):
    _exactly_once(reading, tz, with_offset, cuts, created, on_cuts)


#: Around Berlin's changes of 2026: 03-29 01:00Z (02:00 skipped) and 10-25 01:00Z (02:00-02:59 twice).
near_changes = st.one_of(
    *(
        st.datetimes(min_value=lo, max_value=lo + timedelta(hours=6), timezones=st.just(UTC))
        for lo in (datetime(2026, 3, 28, 22), datetime(2026, 10, 24, 22))
    )
)


@settings(max_examples=300, deadline=None)
@given(
    reading=readings,
    with_offset=st.booleans(),
    cuts=st.lists(near_changes, min_size=2, max_size=5, unique=True),
    created=st.lists(near_changes, min_size=1, max_size=30),
    on_cuts=st.booleans(),
)
def test_every_reading_across_dst_changes_loses_nothing(reading, with_offset, cuts, created, on_cuts):
    _exactly_once(reading, "Europe/Berlin", with_offset, cuts, created, on_cuts)


def _render_wall(created, zone):
    return created.replace(microsecond=0).astimezone(zone).replace(tzinfo=None)


def test_a_message_of_another_campaign_than_filtered_is_an_assumption_error():
    from bsg_provider.client.resources import messages_query

    start = datetime(2025, 5, 1, tzinfo=timezone.utc)
    plan = plan_windows(start, start + timedelta(days=1), tz="UTC", now=start + timedelta(days=9))
    f = WindowFilter(tz="UTC", query=messages_query(42), conn_id="bsg_x")
    f.window(plan.windows[0])
    ok = {"id": 1, "campaign_id": 42, "created_at": "2025-05-01 10:00:00"}
    assert f.keep([ok]) == [ok]
    wrong = r"message 2 with campaign_id 7 for filter\[campaign_id\]=42"
    with pytest.raises(BsgAssumptionError, match=wrong) as info:
        f.keep([{"id": 2, "campaign_id": 7, "created_at": "2025-05-01 10:00:00"}])
    assert info.value.assumption == "filter_campaign_id"
    assert "/api/messages honours that filter" in str(info.value)
    with pytest.raises(BsgAssumptionError, match=r"returned message 3 for filter\[from\]") as info:
        f.keep([{"id": 3, "campaign_id": 42, "created_at": "2025-07-01 10:00:00"}])
    assert info.value.assumption == "filter_field"


#: created_at values around the plain form the page path compares as text, in and out of DAY.
CREATED = st.sampled_from(
    [
        "2026-10-31 23:59:59",
        "2026-11-01 00:00:00",
        "2026-11-01 12:30:00",
        "2026-11-01 23:59:59",
        "2026-11-02 00:00:00",
        "2026-11-01T12:30:00",
        "2026-11-01 12:30:00+01:00",
        "2026-11-01 12:30:0x",
        "2026-10-20 08:00:00",
        "2026-11-01 12:30",
        None,
        17,
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    created=st.lists(CREATED, max_size=6),
    types=st.lists(st.sampled_from(["sms", None, "rcs", ["sms"]]), min_size=6, max_size=6),
    tz=st.sampled_from(["UTC", "Europe/Berlin"]),
)
def test_a_page_is_kept_as_record_by_record(created, types, tz):
    # keep() takes whole usual pages a column at a time; any page must give what the
    # record-by-record reading gives: the same records, the same count outside, the same error.
    page = [
        _campaign(i, value, message_type=kind)
        for i, (value, kind) in enumerate(zip(created, types, strict=False))
    ]

    def outcome(by_page: bool) -> tuple:
        f = _filter(tz=tz)
        try:
            kept = f.keep(page) if by_page else f._keep_each(page, f._bounds)
        except BsgAssumptionError as exc:
            return ("error", str(exc))
        return ([c["id"] for c in kept], f.outside)

    assert outcome(by_page=True) == outcome(by_page=False)


def test_a_usual_page_takes_the_page_path():
    f = _filter()
    page = [_campaign(i, f"2026-11-01 0{i}:00:00") for i in range(5)] + [_campaign(9, "2026-11-02 00:00:00")]
    assert [c["id"] for c in f._keep_page(page, f._bounds)] == [0, 1, 2, 3, 4]
    assert f.outside == 1
