from __future__ import annotations

import json

import pytest

from bsg_provider.errors import BsgMalformedResponseError
from bsg_provider.extraction.records import (
    CAMPAIGN_COLUMNS,
    CSV_COLUMNS,
    RecordShaper,
    TimestampConverter,
)

# As the vendor's OpenAPI example shows it, with the fields in a different order than ours.
CAMPAIGN = {
    "statistics": {"sent": 10, "delivered": 7},
    "id": 53651994,
    "name": "SMS api campaign / 2024-04-03 12:14:49",
    "sender": "testsms",
    "status": "done",
    "message_type": "sms",
    "start_at": "2024-04-03 12:14:49",
    "real_start_at": "2024-04-03 12:15:06",
    "finished_at": None,
    "created_at": "2024-04-03 12:14:49",
    "calculated_price": 0.0175696,
    "currency": "USD",
    "alternative_channels": [],
}


def as_text(cells: list) -> dict[str, str]:
    """The cells as the CSV file holds them, by column."""
    return dict(zip(CSV_COLUMNS, ["" if cell is None else str(cell) for cell in cells], strict=True))


def test_the_column_orders_are_fixed():
    assert CAMPAIGN_COLUMNS == (
        "id", "name", "sender", "status", "message_type", "start_at", "real_start_at", "finished_at",
        "created_at", "statistics", "calculated_price", "currency", "alternative_channels",
    )  # fmt: skip
    assert CSV_COLUMNS == (
        "id", "name", "sender", "status", "message_type", "start_at", "real_start_at", "finished_at",
        "created_at", "statistics_delivered", "statistics_sent", "calculated_price", "currency",
        "alternative_channels", "extra_fields",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("tz", "raw", "expected"),
    [
        ("UTC", "2024-04-03 12:14:49", "2024-04-03T12:14:49+00:00"),
        ("Europe/Berlin", "2024-04-03 12:14:49", "2024-04-03T10:14:49+00:00"),  # CEST, +02:00
        ("Europe/Berlin", "2024-01-03 12:14:49", "2024-01-03T11:14:49+00:00"),  # CET, +01:00
        ("Europe/Berlin", "2024-04-03 12:14:49+05:00", "2024-04-03T07:14:49+00:00"),  # an offset wins
        ("UTC", "2000-01-23T04:56:07.000+00:00", "2000-01-23T04:56:07+00:00"),  # the OpenAPI example's form
        ("UTC", "2024-04-03T12:14:49.5Z", "2024-04-03T12:14:49.500000+00:00"),
        # 02:30 happens twice on 2024-10-27 in Berlin: the first one, still CEST, is meant.
        ("Europe/Berlin", "2024-10-27 02:30:00", "2024-10-27T00:30:00+00:00"),
    ],
)
def test_timestamps_become_iso_8601_in_utc(tz, raw, expected):
    assert TimestampConverter(tz)(raw) == expected


def test_null_timestamps_stay_null_and_junk_is_refused():
    convert = TimestampConverter("UTC")
    assert convert(None) is None
    with pytest.raises(ValueError):
        convert("yesterday")
    with pytest.raises(ValueError):
        convert(1712146489)


def test_json_records_have_the_documented_fields_in_order():
    record = RecordShaper(api_timezone="Europe/Berlin").json_record(CAMPAIGN)
    assert list(record) == list(CAMPAIGN_COLUMNS)
    assert record["created_at"] == "2024-04-03T10:14:49+00:00"
    assert record["real_start_at"] == "2024-04-03T10:15:06+00:00"
    assert record["finished_at"] is None
    assert list(record["statistics"].items()) == [("delivered", 7), ("sent", 10)]
    assert record["alternative_channels"] == []
    assert CAMPAIGN["created_at"] == "2024-04-03 12:14:49", "the input is left alone"


