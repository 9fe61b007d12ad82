"""
Encoded records parked on local disk, handed back in id order, each id once.

Extraction streams pages into a :class:`RecordSpool` and only then writes the output
file, so memory does not grow with the records: the spool keeps 8 bytes per record (its
id), a page going to disk in one write. A record that is not exactly one line (a CSV row
with a line break in a quoted cell, a record without a final ``\\n``) costs 12 bytes more
(its place and its length); the others' boundaries are the file's line breaks. In the usual
case ids arrive ascending and the records are copied out in one sequential read; after the
API's paging drifted, some arrive out of order, and the spool then also keeps its ids sorted
(8 bytes per record, to tell a duplicate). The copy then reads the file once to find its runs
of records in id order, and copies each run, in id order, with a seek and sequential reads.
"""

from __future__ import annotations

import io
import operator
import shutil
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from itertools import islice
from typing import IO

_COPY_BUFFER = 1 << 20
_LAST_BYTE = operator.itemgetter(-1)


class RecordSpool:
    """
    An anonymous temporary file plus an index sorted by id.

    The file is unlinked as soon as it is created (POSIX), so nothing is left behind even
    if the process dies. Use it as a context manager, or call :meth:`close`.

    :param directory: where to create the file; the system's temporary directory by default.
    """

    def __init__(self, directory: str | None = None) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 -- closed by close()
        # In file order: which record each is.
        self._ids: array[int] = array("q")
        # The records that are not exactly one line: their places in file order, ascending,
        # and their lengths (4 bytes: no record is 4 GiB).
        self._irregular_at: array[int] = array("q")
        self._irregular_lengths: array[int] = array("I")
        # The ids in id order, kept once one came out of order (until then _ids is in order).
        self._sorted: array[int] | None = None
        self._size = 0
        self.duplicates = 0
        self.reordered = False

    def __enter__(self) -> RecordSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def size(self) -> int:
        """Bytes of records held."""
        return self._size

    def add(self, record_id: int, data: bytes) -> bool:
        """
        Keep one record unless its id was added before.

        :param record_id: the record's id, the sort key.
        :param data: the record's bytes as they go into the output, at least one.
        :return: whether it was kept (False for a duplicate id).
        """
        if not data:
            raise ValueError("a record must have at least one byte")
        ids = self._ids
        ordered = self._sorted
        if ordered is None:
            if not ids or record_id > ids[-1]:
                self._append_one(record_id, data)
                return True
            # The first id out of order: from now on duplicates are found in a sorted copy.
            ordered = self._sorted = array("q", ids)
        at = bisect_left(ordered, record_id)
        if at < len(ordered) and ordered[at] == record_id:
            self.duplicates += 1
            return False
        if at < len(ordered):
            self.reordered = True
        ordered.insert(at, record_id)
        self._append_one(record_id, data)
        return True

    def add_all(self, record_ids: Sequence[int], data: Sequence[bytes]) -> int:
        """
        :meth:`add` each record in turn, with the same result; a page of ascending new ids (the
        usual case) goes in with one write.

        :param record_ids: the records' ids.
        :param data: their bytes, in the same order.
        :return: how many were kept.
        """
        if len(record_ids) != len(data):
            raise ValueError("one id per record")
        ordered = self._sorted
        largest = (ordered if ordered is not None else self._ids)[-1:]
        if (
            record_ids
            and (not largest or record_ids[0] > largest[0])
            and all(map(operator.lt, record_ids, record_ids[1:]))
            and all(data)
        ):
            if ordered is not None:
                ordered.extend(record_ids)
            self._append(record_ids, data)
            return len(record_ids)
        return sum(map(self.add, record_ids, data))

    def _append(self, record_ids: Sequence[int], data: Sequence[bytes]) -> None:
        joined = b"".join(data)
        # As many line breaks as records, and each (non-empty) record ending with one: all one line.
        if joined.count(b"\n") != len(data) or bytes(map(_LAST_BYTE, data)) != b"\n" * len(data):
            for at, record in enumerate(data, len(self._ids)):
                self._note_if_irregular(at, record)
        self._ids.fromlist(list(record_ids))  # faster than extend() for a list
        self._file.write(joined)
        self._size += len(joined)

    def _append_one(self, record_id: int, data: bytes) -> None:
        self._note_if_irregular(len(self._ids), data)
        self._ids.append(record_id)
        self._file.write(data)
        self._size += len(data)

    def _note_if_irregular(self, at: int, record: bytes) -> None:
        if record.find(b"\n") != len(record) - 1:  # not exactly one line
            self._irregular_at.append(at)
            self._irregular_lengths.append(len(record))

    def copy_to(self, target: IO[bytes]) -> None:
        """
        Write every record to ``target``, sorted by id.

        :param target: a binary file open for writing.
        """
        source = self._file
        source.flush()
        source.seek(0)
        if not self.reordered:
            shutil.copyfileobj(source, target, _COPY_BUFFER)
            return
        # Cut the file into runs of records whose ids follow each other in id order: a run's
        # rank (its first id's place in id order) and its first byte; it ends where the next begins.
        ordered = self._sorted
        assert ordered is not None  # reordered implies it
        ranks, starts = array("q"), array("q")
        rank = offset = 0
        for record_id, length in zip(self._ids, self._lengths(), strict=True):
            rank += 1
            if not starts or rank == len(ordered) or ordered[rank] != record_id:
                rank = bisect_left(ordered, record_id)
                ranks.append(rank)
                starts.append(offset)
            offset += length
        starts.append(offset)
        for run in sorted(range(len(ranks)), key=ranks.__getitem__):
            source.seek(starts[run])
            remaining = starts[run + 1] - starts[run]
            while remaining:
                chunk = source.read(min(remaining, _COPY_BUFFER))
                target.write(chunk)
                remaining -= len(chunk)

    def _lengths(self) -> Iterator[int]:
        """Each record's length in file order, reading the file from its start for the one-line records."""
        source = self._file
        at = 0
        for irregular_at, length in zip(self._irregular_at, self._irregular_lengths, strict=True):
            yield from map(len, islice(source, irregular_at - at))
            source.seek(length, io.SEEK_CUR)
            yield length
            at = irregular_at + 1
        yield from map(len, islice(source, len(self._ids) - at))

    def close(self) -> None:
        """Drop the temporary file."""
        self._file.close()
