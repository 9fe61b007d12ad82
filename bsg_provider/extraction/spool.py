"""
Encoded records parked on local disk, handed back in id order, each id once.

Extraction streams pages into a :class:`RecordSpool` and only then writes the output
file, so memory does not grow with the records: the spool keeps 12 bytes per record
(its id and its length), a page going to disk in one write. In the usual case ids arrive
ascending and the records are copied out in one sequential read; after the API's paging
drifted, some arrive out of order, and the spool then also keeps its ids sorted (to tell
a duplicate) and copies the records out by seeking to each one in id order.
"""

from __future__ import annotations

import operator
import shutil
import tempfile
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from itertools import accumulate
from typing import IO

_COPY_BUFFER = 1 << 20


class RecordSpool:
    """
    An anonymous temporary file plus an index sorted by id.

    The file is unlinked as soon as it is created (POSIX), so nothing is left behind even
    if the process dies. Use it as a context manager, or call :meth:`close`.

    :param directory: where to create the file; the system's temporary directory by default.
    """

    def __init__(self, directory: str | None = None) -> None:
        self._file: IO[bytes] = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 -- closed by close()
        # In file order: which record each is, and how many bytes it takes.
        self._ids: array[int] = array("q")
        self._lengths: array[int] = array("I")  # 4 bytes: no record is 4 GiB
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
                self._append([record_id], data, [len(data)])
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
        self._append([record_id], data, [len(data)])
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
            self._append(record_ids, b"".join(data), list(map(len, data)))
            return len(record_ids)
        return sum(map(self.add, record_ids, data))

    def _append(self, record_ids: Sequence[int], data: bytes, lengths: Sequence[int]) -> None:
        self._ids.extend(record_ids)
        self._lengths.extend(lengths)
        self._file.write(data)
        self._size += len(data)

    def copy_to(self, target: IO[bytes]) -> None:
        """
        Write every record to ``target``, sorted by id.

        :param target: a binary file open for writing.
        """
        source = self._file
        source.flush()
        if not self.reordered:
            source.seek(0)
            shutil.copyfileobj(source, target, _COPY_BUFFER)
            return
        ids, lengths = self._ids, self._lengths
        starts = array("q", accumulate(lengths, initial=0))
        for at in sorted(range(len(ids)), key=ids.__getitem__):
            source.seek(starts[at])
            target.write(source.read(lengths[at]))

    def close(self) -> None:
        """Drop the temporary file."""
        self._file.close()
