from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from bsg_provider.client.counters import RequestCounters
from bsg_provider.extraction.progress import ExtractionProgress
from bsg_provider.extraction.windows import plan_windows

UTC = timezone.utc
NOW = datetime(2026, 11, 27, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_lines_say_where_the_extraction_stands(caplog):
    plan = plan_windows(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 5, 1, tzinfo=UTC), now=NOW)
    clock, counters = Clock(), RequestCounters()
    progress = ExtractionProgress(
        logging.getLogger("t.progress"), plan, campaign_type="sms", counters=counters, interval=5, clock=clock
    )
    with caplog.at_level(logging.INFO, logger="t.progress"):
        progress.started()
        for index, window in enumerate(plan.windows, 1):
            progress.window_started(index, window)
            for _ in range(10):
                clock.now += 1
                counters.requests += 1
                progress.page(index, window, 500, 5000)
            counters.retries += 1
            counters.retry_wait_seconds += 2.5
            progress.window_finished(index, window)
        clock.now += 1
        progress.finished()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == (
        "Extracting sms campaigns created in [2026-01-01T00:00:00+00:00, 2026-05-01T00:00:00+00:00) in 2 "
        "window(s) of API timezone UTC: 1: [2026-01-01T00:00:00+00:00, 2026-03-31T00:00:00+00:00); "
        "2: [2026-03-31T00:00:00+00:00, 2026-05-01T00:00:00+00:00)"
    )
    assert lines[1] == (
        "Window 1/2: 5 pages, 2500 of 5000 records, 500 records/s; "
        "0 retries, 0.0 s waiting on retries and rate limits."
    )
    assert lines[3].startswith(
        "Window 1/2 [2026-01-01T00:00:00+00:00, 2026-03-31T00:00:00+00:00) done: 5000 records in 10 pages"
    )
    assert lines[-1] == (
        "Extracted 10000 sms campaigns from 2 window(s) with 20 requests in 21.0 s (476 records/s); "
        "2 retries, 5.0 s waiting on retries and rate limits."
    )
    assert progress.lines == len(lines) == 8


def test_fast_pages_do_not_flood_the_log(caplog):
    plan = plan_windows(NOW - timedelta(days=30), NOW, now=NOW)
    clock = Clock()
    progress = ExtractionProgress(
        logging.getLogger("t.flood"), plan, campaign_type="sms", counters=RequestCounters(), clock=clock
    )
    with caplog.at_level(logging.INFO, logger="t.flood"):
        progress.started()
        progress.window_started(1, plan.windows[0])
        for _ in range(2500):
            clock.now += 0.01
            progress.page(1, plan.windows[0], 500, 1_000_000)
        progress.window_finished(1, plan.windows[0])
        progress.finished()
    assert len(caplog.records) == 5  # plan, two interval lines in 25 s, window, closing
