"""
Offset paging through one window, safe against rows that appear or vanish mid-way.

The API pages by offset over a live table. A row deleted from a page already read
shifts every later row one place to the left, so the next offset skips one; a row
inserted shifts them right, so one comes twice. Both change ``meta.page.total``.
:class:`WindowPager` notices the change, reads the window again from the start and
passes on only ids it has not passed on before. It is pure: the hook and any other
client drive it with the pages they fetch.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from typing import Any

from bsg_provider.api import CampaignPage
from bsg_provider.errors import BsgPagingError

#: Full re-reads of one window allowed before we give up on a total that never settles.
MAX_RESCANS = 5


class WindowPager:
    """
    Which offset to request next for one window, and which records of a page are new.

    :param limit: the page size requested.
    :param max_rescans: re-reads of the window allowed after the total changed.
    """

    def __init__(self, limit: int, max_rescans: int = MAX_RESCANS) -> None:
        self.limit = limit
        self.max_rescans = max_rescans
        self.offset = 0
        self.total: int | None = None
        self.done = False
        self.pages = 0
        self.rescans = 0
        # Ids passed on so far, sorted; 8 bytes each, and only for the current window.
        self._emitted: array[int] = array("q")
        # Rows of the current pass in ascending id order: a consistent pass holds exactly `total`.
        self._pass_rows = 0
        self._pass_last_id: int | None = None

    @property
    def emitted(self) -> int:
        """How many distinct records this window has passed on."""
        return len(self._emitted)

    def accept(self, page: CampaignPage) -> list[dict[str, Any]]:
        """
        Take the page fetched at :attr:`offset` and return its records not passed on before.

        :param page: the parsed page.
        :raises BsgPagingError: when the API's paging is inconsistent beyond recovery.
        """
        if self.done:
            raise RuntimeError("WindowPager.accept() called after the window was complete")
        self.pages += 1
        records = page.records
        if len(records) > self.limit:
            raise BsgPagingError(
                f"The API returned {len(records)} campaigns for a page of at most {self.limit}; "
                "it is not honouring page[limit]."
            )
        fresh = self._fresh(records)
        if self.total is None:
            self.total = page.total
        elif page.total != self.total:
            self._rescan(f"its total changed from {self.total} to {page.total} while paging")
            self.total = page.total
            return fresh
        if records and not fresh and self.rescans == 0:
            # Nothing new on a first pass means the server ignores page[offset].
            self._rescan("a page repeated campaigns already read")
            return fresh
        self.offset += len(records)
        if self.offset >= page.total:
            if self._pass_rows != page.total:
                self._rescan(
                    f"its pages held {self._pass_rows} distinct campaigns in id order but its total "
                    f"says {page.total}"
                )
            else:
                self.done = True
        elif not records:
            # The total promises more rows than the pages hold: read again to be sure nothing was skipped.
            self._rescan(f"a page at offset {self.offset} was empty although the total is {page.total}")
        return fresh

    def _fresh(self, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        emitted = self._emitted
        fresh: list[dict[str, Any]] = []
        last = self._pass_last_id
        for record in records:
            campaign_id = record["id"]
            if last is None or campaign_id > last:
                last = campaign_id
                self._pass_rows += 1
            if not emitted or campaign_id > emitted[-1]:
                emitted.append(campaign_id)
            else:
                at = bisect_left(emitted, campaign_id)
                if at < len(emitted) and emitted[at] == campaign_id:
                    continue
                insort(emitted, campaign_id)
            fresh.append(record)
        self._pass_last_id = last
        return fresh

    def _rescan(self, why: str) -> None:
        if self.rescans >= self.max_rescans:
            raise BsgPagingError(
                f"Gave up paging a window after {self.rescans} re-reads: {why}. The account is "
                "changing faster than it can be read; rerun the task later."
            )
        self.rescans += 1
        self.offset = 0
        self.done = False
        self._pass_rows = 0
        self._pass_last_id = None
