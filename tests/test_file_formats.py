from __future__ import annotations

import csv
import gzip
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bsg_provider.errors import BsgConfigError, BsgMalformedResponseError
from bsg_provider.extraction.file_formats import (
    DEFAULT_COMPRESSION_LEVEL,
    CsvEncoder,
    JsonLinesEncoder,
    OutputFormat,
    _Collector,
    check_compression_level,
    compressed,
    make_encoder,
    plain_csv_text,
    resolve_format,
)
from bsg_provider.extraction.records import CSV_COLUMNS, RecordShaper

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


def test_the_gzip_level_is_chosen_and_equal_input_and_level_give_equal_bytes():
    data = b"".join(b"%d,campaign %d,done\n" % (n, n % 97) for n in range(20_000))

    def write(level: int) -> bytes:
        sink = io.BytesIO()
        with compressed(sink, True, level) as stream:
            stream.write(data)
        return sink.getvalue()

    fastest, smallest = write(1), write(9)
    assert write(1) == fastest and write(9) == smallest
    assert len(fastest) > len(smallest)
    assert gzip.decompress(fastest) == gzip.decompress(smallest) == data
    sink = io.BytesIO()
    with compressed(sink, True) as stream:
        stream.write(data)
    assert sink.getvalue() == write(DEFAULT_COMPRESSION_LEVEL) == write(6)


@pytest.mark.parametrize("level", [0, 10, -1, "6", 6.0, True, None])
def test_compression_levels_outside_1_to_9_are_refused(level):
    with pytest.raises(BsgConfigError) as caught:
        check_compression_level(level)
    assert str(caught.value) == (
        f"compression_level must be a whole number from 1 (fastest) to 9 (smallest), got {level!r}; it "
        "applies to .gz paths (default 6). To write uncompressed, drop the .gz from the path."
    )
    assert [check_compression_level(n) for n in range(1, 10)] == list(range(1, 10))


def test_uncompressed_output_passes_through():
    sink = io.BytesIO()
    with compressed(sink, False) as stream:
        assert stream is sink
        stream.write(b"x")
    assert sink.getvalue() == b"x"


#: Timestamp values around the usual form: near misses that must take the record-by-record path.
TIMESTAMPS = st.sampled_from(
    [
        None,
        "2024-04-03 12:14:49",
        "2024-04-03T12:14:49",
        "2024-02-29 23:59:59",
        "2023-02-29 12:00:00",  # no such day
        "2024-04-03 12:14:49.500000",
        "2024-04-03 12:14:49+02:00",
        "2024-04-03T12:14:49Z",
        " 2024-04-03 12:14:49",
        "2024-W14-3 12:14:49",
        "2024-04-03 12:14",
        "2024-04-03x12:14:49",
        "\uff12\uff10\uff12\uff14-04-03 12:14:49",  # fullwidth digits
        "",
        "soon",
        17,
    ]
)
CELLS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def campaigns(draw: st.DrawFn) -> dict:
    campaign = {**CAMPAIGN, "id": draw(st.integers(1, 10**9))}
    for name in ("start_at", "real_start_at", "finished_at", "created_at"):
        campaign[name] = draw(TIMESTAMPS)
    for name in ("name", "calculated_price", "currency", "alternative_channels"):
        campaign[name] = draw(CELLS)
    campaign["statistics"] = draw(
        st.sampled_from([{"delivered": 1, "sent": 2}, {"sent": 2, "delivered": 1}, {"sent": 2}, None, [1]])
    )
    if draw(st.booleans()):
        campaign = dict(reversed(campaign.items()))
    if draw(st.integers(0, 9)) == 0:
        campaign["new_field"] = draw(CELLS)
    if draw(st.integers(0, 9)) == 0:
        del campaign["currency"]
    return campaign


def encoded_one_by_one(encoder, page: list[dict]) -> list[bytes] | type[Exception]:
    try:
        return [encoder.encode(campaign) for campaign in page]
    except BsgMalformedResponseError as exc:
        return type(exc)


