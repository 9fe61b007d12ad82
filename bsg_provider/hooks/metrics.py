"""
The provider's metrics, sent through Airflow's ``Stats`` to whatever StatsD or OpenTelemetry
backend the deployment configured. Every name lives here, under one prefix; docs/metrics.md
lists them.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import Stats

PREFIX = "bsg"
REQUESTS = f"{PREFIX}.requests"
REQUEST_DURATION = f"{PREFIX}.request_duration"
RETRIES = f"{PREFIX}.retries"
LOGINS = f"{PREFIX}.logins"
RECORDS_EXTRACTED = f"{PREFIX}.records_extracted"
SENSOR_POLLS = f"{PREFIX}.sensor.polls"
SENSOR_OUTCOMES = f"{PREFIX}.sensor.outcomes"


def status_class(status: int | None) -> str:
    """``2xx``, ``4xx``, ``5xx``..., or ``none`` when no answer arrived."""
    return f"{status // 100}xx" if status else "none"


def request_sent(endpoint: str, status: int | None, seconds: float) -> None:
    """
    Count one HTTP exchange and time it.

    :param endpoint: ``login``, ``refresh``, ``list``, ``get``...
    :param status: the HTTP status, or None when the connection failed.
    :param seconds: time from sending to the whole body read.
    """
    Stats.incr(REQUESTS, tags={"endpoint": endpoint, "status_class": status_class(status)})
    Stats.timing(REQUEST_DURATION, seconds * 1000.0, tags={"endpoint": endpoint})


def retried(reason: str) -> None:
    """Count one retry; ``reason`` is ``429``, ``503``, ``timeout``, ``connection``, ``malformed_json``..."""
    Stats.incr(RETRIES, tags={"reason": reason})


def logged_in() -> None:
    """Count one login (a fresh JWT from the API key)."""
    Stats.incr(LOGINS)


def records_extracted(count: int, campaign_type: str) -> None:
    """Count campaigns passed on to the caller."""
    if count:
        Stats.incr(RECORDS_EXTRACTED, count, tags={"campaign_type": campaign_type})


def sensor_polled(mode: str) -> None:
    """Count one status check of a sensor or trigger (``poke``, ``reschedule`` or ``deferrable``)."""
    Stats.incr(SENSOR_POLLS, tags={"mode": mode})


def sensor_finished(outcome: str) -> None:
    """Count a sensor's end: ``success``, ``failure``, ``not_found``, ``timeout`` or ``error``."""
    Stats.incr(SENSOR_OUTCOMES, tags={"outcome": outcome})
