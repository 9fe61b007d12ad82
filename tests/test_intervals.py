from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pendulum
import pytest

from bsg_provider.errors import BsgConfigError
from bsg_provider.extraction.intervals import (
    NO_DATA_INTERVAL_MESSAGE,
    check_lookback,
    human_duration,
    parse_bound,
    resolve_interval,
)

UTC = timezone.utc
D1 = datetime(2024, 5, 1, tzinfo=UTC)
D2 = datetime(2024, 5, 2, tzinfo=UTC)


def test_the_data_interval_is_the_default():
    interval = resolve_interval(start=None, end=None, data_interval_start=D1, data_interval_end=D2)
    assert (interval.start, interval.end) == (D1, D2)
    assert (interval.start_source, interval.end_source) == ("data_interval_start", "data_interval_end")


def test_explicit_bounds_win_over_the_data_interval():
    interval = resolve_interval(
        start="2024-04-01T00:00:00+00:00",
        end=datetime(2024, 4, 3, tzinfo=UTC),
        data_interval_start=D1,
        data_interval_end=D2,
    )
    assert interval.start == datetime(2024, 4, 1, tzinfo=UTC)
    assert interval.end == datetime(2024, 4, 3, tzinfo=UTC)
    assert (interval.start_source, interval.end_source) == ("start", "end")


def test_one_explicit_bound_combines_with_the_other_from_the_run():
    interval = resolve_interval(
        start="2024-04-30T00:00:00+00:00", end=None, data_interval_start=D1, data_interval_end=D2
    )
    assert (interval.start, interval.end) == (datetime(2024, 4, 30, tzinfo=UTC), D2)
    assert (interval.start_source, interval.end_source) == ("start", "data_interval_end")


def test_lookback_moves_only_the_start_back():
    interval = resolve_interval(
        start=None, end=None, data_interval_start=D1, data_interval_end=D2, lookback=timedelta(days=3)
    )
    assert (interval.start, interval.end) == (D1 - timedelta(days=3), D2)
    assert interval.lookback == timedelta(days=3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-05-01T02:00:00+02:00", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01 00:00:00+00:00", D1),  # what "{{ data_interval_start }}" renders to
        ("2024-05-01T00:00:00Z", D1),
        (" 2024-05-01T00:00:00.250000+00:00 ", D1 + timedelta(milliseconds=250)),
    ],
)
def test_bounds_read_iso_strings_with_an_offset(text, expected):
    assert parse_bound(text, "start") == expected


def test_bounds_keep_pendulum_datetimes():
    moment = pendulum.datetime(2024, 5, 1, 3, tz="Europe/Berlin")
    assert parse_bound(moment, "end") == datetime(2024, 5, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("value", [datetime(2024, 5, 1), "2024-05-01T00:00:00", "2024-05-01"])
def test_naive_bounds_are_refused_with_the_fix(value):
    with pytest.raises(BsgConfigError, match=r"^start 2024-05-01T00:00:00 has no timezone.*add a UTC offset"):
        resolve_interval(start=value, end=D2, data_interval_start=None, data_interval_end=None)


def test_unreadable_bounds_say_which_and_what_form_works():
    with pytest.raises(BsgConfigError, match=r"^end 'yesterday' is not an ISO 8601 timestamp; use a form"):
        parse_bound("yesterday", "end")
    with pytest.raises(BsgConfigError, match=r"^end must be a datetime or an ISO 8601 string.*got int 5"):
        parse_bound(5, "end")


def test_zero_width_data_interval_fails_with_the_explanation_word_for_word():
    with pytest.raises(BsgConfigError) as caught:
        resolve_interval(start=None, end=None, data_interval_start=D1, data_interval_end=D1)
    assert str(caught.value) == (
        "The run has no data interval to extract (data_interval_start == data_interval_end == "
        '2024-05-01T00:00:00+00:00): Airflow 3\'s cron schedules (schedule="@daily", CronTriggerTimetable) '
        "give zero-width intervals, and manual or asset-triggered runs may have none. Use a data-interval "
        'timetable, e.g. schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"), or pass start '
        'and end, e.g. start="{{ data_interval_start - macros.timedelta(days=1) }}", '
        'end="{{ data_interval_end }}".'
    )


@pytest.mark.parametrize(
    ("start", "end", "dis", "die", "cause"),
    [
        (None, None, None, None, "data_interval_start and data_interval_end are None"),
        ("None", "None", None, None, "data_interval_start and data_interval_end are None"),
        ("2024-04-01T00:00:00+00:00", None, None, None, "data_interval_end is None"),
        (None, None, D1, None, "data_interval_end is None"),
    ],
)
def test_a_run_without_data_interval_fails_naming_what_is_missing(start, end, dis, die, cause):
    with pytest.raises(BsgConfigError) as caught:
        resolve_interval(start=start, end=end, data_interval_start=dis, data_interval_end=die)
    assert str(caught.value) == NO_DATA_INTERVAL_MESSAGE % cause


def test_a_zero_width_run_is_fine_once_start_is_given():
    interval = resolve_interval(
        start="2024-04-30T00:00:00+00:00", end=None, data_interval_start=D1, data_interval_end=D1
    )
    assert (interval.start, interval.end) == (datetime(2024, 4, 30, tzinfo=UTC), D1)


def test_start_after_end_is_refused():
    with pytest.raises(BsgConfigError) as caught:
        resolve_interval(start=D2, end=D1, data_interval_start=None, data_interval_end=None)
    assert str(caught.value) == (
        "start 2024-05-02T00:00:00+00:00 is after end 2024-05-01T00:00:00+00:00; "
        "the interval [start, end) needs start before end."
    )


def test_explicit_empty_interval_is_refused():
    with pytest.raises(BsgConfigError, match=r"^The interval to extract is empty: start and end are both "):
        resolve_interval(start=D1, end=D1, data_interval_start=None, data_interval_end=None)


def test_lookback_must_be_a_timedelta_of_zero_or_more():
    assert check_lookback(timedelta(0)) == timedelta(0)
    with pytest.raises(
        BsgConfigError, match=r"^lookback must not be negative .* got -1 day, 0:00:00 \(-86400 s\)"
    ):
        check_lookback(timedelta(days=-1))
    with pytest.raises(BsgConfigError, match=r"got -1:00:00 \(-3600 s\)\.$"):
        check_lookback(timedelta(hours=-1))
    with pytest.raises(BsgConfigError, match=r"^lookback must be a datetime.timedelta, e.g. timedelta\("):
        check_lookback(3600)


@pytest.mark.parametrize(
    ("duration", "words"),
    [
        (timedelta(days=1), "1 day"),
        (timedelta(days=2, hours=6), "2 days 6 hours"),
        (timedelta(hours=1, minutes=1), "1 hour 1 minute"),
        (timedelta(seconds=90.5), "1 minute 30.5 seconds"),
        (timedelta(days=1, seconds=1), "1 day 1 second"),
        (timedelta(0), "0 seconds"),
    ],
)
def test_human_duration_reads_as_words(duration, words):
    assert human_duration(duration) == words
