from __future__ import annotations

import io
import os
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_provider.extraction.spool import RecordSpool


def spooled(records: list[tuple[int, bytes]]) -> tuple[bytes, RecordSpool]:
    with RecordSpool() as spool:
        for record_id, data in records:
            spool.add(record_id, data)
        sink = io.BytesIO()
        spool.copy_to(sink)
    return sink.getvalue(), spool


def paged(pages: list[list[tuple[int, bytes]]]) -> tuple[bytes, RecordSpool, list[int]]:
    with RecordSpool() as spool:
        kept = [spool.add_all([i for i, _ in page], [data for _, data in page]) for page in pages]
        sink = io.BytesIO()
        spool.copy_to(sink)
    return sink.getvalue(), spool, kept


def counters(spool: RecordSpool) -> tuple[int, int, int, bool]:
    return len(spool), spool.size, spool.duplicates, spool.reordered


def test_ascending_records_come_out_as_they_went_in():
    data, spool = spooled([(1, b"a\n"), (5, b"bb\n"), (9, b"ccc\n")])
    assert data == b"a\nbb\nccc\n"
    assert (len(spool), spool.size, spool.reordered, spool.duplicates) == (3, 9, False, 0)


def test_out_of_order_records_come_out_sorted_by_id():
    # Records of unequal length with line breaks inside, as CSV rows may have.
    data, spool = spooled([(10, b"ten\n"), (30, b"thirty\n"), (20, b'"twen\nty"\n'), (5, b"five\n")])
    assert data == b'five\nten\n"twen\nty"\nthirty\n'
    assert spool.reordered and len(spool) == 4


def test_an_id_seen_before_is_skipped_wherever_it_comes():
    data, spool = spooled([(1, b"1\n"), (3, b"3\n"), (3, b"3 again\n"), (2, b"2\n"), (1, b"1 again\n")])
    assert data == b"1\n2\n3\n"
    assert spool.duplicates == 2 and len(spool) == 3


def test_nothing_in_gives_nothing_out():
    data, spool = spooled([])
    assert data == b"" and len(spool) == 0


def test_empty_records_are_refused():
    with RecordSpool() as spool, pytest.raises(ValueError, match="at least one byte"):
        spool.add(1, b"")


def test_the_spool_leaves_no_file_behind(tmp_path):
    with RecordSpool(directory=str(tmp_path)) as spool:
        spool.add(1, b"x" * 1000)
        assert os.listdir(tmp_path) == []
    assert os.listdir(tmp_path) == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(-5, 40), st.binary(min_size=1, max_size=12)), max_size=60))
def test_output_is_the_first_copy_of_each_id_in_id_order(records):
    data, _ = spooled(records)
    first: dict[int, bytes] = {}
    for record_id, payload in records:
        first.setdefault(record_id, payload)
    assert data == b"".join(first[record_id] for record_id in sorted(first))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.tuples(st.integers(-5, 40), st.binary(min_size=1, max_size=12)), max_size=8), max_size=8
    )
)
def test_adding_pages_at_once_is_adding_their_records_one_by_one(pages):
    one_by_one, expected = spooled([record for page in pages for record in page])
    data, spool, kept = paged(pages)
    assert data == one_by_one
    assert counters(spool) == counters(expected) and sum(kept) == len(expected)


def test_a_page_of_new_ascending_ids_goes_in_whole_and_mismatched_lengths_are_refused():
    with RecordSpool() as spool:
        assert spool.add_all([3, 4], [b"c\n", b"dd\n"]) == 2
        assert spool.add_all([4, 9], [b"again\n", b"i\n"]) == 1
        with pytest.raises(ValueError, match="one id per record"):
            spool.add_all([10], [])
        with pytest.raises(ValueError, match="at least one byte"):
            spool.add_all([11, 12], [b"k\n", b""])  # as add() one by one: 11 is in, 12 refused
        sink = io.BytesIO()
        spool.copy_to(sink)
    assert sink.getvalue() == b"c\ndd\ni\nk\n"