@settings(max_examples=150, deadline=None)
@given(
    page=st.lists(campaigns(), max_size=6),
    usual=st.integers(0, 5),
    timezone=st.sampled_from(["UTC", "Europe/Berlin"]),
    convert=st.booleans(),
    csv_format=st.booleans(),
)
def test_a_page_encodes_to_the_same_bytes_as_its_records_one_by_one(
    page, usual, timezone, convert, csv_format
):
    # Pages of usual campaigns (the fast path) with odd ones mixed in, in any timezone.
    page = [
        {**CAMPAIGN, "id": 100 + n, "created_at": f"2024-04-0{n + 1} 0{n}:14:49"} for n in range(usual)
    ] + page
    shaper = RecordShaper(api_timezone=timezone, convert_timestamps=convert)
    encoder = CsvEncoder(shaper) if csv_format else JsonLinesEncoder(shaper)
    expected = encoded_one_by_one(encoder, page)
    if expected is BsgMalformedResponseError:
        with pytest.raises(BsgMalformedResponseError):
            encoder.encode_page(page)
    else:
        assert encoder.encode_page(page) == expected


@pytest.mark.parametrize("convert", [True, False])
@pytest.mark.parametrize("encoder_type", [CsvEncoder, JsonLinesEncoder])
def test_a_page_of_usual_campaigns_takes_the_columnar_path_and_matches_row_by_row(encoder_type, convert):
    page = [
        {**CAMPAIGN, "id": n, "finished_at": None if n % 2 else "2024-04-03 13:00:00", "sender": "Ветклиника"}
        for n in range(1, 50)
    ]
    shaper = RecordShaper(convert_timestamps=convert)
    columns = shaper.csv_cell_columns if encoder_type is CsvEncoder else shaper.json_columns
    assert columns(page) is not None, "the usual page is not on the fast path"
    encoder = encoder_type(shaper)
    assert encoder.encode_page(page) == [encoder.encode(campaign) for campaign in page]
    assert encoder.encode_page([]) == []
    assert page[1]["finished_at"] == "2024-04-03 13:00:00", "the API's page was changed in place"


@pytest.mark.parametrize("encoder_type", [CsvEncoder, JsonLinesEncoder])
def test_a_bad_timestamp_in_a_usual_page_is_named_as_record_by_record(encoder_type):
    page = [{**CAMPAIGN, "id": 1}, {**CAMPAIGN, "id": 2, "finished_at": "2024-13-01 00:00:00"}]
    with pytest.raises(BsgMalformedResponseError, match=r"^Campaign 2 has finished_at '2024-13-01 00:00:00'"):
        encoder_type(RecordShaper()).encode_page(page)


#: Cells around what the csv module quotes or writes its own way.
CSV_CELLS = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.text(alphabet=st.sampled_from(list("ab ,\"\r\n\t'é\ud800;")), max_size=6),
    st.sampled_from(["", " ", "2024-04-03T12:14:49+00:00", "Ветклиника"]),
)


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(st.lists(CSV_CELLS, min_size=1, max_size=4), max_size=5), width=st.integers(1, 4))
def test_plain_csv_text_is_what_the_csv_writer_writes(rows, width):
    # Columns are joined a column at a time when no cell needs quoting; the writer's lines are
    # the reference, and anything it would write differently is left to it (None).
    rows = [(row * width)[:width] for row in rows]
    text = plain_csv_text([list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width)
    written: list[str] = []
    writer = csv.writer(_Collector(written.append), lineterminator="\n")
    writer.writerows(rows)
    if text is not None:
        assert text == "".join(written)
    else:
        assert rows or width == 1, "an empty page of two or more columns is all plain"


def test_a_usual_page_of_campaigns_is_written_without_the_csv_writer():
    page = [{**CAMPAIGN, "id": n, "name": f"Promo {n}", "finished_at": None} for n in range(1, 20)]
    encoder = CsvEncoder(RecordShaper())
    assert plain_csv_text(RecordShaper().csv_cell_columns(page)) is not None
    assert encoder.encode_page(page) == [encoder.encode(campaign) for campaign in page]
