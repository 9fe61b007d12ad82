"""WindowPager against a scripted, changing table: nothing skipped, nothing twice."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_provider.client.api import CampaignPage
from bsg_provider.errors import BsgPagingError
from bsg_provider.extraction.paging import WindowPager


class Table:
    """A list of ids served by offset, sorted ascending, that tests can change between pages."""

    def __init__(self, ids):
        self.ids = sorted(ids)

    def page(self, offset, limit):
        rows = self.ids[offset : offset + limit]
        return CampaignPage([{"id": i} for i in rows], total=len(self.ids), offset=offset, limit=limit)


def drain(table, limit, between=None, max_pages=1000, overlap=False):
    pager = WindowPager(limit, overlap=overlap)
    out = []
    while not pager.done:
        out.extend(r["id"] for r in pager.accept(table.page(pager.request_offset, limit)))
        if between:
            between(pager.pages, table)
        assert pager.pages < max_pages
    return out, pager


def test_fault_free_paging_reads_each_page_once():
    table = Table(range(1, 1001))
    out, pager = drain(table, 300)
    assert out == list(range(1, 1001))
    assert pager.pages == 4 and pager.rescans == 0


def test_exact_multiple_of_the_limit_needs_no_extra_page():
    out, pager = drain(Table(range(600)), 300)
    assert len(out) == 600 and pager.pages == 2


def test_empty_window_takes_one_request():
    out, pager = drain(Table([]), 300)
    assert out == [] and pager.pages == 1


def test_rows_deleted_from_a_read_page_are_not_allowed_to_hide_later_rows():
    table = Table(range(1, 1001))

    def delete_early(pages, t):
        if pages == 1:
            del t.ids[:10]

    out, pager = drain(table, 300, delete_early)
    assert sorted(out) == list(range(1, 1001))
    assert len(out) == len(set(out))
    assert pager.rescans == 1


def test_rows_inserted_mid_paging_come_once():
    table = Table(range(0, 2000, 2))

    def insert(pages, t):
        if pages == 2:
            t.ids = sorted([*t.ids, 1, 3, 5, 1001, 2001])

    out, _ = drain(table, 300, insert)
    assert sorted(out) == sorted(set(range(0, 2000, 2)) | {1, 3, 5, 1001, 2001})
    assert len(out) == len(set(out))


def test_a_total_that_never_settles_ends_in_a_clear_error():
    table = Table(range(1000))

    def grow(pages, t):
        t.ids.append(max(t.ids) + 1)

    with pytest.raises(BsgPagingError, match="Gave up paging a window after 5 re-reads"):
        drain(table, 300, grow)


def test_a_server_that_ignores_the_offset_does_not_loop_forever():
    class Stuck(Table):
        def page(self, offset, limit):
            return super().page(0, limit)

    with pytest.raises(
        BsgPagingError, match="held 300 distinct campaigns in id order but its total says 1000"
    ):
        drain(Stuck(range(1000)), 300)


def test_more_rows_than_the_limit_is_refused():
    pager = WindowPager(30)
    with pytest.raises(BsgPagingError, match="returned 31 campaigns for a page of at most 30"):
        pager.accept(CampaignPage([{"id": i} for i in range(31)], total=31, offset=0, limit=30))


def test_an_empty_page_before_the_total_is_reached_is_retried_then_refused():
    class Short(Table):
        def page(self, offset, limit):
            page = super().page(offset, limit)
            return CampaignPage(page.records, total=page.total + 5, offset=offset, limit=limit)

    with pytest.raises(BsgPagingError, match="was empty although the total is 105"):
        drain(Short(range(100)), 30)


def test_duplicate_ids_inside_a_page_are_passed_on_once():
    pager = WindowPager(30)
    fresh = pager.accept(CampaignPage([{"id": 1}, {"id": 1}, {"id": 2}], total=3, offset=0, limit=30))
    assert [r["id"] for r in fresh] == [1, 2]


def test_a_delete_and_an_insert_that_keep_the_total_are_caught_by_overlapping_pages():
    def swap(pages, t):
        if pages == 1:
            t.ids.remove(10)
            t.ids.append(101)

    table = Table(range(1, 101))
    out, pager = drain(table, 50, swap, overlap=True)
    assert set(range(1, 102)) - {10} <= set(out)  # 51 is not skipped
    assert len(out) == len(set(out))
    assert pager.rescans == 1


def test_without_overlap_that_swap_would_skip_a_row():
    """The case overlap exists for: the total stays 100, so nothing else notices."""

    def swap(pages, t):
        if pages == 1:
            t.ids.remove(10)
            t.ids.append(101)

    out, pager = drain(Table(range(1, 101)), 50, swap)
    assert 51 not in out and pager.rescans == 0


def test_overlapping_pages_cost_one_row_each_and_stop_at_the_total():
    out, pager = drain(Table(range(1, 1001)), 100, overlap=True)
    assert out == list(range(1, 1001))
    assert pager.pages == 11 and pager.rescans == 0


def test_rows_appended_before_every_page_of_a_live_window_need_no_rescan():
    """A busy account: a new campaign (higher id) before every request; nothing read shifts."""

    def append(pages, t):
        t.ids.append(max(t.ids) + 1)

    table = Table(range(1, 301))
    out, pager = drain(table, 30, append, overlap=True)
    assert pager.rescans == 0 and pager.grew > 0
    assert set(range(1, 301)) <= set(out) and len(out) == len(set(out))


def test_a_total_that_drops_in_a_live_window_still_rescans():
    def delete(pages, t):
        if pages == 2:
            t.ids.remove(5)
            t.ids.append(max(t.ids) + 1)
            t.ids.append(max(t.ids) + 1)

    out, pager = drain(Table(range(1, 201)), 30, delete, overlap=True)
    assert pager.rescans == 1, "the total grew, but the boundary row moved"
    assert set(range(1, 201)) - {5} <= set(out)


def test_a_grown_total_in_a_past_window_is_read_again():
    def append(pages, t):
        if pages == 1:
            t.ids.append(max(t.ids) + 1)

    out, pager = drain(Table(range(1, 101)), 30, append)
    assert pager.rescans == 1 and set(out) == set(range(1, 102))


@pytest.mark.parametrize("overlap", [False, True], ids=["closed", "live"])
@pytest.mark.parametrize("rows", [0, 1, 29, 30, 31, 59, 60, 61, 299, 1000])
def test_predicted_offsets_are_the_offsets_a_steady_table_is_read_at(rows, overlap):
    """What a concurrent reader fetches ahead is exactly what the pager then asks for."""
    table = Table(range(1, rows + 1))
    pager = WindowPager(30, overlap=overlap)
    assert pager.predicted_offsets(8) == [0], "before the first page only its offset is known"
    predictions, asked = [], []
    while not pager.done:
        predictions.append(pager.predicted_offsets(1000))
        asked.append(pager.request_offset)
        pager.accept(table.page(pager.request_offset, 30))
    assert pager.predicted_offsets(8) == []
    # After the first page, every prediction is the rest of the actual sequence of requests.
    for at, predicted in enumerate(predictions[1:], start=1):
        assert predicted == asked[at:]
    assert pager.rescans == 0


def test_predicted_offsets_are_capped_and_start_with_the_next_request():
    pager = WindowPager(30, overlap=True)
    pager.accept(Table(range(1, 301)).page(0, 30))
    assert pager.predicted_offsets(3) == [29, 58, 87]
    assert pager.predicted_offsets(0) == []


def test_after_a_rescan_the_prediction_starts_the_window_again():
    table = Table(range(1, 301))
    pager = WindowPager(30)
    pager.accept(table.page(0, 30))
    del table.ids[:5]
    pager.accept(table.page(30, 30))  # the total changed: read the window again
    assert pager.rescans == 1
    assert pager.predicted_offsets(3) == [0, 30, 60]


def _fresh_one_by_one(emitted, last, pass_rows, records):
    """The pager's bookkeeping of one page, record by record: the reference for its page-at-a-time path."""
    fresh = []
    for record in records:
        campaign_id = record["id"]
        if last is None or campaign_id > last:
            last = campaign_id
            pass_rows += 1
        if campaign_id not in emitted:
            emitted.add(campaign_id)
            fresh.append(record)
    return fresh, last, pass_rows


@settings(max_examples=300, deadline=None)
@given(pages=st.lists(st.lists(st.integers(1, 40), max_size=6), max_size=6))
def test_new_records_and_the_pass_count_match_record_by_record(pages):
    # Ascending pages past every id seen take the page-at-a-time path; repeats, reordering and
    # overlaps the record-by-record one. Both must pass on the same records and count the same rows.
    pager = WindowPager(limit=6)
    emitted: set[int] = set()
    last, pass_rows = None, 0
    for ids in pages:
        records = [{"id": i} for i in ids]
        expected, last, pass_rows = _fresh_one_by_one(emitted, last, pass_rows, records)
        assert pager._fresh(records, ids) == expected
        assert (pager._pass_last_id, pager._pass_rows) == (last, pass_rows)
        assert list(pager._emitted) == sorted(emitted)
