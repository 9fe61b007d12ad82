from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_provider.windows import (
    MAX_FUTURE,
    ceil_to_second,
    plan_windows,
    to_api_time,
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


def test_one_day_in_utc_gives_inclusive_second_bounds():
    plan = plan_windows(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 2, tzinfo=UTC), now=NOW)
    assert [w.api_bounds("UTC") for w in plan.windows] == [("2026-01-01 00:00:00", "2026-01-01 23:59:59")]


def test_bounds_render_in_the_api_timezone():
    plan = plan_windows(datetime(2026, 7, 1, tzinfo=UTC), datetime(2026, 7, 2, tzinfo=UTC), now=NOW)
    assert plan.windows[0].api_bounds("Europe/Berlin") == ("2026-07-01 02:00:00", "2026-07-02 01:59:59")


def test_seven_months_split_into_three_calendar_month_windows():
    plan = plan_windows(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC), now=NOW)
    assert [(w.start.month, w.end.month) for w in plan.windows] == [(1, 4), (4, 7), (7, 8)]
    assert plan.windows[0].api_bounds("UTC") == ("2026-01-01 00:00:00", "2026-03-31 23:59:59")


def test_month_end_start_clamps_like_the_calendar():
    plan = plan_windows(datetime(2025, 11, 30, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC), now=NOW)
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
    assert api_to == "2026-03-29 01:29:59"
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
        # The inclusive API bounds name exactly the first and last second of the window.
        assert to_api_time(w.start, tz) == api_from
        assert to_api_time(w.end - timedelta(seconds=1), tz) == api_to
