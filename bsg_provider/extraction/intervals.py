"""
Which ``[start, end)`` an extraction covers: explicit bounds, the run's data interval, lookback.

Pure, so the rules (and the zero-width message that docs/operator.md quotes) are tested
without Airflow. The operator passes in what the run's context holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bsg_provider.errors import BsgConfigError

#: Raised when the interval would come from the run and the run has none to give. ``%s`` is the cause.
NO_DATA_INTERVAL_MESSAGE = (
    "The run has no data interval to extract (%s): Airflow 3's cron schedules "
    '(schedule="@daily", CronTriggerTimetable) give zero-width intervals, and manual or '
    "asset-triggered runs may have none. Use a data-interval timetable, e.g. "
    'schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"), or pass start and end, e.g. '
    'start="{{ data_interval_start - macros.timedelta(days=1) }}", end="{{ data_interval_end }}".'
)


@dataclass(frozen=True)
class ExtractionInterval:
    """
    The interval to extract, and where its bounds came from.

    :param start: first instant included, after lookback.
    :param end: first instant excluded.
    :param start_source: ``start`` (the argument) or ``data_interval_start``.
    :param end_source: ``end`` (the argument) or ``data_interval_end``.
    :param lookback: how far ``start`` was moved back.
    """

    start: datetime
    end: datetime
    start_source: str
    end_source: str
    lookback: timedelta


def human_duration(duration: timedelta) -> str:
    """
    ``duration`` in words for a log line: ``1 day``, ``2 days 6 hours``, ``1 minute 30.5 seconds``.

    :param duration: zero or more.
    """
    whole_minutes, seconds = divmod(duration.total_seconds(), 60)
    days, rest = divmod(int(whole_minutes), 24 * 60)
    hours, minutes = divmod(rest, 60)
    seconds = round(seconds, 6)
    parts = [
        f"{count:g} {unit}{'' if count == 1 else 's'}"
        for count, unit in ((days, "day"), (hours, "hour"), (minutes, "minute"), (seconds, "second"))
        if count
    ]
    return " ".join(parts) or "0 seconds"


def check_lookback(lookback: Any) -> timedelta:
    """Return ``lookback`` if it is a timedelta of zero or more, else raise :class:`BsgConfigError`."""
    if not isinstance(lookback, timedelta):
        raise BsgConfigError(
            f"lookback must be a datetime.timedelta, e.g. timedelta(days=2), got {lookback!r}."
        )
    if lookback < timedelta(0):
        raise BsgConfigError(
            f"lookback must not be negative (it moves the interval's start back), "
            f"got -{-lookback} ({lookback.total_seconds():g} s)."
        )
    return lookback


def parse_bound(value: Any, name: str) -> datetime | None:
    """
    Read one bound as given to the operator (after templating).

    :param value: None, an aware datetime or an ISO 8601 string with an offset,
        such as ``2024-05-01T00:00:00+00:00`` (what ``{{ data_interval_start }}`` renders to).
    :param name: ``start`` or ``end``, for messages.
    :raises BsgConfigError: for anything else, naive datetimes included.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text or text.lower() == "none":
            # What "{{ data_interval_start }}" renders to when the run has no data interval.
            return None
        try:
            moment = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise BsgConfigError(
                f"{name} {value!r} is not an ISO 8601 timestamp; use a form such as "
                "'2024-05-01T00:00:00+00:00'."
            ) from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise BsgConfigError(
            f"{name} must be a datetime or an ISO 8601 string with a UTC offset, "
            f"got {type(value).__name__} {value!r}."
        )
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BsgConfigError(
            f"{name} {moment.isoformat()} has no timezone, so the instant it means is unknown; "
            "add a UTC offset (e.g. '2024-05-01T00:00:00+00:00') or pass an aware datetime "
            "(e.g. pendulum.datetime(2024, 5, 1, tz='UTC'))."
        )
    return moment


def resolve_interval(
    *,
    start: Any,
    end: Any,
    data_interval_start: datetime | None,
    data_interval_end: datetime | None,
    lookback: timedelta = timedelta(0),
) -> ExtractionInterval:
    """
    Decide ``[start, end)``: each bound from its argument if given, else from the run's data interval.

    :param start: the operator's ``start`` after templating (None: use ``data_interval_start``).
    :param end: the operator's ``end`` after templating (None: use ``data_interval_end``).
    :param data_interval_start: the run's, or None when it has none.
    :param data_interval_end: the run's, or None when it has none.
    :param lookback: moves the start back, to re-read recent campaigns whose status changed.
    :raises BsgConfigError: when the interval is missing, zero-width, reversed or naive.
    """
    lookback = check_lookback(lookback)
    explicit_start = parse_bound(start, "start")
    explicit_end = parse_bound(end, "end")
    start_source = "start" if explicit_start is not None else "data_interval_start"
    end_source = "end" if explicit_end is not None else "data_interval_end"
    lo = explicit_start or parse_bound(data_interval_start, start_source)
    hi = explicit_end or parse_bound(data_interval_end, end_source)

    missing = [name for name, value in ((start_source, lo), (end_source, hi)) if value is None]
    if missing:
        cause = " and ".join(missing) + (" are None" if len(missing) > 1 else " is None")
        raise BsgConfigError(NO_DATA_INTERVAL_MESSAGE % cause)
    assert lo is not None and hi is not None
    if lo == hi:
        if explicit_start is None and explicit_end is None:
            raise BsgConfigError(
                NO_DATA_INTERVAL_MESSAGE % f"data_interval_start == data_interval_end == {lo.isoformat()}"
            )
        raise BsgConfigError(
            f"The interval to extract is empty: {start_source} and {end_source} are both {lo.isoformat()}, "
            "and the end is excluded. Make end later than start."
        )
    if lo > hi:
        raise BsgConfigError(
            f"{start_source} {lo.isoformat()} is after {end_source} {hi.isoformat()}; "
            "the interval [start, end) needs start before end."
        )
    return ExtractionInterval(
        start=lo - lookback, end=hi, start_source=start_source, end_source=end_source, lookback=lookback
    )
