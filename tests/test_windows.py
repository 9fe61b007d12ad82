from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_provider.extraction.windows import (
    CALENDAR_SPAN,
    MAX_FUTURE,
    ceil_to_second,
    plan_windows,
    wall_readings,
)

UTC = timezone.utc
NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]


def _api_span_ok(api_from: str, api_to: str) -> bool:
    """The API's own rule, read independently: to - 3 calendar months <= from <= to, on its wall clock."""
    lo = datetime.strptime(api_from, "%Y-%m-%d %H:%M:%S")
    hi = datetime.strptime(api_to, "%Y-%m-%d %H:%M:%S")
    back = pendulum.naive(hi.year, hi.month, hi.day, hi.hour, hi.minute, hi.second).subtract(months=3)
    limit = datetime(back.year, back.month, back.day, back.hour, back.minute, back.second)
    return limit <= lo <= hi


def test_one_day_in_utc_asks_a_second_more_on_each_side():
    plan = plan_windows(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), now=NOW)
    assert [w.api_bounds("UTC") for w in plan.windows] == [("2025-12-31 23:59:59", "2026-01-02 00:00:00")]


def test_bounds_render_in_the_api_timezone():
    plan = plan_windows(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 7, 2, tzinfo=UTC), now=NOW)
    assert plan.windows[0].api_bounds("Europe/Berlin") == ("2026-07-01 01:59:59", "2026-07-02 02:00:00")


def test_seven_months_split_into_three_windows_a_request_under_three_calendar_months():
    plan = plan_windows(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC), now=NOW)
    # from 2025-12-31 23:59:59 + 3 months = 2026-03-31 23:59:59, so to stays under it: the
    # window ends at the last midnight before, 2026-03-31 00:00.
    assert [w.api_bounds("UTC") for w in plan.windows] == [
        ("2025-12-31 23:59:59", "2026-03-31 00:00:00"),
        ("2026-03-30 23:59:59", "2026-06-30 00:00:00"),
        ("2026-06-29 23:59:59", "2026-08-01 00:00:00"),
    ]


def test_month_end_start_clamps_like_the_calendar():
    plan = plan_windows(datetime(2025, 12, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC), now=NOW)
    # from 2025-11-30 23:59:59 + 3 months clamps to 2026-02-28 23:59:59.
    assert plan.windows[0].end == datetime(2026, 2, 28, tzinfo=UTC)


def test_sub_second_bounds_round_up_so_consecutive_intervals_meet():
    b = datetime(2026, 3, 1, 10, 0, 0, 500_000, tzinfo=UTC)
    first = plan_windows(datetime(2026, 3, 1, tzinfo=UTC), b, now=NOW)
    second = plan_windows(b, datetime(2026, 3, 2, tzinfo=UTC), now=NOW)
    assert first.windows[-1].end == second.windows[0].start == datetime(2026, 3, 1, 10, 0, 1, tzinfo=UTC)


def test_sub_second_bounds_in_a_zone_round_up_across_a_dst_change():
    # 02:59:59.5 summer time is 00:59:59.5 UTC; the next whole second is 01:00:00 UTC, not 02:00 UTC.
    start = datetime(2024, 10, 27, 2, 59, 59, 500_000, tzinfo=ZoneInfo("Europe/Berlin"))
    plan = plan_windows(start, start + timedelta(hours=3), tz="Europe/Berlin", now=NOW)
    assert plan.start == datetime(2024, 10, 27, 1, 0, 0, tzinfo=UTC)


def test_end_past_the_future_limit_is_clipped():
    plan = plan_windows(NOW - timedelta(days=1), NOW + timedelta(days=60), now=NOW)
    assert plan.clipped
    assert plan.end <= NOW + MAX_FUTURE
    assert plan.end > NOW + MAX_FUTURE - timedelta(minutes=10)
    assert all(w.end <= plan.end for w in plan.windows)