def test_json_records_fill_missing_fields_with_null_and_keep_unknown_ones_sorted_at_the_end():
    campaign = {key: value for key, value in CAMPAIGN.items() if key not in ("calculated_price", "currency")}
    campaign["zeta"] = {"nested": True}
    campaign["alpha"] = 1
    campaign["statistics"] = {"sent": 1, "read": 3, "delivered": 0, "failed": 2}
    record = RecordShaper().json_record(campaign)
    assert list(record) == [*CAMPAIGN_COLUMNS, "alpha", "zeta"]
    assert record["calculated_price"] is None and record["currency"] is None
    assert record["zeta"] == {"nested": True}
    assert list(record["statistics"]) == ["delivered", "sent", "failed", "read"]


def test_raw_timestamps_are_kept_when_asked():
    record = RecordShaper(api_timezone="Europe/Berlin", convert_timestamps=False).json_record(CAMPAIGN)
    assert record["created_at"] == "2024-04-03 12:14:49"
    assert record["start_at"] == "2024-04-03 12:14:49"


def test_an_unreadable_timestamp_names_the_campaign_and_the_way_out():
    with pytest.raises(BsgMalformedResponseError) as caught:
        RecordShaper().json_record({**CAMPAIGN, "start_at": "soon"})
    assert str(caught.value) == (
        "Campaign 53651994 has start_at 'soon', which is not a timestamp (the API documents "
        "'yyyy-mm-dd hh:mm:ss' or ISO 8601). To write the API's strings unchanged, "
        "set convert_timestamps=False."
    )
    raw = RecordShaper(convert_timestamps=False).json_record({**CAMPAIGN, "start_at": "soon"})
    assert raw["start_at"] == "soon"


def test_csv_rows_flatten_statistics_and_match_the_header():
    row = RecordShaper(api_timezone="Europe/Berlin").csv_row(CAMPAIGN)
    assert as_text(row) == {
        "id": "53651994",
        "name": "SMS api campaign / 2024-04-03 12:14:49",
        "sender": "testsms",
        "status": "done",
        "message_type": "sms",
        "start_at": "2024-04-03T10:14:49+00:00",
        "real_start_at": "2024-04-03T10:15:06+00:00",
        "finished_at": "",
        "created_at": "2024-04-03T10:14:49+00:00",
        "statistics_delivered": "7",
        "statistics_sent": "10",
        "calculated_price": "0.0175696",
        "currency": "USD",
        "alternative_channels": "[]",
        "extra_fields": "",
    }
    assert row[0] == 53651994 and row[CSV_COLUMNS.index("finished_at")] is None, "numbers stay numbers"


def test_csv_rows_put_what_the_header_lacks_in_extra_fields():
    campaign = {
        **CAMPAIGN,
        "statistics": {"delivered": 1, "sent": 2, "read": 3},
        "alternative_channels": {"sms": {"sender": "testsms"}},
        "calculated_price": None,
        "tags": ["a", "ü"],
    }
    row = as_text(RecordShaper().csv_row(campaign))
    assert row["statistics_delivered"] == "1" and row["statistics_sent"] == "2"
    assert json.loads(row["alternative_channels"]) == {"sms": {"sender": "testsms"}}
    assert row["calculated_price"] == ""
    assert row["extra_fields"] == '{"statistics":{"read":3},"tags":["a","ü"]}'


def test_csv_rows_survive_missing_or_odd_statistics():
    shaper = RecordShaper()
    missing = as_text(shaper.csv_row({"id": 1}))
    assert missing["statistics_delivered"] == missing["statistics_sent"] == missing["extra_fields"] == ""
    odd = as_text(shaper.csv_row({"id": 1, "statistics": [1, 2], "ok": True}))
    assert odd["statistics_sent"] == "" and odd["extra_fields"] == '{"ok":true,"statistics":[1,2]}'


@pytest.mark.parametrize("raw", ["2024-02-30 12:14:49", "2024-04-03 25:14:49"])
def test_impossible_dates_are_refused_in_a_utc_account_too(raw):
    with pytest.raises(ValueError):
        TimestampConverter("UTC")(raw)


def test_a_short_offset_is_honoured_not_copied():
    # As long as the plain form, but carries an offset.
    assert TimestampConverter("UTC")("2024-04-03 12:14+01") == "2024-04-03T11:14:00+00:00"