def first_copies_in_id_order(records: list[tuple[int, bytes]]) -> bytes:
    first: dict[int, bytes] = {}
    for record_id, payload in records:
        first.setdefault(record_id, payload)
    return b"".join(first[record_id] for record_id in sorted(first))


# One line each (JSON Lines, plain CSV rows), or any shape: line breaks inside (a quoted CSV
# cell), several, only line breaks, or none at the end.
ONE_LINE = st.binary(max_size=6).map(lambda data: data.replace(b"\n", b"") + b"\n")
ANY_SHAPE = st.lists(st.sampled_from([b"a", b"bc", b"\n", b'"']), min_size=1, max_size=6).map(b"".join)


@st.composite
def drifting_pages(draw: st.DrawFn) -> list[list[tuple[int, bytes]]]:
    """Pages of ascending ids, most following the last one, some back among earlier ids."""
    pages, top = [], 0
    for _ in range(draw(st.integers(0, 12))):
        base = draw(st.sampled_from([top, top, draw(st.integers(0, top))]))
        ids = sorted(draw(st.sets(st.integers(0, 12), max_size=8)))
        records = st.one_of(ONE_LINE, ANY_SHAPE) if draw(st.booleans()) else ONE_LINE
        pages.append([(base + i, draw(records)) for i in ids])
        top = max([top, *(base + i + 1 for i in ids)])
    return pages


@settings(max_examples=150, deadline=None)
@given(drifting_pages())
def test_pages_of_any_shape_of_record_come_out_as_added_one_by_one(pages):
    records = [record for page in pages for record in page]
    one_by_one, expected = spooled(records)
    data, spool, kept = paged(pages)
    assert data == one_by_one == first_copies_in_id_order(records)
    assert counters(spool) == counters(expected) and sum(kept) == len(expected)


def test_records_that_are_not_one_line_keep_their_bytes_when_reordered():
    pages = [
        [(2, b'2,"two\nlines"\n'), (4, b"4,four\n"), (6, b"no line break"), (8, b"8\n")],
        [(10, b"\n"), (12, b"\n\n")],
        [(3, b"3\n"), (5, b'5,"\n"\n'), (7, b"7"), (9, b"9\n")],  # drift: between the others
    ]
    data, spool, kept = paged(pages)
    assert data == b'2,"two\nlines"\n3\n4,four\n5,"\n"\nno line break78\n9\n\n\n\n'
    assert spool.reordered and kept == [4, 2, 4] and spool.size == len(data)


def test_reordering_after_many_pages_sorts_runs_longer_than_the_copy_buffer():
    # 100 pages of 200 one-line records with even ids (1.3 MB, more than one copy buffer), then the
    # odd ids of two stretches arrive late, one of them with a record of two lines.
    line = b'{"id":%d,"text":"%s"}\n'
    pages = [[(i, line % (i, b"x" * 40)) for i in range(at, at + 400, 2)] for at in range(0, 40000, 400)]
    late = [(i, line % (i, b"late")) for i in range(101, 161, 2)] + [(39001, b'39001,"a\nb"\n')]
    pages.append(late)
    records = [record for page in pages for record in page]
    data, spool, kept = paged(pages)
    assert data == first_copies_in_id_order(records)
    assert spool.reordered and len(spool) == 20031 and sum(kept) == 20031


def test_the_index_takes_8_bytes_per_one_line_record():
    # The id only: one-line records' lengths come from the file's line breaks.
    pages = [[(i, b'{"id":%d}\n' % i) for i in range(start, start + 500)] for start in range(0, 40000, 500)]
    with RecordSpool() as spool:
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for page in pages:
                spool.add_all([i for i, _ in page], [data for _, data in page])
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        assert len(spool) == 40000
        # 8 bytes a record and the array's headroom; 12 bytes a record would be 480,000.
        assert grown < 9 * 40000
