"""
The output file formats: which one a path asks for, and the bytes each record becomes.

JSON Lines and CSV, both UTF-8, optionally gzip-compressed. Every byte is a function of
the records alone (no timestamps or file names in gzip headers, fixed key order, fixed
separators), so the same records always give the same file.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, Protocol

import msgspec

from bsg_provider.client.usual_page import as_dicts
from bsg_provider.errors import BsgConfigError
from bsg_provider.extraction.records import RecordShaper, csv_native

if TYPE_CHECKING:
    from bsg_provider.extraction.message_records import MessageShaper

FILE_FORMATS = ("jsonl", "csv")
#: File name suffixes (before an optional ``.gz``) that name a format.
SUFFIX_FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}
GZIP_SUFFIX = ".gz"
#: gzip's levels: 1 is fastest, 9 smallest.
COMPRESSION_LEVELS = range(1, 10)
#: Chosen by measurement (docs/performance.md, benchmarks/gzip_levels.py): nearly 9's size, faster.
DEFAULT_COMPRESSION_LEVEL = 6


@dataclass(frozen=True)
class OutputFormat:
    """
    What to write.

    :param name: ``jsonl`` or ``csv``.
    :param gzip: whether to gzip-compress the file.
    """

    name: str
    gzip: bool

    @property
    def label(self) -> str:
        """``jsonl``, ``csv``, ``jsonl+gzip`` or ``csv+gzip``."""
        return f"{self.name}+gzip" if self.gzip else self.name


def check_file_format(file_format: Any) -> str | None:
    """Return ``file_format`` if it is None or a known format, else raise :class:`BsgConfigError`."""
    if file_format is None or file_format in FILE_FORMATS:
        return file_format
    raise BsgConfigError(
        f"file_format must be one of {', '.join(FILE_FORMATS)} (or None to infer it from the path's "
        f"suffix), got {file_format!r}."
    )


def check_compression_level(level: Any) -> int:
    """Return ``level`` if it is a whole number from 1 to 9, else raise :class:`BsgConfigError`."""
    if type(level) is not int or level not in COMPRESSION_LEVELS:
        raise BsgConfigError(
            f"compression_level must be a whole number from 1 (fastest) to 9 (smallest), got {level!r}; "
            f"it applies to .gz paths (default {DEFAULT_COMPRESSION_LEVEL}). To write uncompressed, drop "
            "the .gz from the path."
        )
    return level


def resolve_format(file_name: str, file_format: str | None = None) -> OutputFormat:
    """
    The format of a file: ``file_format`` if given, else the name's suffix; gzip if it ends in ``.gz``.

    :param file_name: the output file's name, such as ``2024-05-01.csv.gz``.
    :param file_format: ``jsonl``, ``csv`` or None to infer.
    :raises BsgConfigError: when the format is unknown, cannot be inferred or contradicts the suffix.
    """
    check_file_format(file_format)
    name = file_name.lower()
    compressed = name.endswith(GZIP_SUFFIX)
    stem = name[: -len(GZIP_SUFFIX)] if compressed else name
    dot = stem.rfind(".")
    suffix = stem[dot:] if dot > 0 else ""
    implied = SUFFIX_FORMATS.get(suffix)
    if file_format is None:
        if implied is None:
            raise BsgConfigError(
                f"Cannot tell the file format of {file_name!r}: end the path in .jsonl or .csv "
                "(optionally followed by .gz), or pass file_format='jsonl' or 'csv'."
            )
        return OutputFormat(implied, compressed)
    if implied is not None and implied != file_format:
        raise BsgConfigError(
            f"file_format={file_format!r} contradicts the path {file_name!r}, whose suffix {suffix} means "
            f"{implied}; change one of them."
        )
    return OutputFormat(file_format, compressed)


class RecordEncoder(Protocol):
    """Turns campaigns into the bytes of one output format."""

    #: Bytes that open the file (the CSV header), empty for JSON Lines.
    header: bytes

    def encode(self, campaign: dict[str, Any]) -> bytes:
        """One campaign as one record of the file, line ending included."""
        ...

    def encode_page(self, records: list[Any]) -> list[bytes]:
        """
        :meth:`encode` of each record of a page, in order: the same bytes, less overhead. The
        records are dicts or a typed page's structs (:mod:`~bsg_provider.client.usual_page`).
        """
        ...


class JsonLinesEncoder:
    """
    One compact JSON object per line (``\\n``-terminated), keys in the shaper's order.

    :param shaper: decides the fields and their values.
    """

    header = b""

    def __init__(self, shaper: RecordShaper | MessageShaper) -> None:
        self._shape = shaper.json_record
        self._page_columns = shaper.json_columns
        # A usual page becomes structs (cheaper to build and encode than dicts), all encoded in one call.
        # Not tracked by the garbage collector: JSON values hold no cycles (see client.usual_page).
        self._usual_record = msgspec.defstruct("UsualRecord", list(shaper.json_fields), gc=False)
        # msgspec (installed by Airflow) encodes several times faster than json; same compact form.
        encoder = msgspec.json.Encoder()
        self._dumps = encoder.encode
        self._dumps_lines = encoder.encode_lines

    def encode(self, campaign: dict[str, Any]) -> bytes:
        """One campaign as one line."""
        try:
            return self._dumps(self._shape(campaign)) + b"\n"
        except UnicodeEncodeError:
            # A lone surrogate (legal in JSON's \\u escapes, not in UTF-8): keep it escaped.
            return (json.dumps(self._shape(campaign), separators=(",", ":")) + "\n").encode("ascii")

    def encode_page(self, records: list[Any]) -> list[bytes]:
        """:meth:`encode` of each record, in order."""
        columns = self._page_columns(records)
        if columns is not None:
            try:
                # JSON escapes line breaks inside strings: each record is exactly one line.
                return self._dumps_lines(list(map(self._usual_record, *columns))).splitlines(keepends=True)
            except UnicodeEncodeError:
                pass
        return [self.encode(record) for record in as_dicts(records)]


class CsvEncoder:
    """
    RFC 4180 CSV with the shaper's fixed header (``csv_columns``), ``\\n`` line endings,
    fields quoted only when they need it.

    :param shaper: decides the cells.
    """

    def __init__(self, shaper: RecordShaper | MessageShaper) -> None:
        self._row = shaper.csv_row
        self._page_values = shaper.csv_value_columns
        self._native = shaper.csv_native_types
        # The csv writer hands each whole row to write(): collect it there instead of in a buffer.
        self._rows: list[str] = []
        self._writer = csv.writer(_Collector(self._rows.append), lineterminator="\n")
        self.header = self._encode_cells(list(shaper.csv_columns))

    def encode(self, campaign: dict[str, Any]) -> bytes:
        """One campaign as one row."""
        return self._encode_cells(self._row(campaign))

    def encode_page(self, records: list[Any]) -> list[bytes]:
        """:meth:`encode` of each record, in order: a usual page's lines joined a column at a time."""
        columns = self._page_values(records)
        if columns is not None:
            text = plain_csv_text(columns)
            if text is not None:
                # No cell holds a line break here: each record is exactly one line.
                return text.encode("utf-8", "backslashreplace").splitlines(keepends=True)
            native = self._native
            rows: list[Sequence[Any]] = list(
                zip(*(csv_native(column, native) for column in columns), strict=True)
            )
        else:
            rows = list(map(self._row, as_dicts(records)))
        self._writer.writerows(rows)
        lines = self._rows[:]
        self._rows.clear()
        return [line.encode("utf-8", "backslashreplace") for line in lines]

    def _encode_cells(self, cells: list[Any]) -> bytes:
        self._writer.writerow(cells)
        return self._rows.pop().encode("utf-8", "backslashreplace")


