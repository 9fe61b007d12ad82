"""
Progress of one extraction in the task log: the plan, a line per window and at most one
every few seconds within a window, then totals. Never a line per record.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from bsg_provider.client.counters import RequestCounters
from bsg_provider.extraction.windows import Window, WindowPlan

#: Least time between two progress lines inside one window.
PROGRESS_INTERVAL_SECONDS = 10.0


def _span(start: object, end: object) -> str:
    return f"[{_iso(start)}, {_iso(end)})"


def _iso(moment: object) -> str:
    return moment.isoformat() if hasattr(moment, "isoformat") else str(moment)


class ExtractionProgress:
    """
    Writes an extraction's progress lines to ``log`` at INFO.

    :param log: the task's logger.
    :param plan: the windows being extracted.
    :param campaign_type: ``sms``, ``rcs`` or ``whatsapp``, for the messages.
    :param what: what is extracted, for the messages; default ``"<campaign_type> campaigns"``.
    :param counters: the hook's request counters, read at each line.
    :param interval: least seconds between two lines inside one window.
    :param clock: a monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        log: logging.Logger,
        plan: WindowPlan,
        *,
        campaign_type: str = "sms",
        counters: RequestCounters,
        what: str | None = None,
        interval: float = PROGRESS_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.log = log
        self.plan = plan
        self.campaign_type = campaign_type
        self.what = what if what is not None else f"{campaign_type} campaigns"
        self.counters = counters
        self.interval = interval
        self.clock = clock
        self.records = 0
        self.lines = 0
        self._started = clock()
        self._window_started = self._started
        self._window_records = 0
        self._window_pages = 0
        self._last_line = self._started
        self._requests_before = counters.requests

    def _info(self, message: str, *args: object) -> None:
        self.lines += 1
        self.log.info(message, *args)

    def _request_note(self) -> str:
        c = self.counters
        waits = c.retry_wait_seconds + c.throttle_wait_seconds
        return f"{c.retries} retries, {waits:.1f} s waiting on retries and rate limits"

    def started(self) -> None:
        """Announce the plan: the interval actually covered and its windows."""
        plan = self.plan
        clipped = " (end clipped to the API's 30-day future limit)" if plan.clipped else ""
        self._info(
            "Extracting %s created in %s%s in %d window(s) of API timezone %s: %s",
            self.what,
            _span(plan.start, plan.end),
            clipped,
            len(plan.windows),
            plan.tz,
            "; ".join(f"{i}: {_span(w.start, w.end)}" for i, w in enumerate(plan.windows, 1)) or "none",
        )

    def window_started(self, index: int, window: Window) -> None:
        """Reset the per-window counts."""
        self._window_started = self.clock()
        self._window_records = 0
        self._window_pages = 0

    def page(self, index: int, window: Window, new_records: int, total: int | None) -> None:
        """
        Count one page; log if ``interval`` seconds passed since the last line.

        :param index: 1-based window number.
        :param window: the window being read.
        :param new_records: records of this page passed on.
        :param total: the API's ``meta.page.total`` for the window.
        """
        self.records += new_records
        self._window_records += new_records
        self._window_pages += 1
        now = self.clock()
        if now - self._last_line < self.interval:
            return
        self._last_line = now
        elapsed = max(now - self._window_started, 1e-9)
        self._info(
            "Window %d/%d: %d pages, %d of %s records, %.0f records/s; %s.",
            index,
            len(self.plan.windows),
            self._window_pages,
            self._window_records,
            total if total is not None else "?",
            self._window_records / elapsed,
            self._request_note(),
        )

    def window_finished(self, index: int, window: Window) -> None:
        """Log the window's totals."""
        self._last_line = self.clock()
        self._info(
            "Window %d/%d %s done: %d records in %d pages; %d records so far; %s.",
            index,
            len(self.plan.windows),
            _span(window.start, window.end),
            self._window_records,
            self._window_pages,
            self.records,
            self._request_note(),
        )

    def finished(self) -> float:
        """Log the closing line and return the elapsed seconds."""
        elapsed = self.clock() - self._started
        self._info(
            "Extracted %d %s from %d window(s) with %d requests in %.1f s (%.0f records/s); %s.",
            self.records,
            self.what,
            len(self.plan.windows),
            self.counters.requests - self._requests_before,
            elapsed,
            self.records / max(elapsed, 1e-9),
            self._request_note(),
        )
        return elapsed
