from __future__ import annotations

import csv
import gzip
import io
import json

import pytest

from bsg_provider.errors import BsgConfigError
from bsg_provider.file_formats import (
    CsvEncoder,
    JsonLinesEncoder,
    OutputFormat,
    compressed,
    make_encoder,
    resolve_format,
)
from bsg_provider.records import CSV_COLUMNS, RecordShaper

CAMPAIGN = {
    "id": 7,
    "name": 'Promo, "spring"\nline two',
    "sender": "Vet klinika",
    "status": "done",
    "message_type": "sms",
    "start_at": "2024-04-03 12:14:49",
    "real_start_at": None,
    "finished_at": None,
    "created_at": "2024-04-03 12:14:49",
    "statistics": {"delivered": 0, "sent": 6},
    "calculated_price": 0.0527088,
    "currency": "EUR",
    "alternative_channels": None,
}


@pytest.mark.parametrize(
    ("name", "file_format", "expected"),
    [
        ("2024-05-01.jsonl", None, OutputFormat("jsonl", False)),
        ("2024-05-01.JSONL.GZ", None, OutputFormat("jsonl", True)),
        ("2024-05-01.ndjson", None, OutputFormat("jsonl", False)),
        ("2024-05-01.csv", None, OutputFormat("csv", False)),
        ("2024-05-01.csv.gz", None, OutputFormat("csv", True)),
        ("campaigns.txt", "csv", OutputFormat("csv", False)),
        ("campaigns.gz", "jsonl", OutputFormat("jsonl", True)),
        ("campaigns.jsonl", "jsonl", OutputFormat("jsonl", False)),
    ],
)
def test_the_format_comes_from_the_argument_or_the_suffix(name, file_format, expected):
    assert resolve_format(name, file_format) == expected


def test_formats_that_cannot_be_told_or_contradict_the_path_are_refused():
    with pytest.raises(BsgConfigError) as caught:
        resolve_format("campaigns.txt")
    assert str(caught.value) == (
        "Cannot tell the file format of 'campaigns.txt': end the path in .jsonl or .csv "
        "(optionally followed by .gz), or pass file_format='jsonl' or 'csv'."
    )
    with pytest.raises(BsgConfigError, match=r"^file_format='csv' contradicts the path 'a.jsonl.gz', whose"):
        resolve_format("a.jsonl.gz", "csv")
    with pytest.raises(BsgConfigError, match=r"^file_format must be one of jsonl, csv .* got 'parquet'\.$"):
        resolve_format("a.parquet", "parquet")


def test_json_lines_are_compact_ordered_and_utf8():
    encoder = JsonLinesEncoder(RecordShaper())
    line = encoder.encode({**CAMPAIGN, "sender": "Ветклиника"})
    assert encoder.header == b""
    assert (
        line
        == (
            '{"id":7,"name":"Promo, \\"spring\\"\\nline two","sender":"Ветклиника","status":"done",'
            '"message_type":"sms","start_at":"2024-04-03T12:14:49+00:00","real_start_at":null,"finished_at":null,'
            '"created_at":"2024-04-03T12:14:49+00:00","statistics":{"delivered":0,"sent":6},'
            '"calculated_price":0.0527088,"currency":"EUR","alternative_channels":null}\n'
        ).encode()
    )


def test_a_lone_surrogate_stays_escaped_instead_of_failing():
    line = JsonLinesEncoder(RecordShaper()).encode({**CAMPAIGN, "name": "bad \ud800 name"})
    assert json.loads(line)["name"] == "bad \ud800 name"
    assert line.endswith(b"\n") and b"\\ud800" in line


def test_csv_has_a_fixed_header_and_quotes_only_what_needs_it():
    encoder = CsvEncoder(RecordShaper())
    assert encoder.header == (",".join(CSV_COLUMNS) + "\n").encode()
    row = encoder.encode(CAMPAIGN)
    assert row.startswith(b'7,"Promo, ""spring""\nline two",Vet klinika,done,sms,2024-04-03T12:14:49+00:00,')
    parsed = next(csv.reader(io.StringIO(row.decode())))
    assert parsed == ["" if cell is None else str(cell) for cell in RecordShaper().csv_row(CAMPAIGN)]
    channels = encoder.encode({**CAMPAIGN, "alternative_channels": {"sms": True}})
    assert channels.endswith(b',EUR,"{""sms"":true}",\n')


def test_make_encoder_picks_by_format():
    shaper = RecordShaper()
    assert isinstance(make_encoder(OutputFormat("csv", True), shaper), CsvEncoder)
    assert isinstance(make_encoder(OutputFormat("jsonl", False), shaper), JsonLinesEncoder)


def test_gzip_output_is_a_function_of_its_content_alone():
    def write(data: bytes) -> bytes:
        sink = io.BytesIO()
        with compressed(sink, True) as stream:
            stream.write(data)
        return sink.getvalue()

    first = write(b"same bytes\n" * 100)
    assert write(b"same bytes\n" * 100) == first
    assert gzip.decompress(first) == b"same bytes\n" * 100
    assert first[4:8] == b"\0\0\0\0", "no modification time in the header"
    assert gzip.decompress(write(b"")) == b"", "an empty file is still a valid gzip stream"


def test_uncompressed_output_passes_through():
    sink = io.BytesIO()
    with compressed(sink, False) as stream:
        assert stream is sink
        stream.write(b"x")
    assert sink.getvalue() == b"x"
