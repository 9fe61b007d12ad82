from __future__ import annotations

import io
import os

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
    with RecordSpool() as spool:
        kept = [spool.add_all([i for i, _ in page], [data for _, data in page]) for page in pages]
        sink = io.BytesIO()
        spool.copy_to(sink)
    assert sink.getvalue() == one_by_one
    assert (len(spool), spool.size, spool.duplicates, spool.reordered) == (
        len(expected),
        expected.size,
        expected.duplicates,
        expected.reordered,
    )
    assert sum(kept) == len(expected)


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
