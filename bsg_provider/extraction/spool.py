"""
Encoded records parked on local disk, handed back in id order, each id once.

Extraction streams pages into a :class:`RecordSpool` and only then writes the output
file, so memory does not grow with the records: the spool keeps 16 bytes per record
(its id and where its bytes start). In the usual case ids arrive ascending and the
records are copied out in one sequential read; after the API's paging drifted, some
arrive out of order and are copied out by seeking to each one in id order.
"""

from __future__ import annotations

import operator
import shutil
import tempfile
from array import array
from bisect import bisect_left, bisect_right
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
        self._ids: array[int] = array("q")
        self._offsets: array[int] = array("q")
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
            # A record's end is where the next one starts, which an empty record would make ambiguous.
            raise ValueError("a record must have at least one byte")
        ids = self._ids
        if not ids or record_id > ids[-1]:
            ids.append(record_id)
            self._offsets.append(self._size)
        else:
            at = bisect_left(ids, record_id)
            if ids[at] == record_id:
                self.duplicates += 1
                return False
            ids.insert(at, record_id)
            self._offsets.insert(at, self._size)
            self.reordered = True
        self._file.write(data)
        self._size += len(data)
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
        ids = self._ids
        if (
            record_ids
            and (not ids or record_ids[0] > ids[-1])
            and all(map(operator.lt, record_ids, record_ids[1:]))
            and all(data)
        ):
            ids.extend(record_ids)
            # Each record starts where the one before it ends.
            starts = array("q", accumulate(map(len, data), initial=self._size))
            self._size = starts.pop()
            self._offsets.extend(starts)
            self._file.write(b"".join(data))
            return len(record_ids)
        return sum(map(self.add, record_ids, data))

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
        # Offsets in file order tell where each record ends: where the next one starts.
        starts = array("q", sorted(self._offsets))
        for offset in self._offsets:
            following = bisect_right(starts, offset)
            end = starts[following] if following < len(starts) else self._size
            source.seek(offset)
            target.write(source.read(end - offset))

    def close(self) -> None:
        """Drop the temporary file."""
        self._file.close()