def plain_csv_text(columns: Sequence[Sequence[Any]]) -> str | None:
    """
    The text :class:`CsvEncoder`'s writer gives the rows of ``columns``, when no cell needs
    quoting; else None.

    A cell needs quoting when it holds a comma, a double quote or a line break; text, whole
    numbers and floats are written as ``str`` writes them and None as nothing, as the :mod:`csv`
    module does. Columns of other cells, or a single column (where an empty cell is written
    ``""``), are left to the writer.

    :param columns: the cells of each column, all of one length.
    """
    if len(columns) < 2:
        return None
    if not columns[0]:
        return ""
    texts = []
    for column in columns:
        text = _plain_cells(column)
        if text is None:
            return None
        texts.append(text)
    return "\n".join(map(",".join, zip(*texts, strict=True))) + "\n"


def _plain_cells(column: Sequence[Any]) -> Sequence[str] | None:
    """
    A column's cells as the csv module writes them unquoted; None if one needs quoting, or is
    neither text nor a number.
    """
    try:
        # Text only, the usual column: join() refuses anything else, without a look at each type.
        joined = "".join(column)
        text = column
    except TypeError:
        kinds = set(map(type, column))
        if kinds == _ONLY_NONE:
            return [""] * len(column)
        if kinds <= _NUMBERS_OR_NONE:
            numbers = list(map(str, column))
            return list(map(_EMPTY_FOR_NONE_TEXT.get, numbers, numbers)) if _NONE in kinds else numbers
        if not kinds <= _TEXT_OR_NONE:
            return None
        # None as "", text as it is: one C-level pass (the map gives each text itself).
        text = list(map(_EMPTY_FOR_NONE.get, column, column))
        joined = "".join(text)
    if any(special in joined for special in _NEEDS_QUOTES):
        return None
    return text


_NONE = type(None)
_ONLY_NONE = frozenset({_NONE})
_EMPTY_FOR_NONE = {None: ""}
_EMPTY_FOR_NONE_TEXT = {"None": ""}
_TEXT_OR_NONE = frozenset({str, _NONE})
_NUMBERS_OR_NONE = frozenset({int, float, _NONE})
#: What makes the csv module quote a cell with CsvEncoder's dialect (delimiter, quote, line ends).
_NEEDS_QUOTES = (",", '"', "\n", "\r")


class _Collector:
    """A file-like ``write`` that hands each string to a callback."""

    def __init__(self, write: Any) -> None:
        self.write = write


def make_encoder(output_format: OutputFormat, shaper: RecordShaper | MessageShaper) -> RecordEncoder:
    """
    The encoder for a format.

    :param output_format: what to write.
    :param shaper: decides the fields and their values.
    """
    if output_format.name == "csv":
        return CsvEncoder(shaper)
    return JsonLinesEncoder(shaper)


@contextmanager
def compressed(
    handle: IO[bytes], enabled: bool, level: int = DEFAULT_COMPRESSION_LEVEL
) -> Iterator[IO[bytes]]:
    """
    ``handle`` itself, or a gzip stream into it that is finished when the block ends.

    The gzip header carries no file name and a zero mtime, so equal input and level give equal bytes.

    :param handle: a binary file open for writing; left open.
    :param enabled: whether to compress.
    :param level: gzip's compression level, 1 (fastest) to 9 (smallest).
    """
    if not enabled:
        yield handle
        return
    level = check_compression_level(level)
    with gzip.GzipFile(filename="", fileobj=handle, mode="wb", compresslevel=level, mtime=0) as stream:
        yield stream  # type: ignore[misc]