def test_interval_entirely_beyond_the_limit_has_no_windows():
    plan = plan_windows(NOW + timedelta(days=40), NOW + timedelta(days=41), now=NOW)
    assert plan.windows == ()
    assert plan.clipped


def test_zero_width_interval_has_no_windows():
    plan = plan_windows(NOW - timedelta(days=1), NOW - timedelta(days=1), now=NOW)
    assert plan.windows == ()
    assert not plan.clipped


def test_dst_gap_at_the_three_month_mark_keeps_the_window_legal():
    # 2025-12-29 02:30 Berlin + 3 months = 2026-03-29 02:30, a wall time the DST change skips.
    start = datetime(2025, 12, 29, 2, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    plan = plan_windows(start, start + timedelta(days=120), tz="Europe/Berlin", now=NOW)
    api_from, api_to = plan.windows[0].api_bounds("Europe/Berlin")
    assert api_from == "2025-12-29 02:29:59"
    assert api_to == "2026-03-29 00:00:00"
    assert _api_span_ok(api_from, api_to)


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        (datetime(2026, 1, 1), datetime(2026, 1, 2, tzinfo=UTC), "start 2026-01-01T00:00:00 has no timezone"),
        (datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2), "end 2026-01-02T00:00:00 has no timezone"),
        (
            datetime(2026, 1, 2, tzinfo=UTC),
            datetime(2026, 1, 1, tzinfo=UTC),
            "start 2026-01-02T00:00:00+00:00 is after end 2026-01-01T00:00:00+00:00",
        ),
    ],
)
def test_bad_intervals_are_refused(start, end, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        plan_windows(start, end, now=NOW)


def test_unknown_timezone_is_refused():
    with pytest.raises(ValueError, match="Unknown API timezone 'Mars/Olympus'"):
        plan_windows(NOW - timedelta(days=1), NOW, tz="Mars/Olympus", now=NOW)


instants = st.datetimes(
    min_value=datetime(2020, 1, 1), max_value=datetime(2027, 6, 1), timezones=st.just(UTC)
)


@settings(max_examples=200, deadline=None)
@given(
    points=st.lists(instants, min_size=2, max_size=6, unique=True),
    tz=st.sampled_from(ZONES),
)
def test_consecutive_intervals_partition_the_timeline(points, tz):
    """For any cut points, the windows of consecutive intervals tile the timeline at second resolution."""
    points = sorted(points)
    windows = []
    for lo, hi in itertools.pairwise(points):
        windows.extend(plan_windows(lo, hi, tz=tz, now=NOW).windows)
    limit = plan_windows(points[0], points[-1], tz=tz, now=NOW).end
    covered_to = ceil_to_second(points[0])
    for w in windows:
        assert w.start == covered_to, "gap or overlap between windows"
        assert w.start < w.end
        assert w.start.microsecond == 0 and w.end.microsecond == 0
        covered_to = w.end
    assert covered_to == max(min(ceil_to_second(points[-1]), limit), ceil_to_second(points[0]))
    for w in windows:
        api_from, api_to = w.api_bounds(tz)
        assert _api_span_ok(api_from, api_to), (api_from, api_to)
        assert w.end <= NOW + MAX_FUTURE
        walls = w.api_walls(tz)
        zone = ZoneInfo(tz)
        # Every reading of the bounds encloses the window with a second to spare below.
        assert max(wall_readings(walls[0], zone)) <= w.start - timedelta(seconds=1)
        assert min(wall_readings(walls[1], zone)) >= w.end


BERLIN = "Europe/Berlin"


def _u(*args):
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("start", "end", "bounds"),
    [
        # The hour: [00:30Z, 01:30Z) is 02:30 summer time to 02:30 winter time.
        (_u(2026, 10, 25, 0, 30), _u(2026, 10, 25, 1, 30), ("2026-10-25 01:59:59", "2026-10-25 03:00:00")),
        # Inside the first 02:xx: to keeps its first reading, which is at or after the end.
        (_u(2026, 10, 25, 0, 40), _u(2026, 10, 25, 0, 50), ("2026-10-25 01:59:59", "2026-10-25 02:50:00")),
        # Inside the second 02:xx: from keeps its later reading, to moves past the repetition.
        (_u(2026, 10, 25, 1, 40), _u(2026, 10, 25, 1, 50), ("2026-10-25 02:39:59", "2026-10-25 03:00:00")),
        (_u(2026, 10, 24, 22), _u(2026, 10, 25, 22), ("2026-10-24 23:59:59", "2026-10-25 23:00:00")),
    ],
)
def test_a_repeated_hour_never_gives_an_inverted_or_short_window(start, end, bounds):
    (window,) = plan_windows(start, end, tz=BERLIN, now=NOW).windows
    assert window.api_bounds(BERLIN) == bounds
    api_from, api_to = bounds
    assert api_from < api_to


