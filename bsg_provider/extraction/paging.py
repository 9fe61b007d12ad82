"""
Offset paging through one window, safe against rows that appear or vanish mid-way.

The API pages by offset over a live table, sorted by id ascending. A row deleted from a
page already read shifts every later row one place to the left, so the next offset skips
one. :class:`WindowPager` notices the change of ``meta.page.total``, reads the window again
from the start and passes on only ids it has not passed on before. A new campaign gets a
higher id than every existing one, so it is appended after the rows read and shifts none
of them: in windows that can gain rows (the live ones, whose pages overlap by one row), a
grown total whose boundary row is still in place is simply followed, so a busy account
that creates a campaign before every request is read to the end without a rescan. A
shift there (a delete, or a delete and an insert that keep the total) moves the boundary
row, and the window is read again. It is pure: the hook and any other client drive it
with the pages they fetch.
"""

from __future__ import annotations

import operator
from array import array
from bisect import bisect_left, insort
from typing import Any

from bsg_provider.client.api import CampaignPage
from bsg_provider.client.usual_page import record_ids
from bsg_provider.errors import BsgPagingError

#: Full re-reads of one window allowed before we give up on a total that never settles.
MAX_RESCANS = 5


class WindowPager:
    """
    Which offset to request next for one window, and which records of a page are new.

    :param limit: the page size requested.
    :param max_rescans: re-reads of the window allowed after the total changed.
    :param overlap: start each page after the first one row early and check that row is the
        previous page's last. This catches a row removed and another added between two pages,
        which leaves the total unchanged; it costs one row per page, so it is meant for windows
        that can still gain rows (see :meth:`~bsg_provider.extraction.windows.Window.is_live`).
    """

    def __init__(self, limit: int, max_rescans: int = MAX_RESCANS, *, overlap: bool = False) -> None:
        self.limit = limit
        self.max_rescans = max_rescans
        self.overlap = overlap
        self.offset = 0
        self.total: int | None = None
        self.done = False
        self.pages = 0
        self.rescans = 0
        #: Pages whose total had grown with the rows already read still in place (no rescan needed).
        self.grew = 0
        # Ids passed on so far, sorted; 8 bytes each, and only for the current window.
        self._emitted: array[int] = array("q")
        # Rows of the current pass in ascending id order: a consistent pass holds exactly `total`.
        self._pass_rows = 0
        self._pass_last_id: int | None = None
        # The last row of the previous page, which an overlapping page must start with.
        self._boundary_id: int | None = None

    @property
    def request_offset(self) -> int:
        """The ``page[offset]`` to request next."""
        return self.offset - 1 if self._overlapping else self.offset

    def predicted_offsets(self, count: int) -> list[int]:
        """
        The next ``count`` (at most) offsets this pager will request if the total holds and every
        page is full: :attr:`request_offset` first, then the ones after it, ending with the
        window's last page. Before the first page (no total yet) only :attr:`request_offset`.

        A prediction only: a concurrent reader fetches these ahead, and must still hand each
        page to :meth:`accept` in order and follow :attr:`request_offset` where it differs.

        :param count: how many offsets to predict at most.
        """
        if self.done or count < 1:
            return []
        if self.total is None:
            return [self.request_offset]
        total, offset, overlapping = self.total, self.offset, self._overlapping
        offsets: list[int] = []
        while len(offsets) < count:
            request = offset - 1 if overlapping else offset
            offsets.append(request)
            rows = min(self.limit, total - request)
            consumed = rows - 1 if overlapping else rows
            offset += consumed
            # As accept(): a page that ends the window, or one that moves nothing on, ends the prediction.
            if consumed <= 0 or offset >= total:
                break
            overlapping = self.overlap
        return offsets

    @property
    def _overlapping(self) -> bool:
        return self.overlap and self.offset > 0 and self._boundary_id is not None

    @property
    def emitted(self) -> int:
        """How many distinct records this window has passed on."""
        return len(self._emitted)

    def accept(self, page: CampaignPage) -> list[Any]:
        """
        Take the page fetched at :attr:`request_offset` and return its records not passed on before.

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
        overlapped = self._overlapping
        ids = record_ids(records)
        fresh = self._fresh(records, ids)
        boundary_held = not overlapped or (bool(ids) and ids[0] == self._boundary_id)
        if self.total is None:
            self.total = page.total
        elif page.total > self.total and overlapped and boundary_held:
            # Rows were added, and the row before this page is still where it was: with
            # sort=id asc new campaigns (higher ids) come after every row read, so nothing shifted.
            self.total = page.total
            self.grew += 1
        elif page.total != self.total:
            self._rescan(f"its total changed from {self.total} to {page.total} while paging")
            self.total = page.total
            return fresh
        if not boundary_held:
            self._rescan("the row at a page boundary moved (rows were removed and added between pages)")
            return fresh
        if records and not fresh and self.rescans == 0:
            # Nothing new on a first pass means the server ignores page[offset].
            self._rescan("a page repeated campaigns already read")
            return fresh
        consumed = len(records) - 1 if overlapped else len(records)
        self.offset += consumed
        if ids:
            self._boundary_id = ids[-1]
        if self.offset >= page.total:
            if self._pass_rows != page.total:
                self._rescan(
                    f"its pages held {self._pass_rows} distinct campaigns in id order but its total "
                    f"says {page.total}"
                )
            else:
                self.done = True
        elif consumed <= 0:
            # The total promises more rows than the pages hold: read again to be sure nothing was skipped.
            self._rescan(f"a page at offset {self.offset} was empty although the total is {page.total}")
        return fresh

    def _fresh(self, records: list[Any], ids: list[int]) -> list[Any]:
        fresh = self._fresh_usual_page(records, ids)
        return self._fresh_one_by_one(records, ids) if fresh is None else fresh

    def _fresh_usual_page(self, records: list[Any], ids: list[int]) -> list[Any] | None:
        """
        :meth:`_fresh_one_by_one` for the usual page, in C-level passes: ascending ids past every
        one passed on (the pass's last id is one of them), so each is new and in id order. None
        for any other page.
        """
        emitted = self._emitted
        if not ids or (emitted and ids[0] <= emitted[-1]) or not all(map(operator.lt, ids, ids[1:])):
            return None
        emitted.extend(ids)
        self._pass_rows += len(ids)
        self._pass_last_id = ids[-1]
        return list(records)

    def _fresh_one_by_one(self, records: list[Any], ids: list[int]) -> list[Any]:
        emitted = self._emitted
        last = self._pass_last_id
        fresh: list[Any] = []
        for record, campaign_id in zip(records, ids, strict=True):
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
        self._boundary_id = None