def test_a_skipped_hour_at_the_end_sends_the_first_real_wall_time():
    # 2026-03-29 01:00Z: Berlin jumps from 02:00 to 03:00.
    (window,) = plan_windows(_u(2026, 3, 29, 0), _u(2026, 3, 29, 1), tz=BERLIN, now=NOW).windows
    assert window.api_bounds(BERLIN) == ("2026-03-29 00:59:59", "2026-03-29 03:00:00")


def test_only_a_refused_request_longer_than_88_days_shrinks_the_span():
    long_from, long_to = datetime(2026, 5, 1), datetime(2026, 7, 31, 23, 59, 58)
    fallback = CALENDAR_SPAN.shorter(long_from, long_to)
    assert fallback is not None and fallback.describe() == "88 days"
    # An 88-day request refused, or a short one: no span rule of 89 days or more explains it.
    assert fallback.shorter(long_from, long_to) is None
    assert CALENDAR_SPAN.shorter(datetime(2026, 5, 1), datetime(2026, 5, 2)) is None


@pytest.mark.parametrize("tz", ZONES)
def test_after_a_refusal_every_request_fits_any_rule_of_89_days(tz):
    plan = plan_windows(_u(2025, 1, 1), _u(2026, 11, 1), tz=tz, now=NOW)
    plan = plan.replanned(1, CALENDAR_SPAN.shorter(datetime(2026, 1, 1), datetime(2026, 4, 1)))
    assert plan.windows[:1] == plan_windows(_u(2025, 1, 1), _u(2026, 11, 1), tz=tz, now=NOW).windows[:1]
    zone = ZoneInfo(tz)
    for previous, window in itertools.pairwise(plan.windows):
        assert previous.end == window.start
    assert plan.windows[-1].end == plan.end
    for window in plan.windows[1:]:
        api_from, api_to = window.api_walls(tz)
        assert api_to - api_from <= timedelta(days=88)
        elapsed = max(wall_readings(api_to, zone)) - min(wall_readings(api_from, zone))
        assert elapsed < timedelta(days=89)


def test_a_calendar_window_may_exceed_90_days_which_is_what_shrinking_is_for():
    plan = plan_windows(_u(2026, 5, 1), _u(2026, 8, 1), now=NOW)
    api_from, api_to = plan.windows[0].api_walls("UTC")
    assert api_to - api_from > timedelta(days=90)


def test_pendulum_bounds_plan_like_datetimes():
    # Airflow's data intervals are pendulum DateTimes, whose replace(tzinfo=...) differs from datetime's.
    start = pendulum.datetime(2026, 10, 1, tz="Europe/Berlin")
    plain = datetime(2026, 10, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    for tz in ("UTC", BERLIN):
        got = plan_windows(start, start.add(months=5), tz=tz, now=NOW, span=CALENDAR_SPAN)
        want = plan_windows(plain, plain + timedelta(days=151), tz=tz, now=NOW)
        assert got.windows == want.windows
