"""The message shaper: columns per personal-data mode, exact phones and amounts, errors without data."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from bsg_provider.errors import BsgConfigError, BsgMalformedResponseError
from bsg_provider.extraction.message_records import MESSAGE_FIELDS, MessageShaper, PersonalData

KEY = b"k" * 32
PHONE = 998901234567891  # 15 digits: beyond a float's exact integers once scaled, and beyond 2**48
MESSAGE = {
    "id": 4400000190,
    "campaign_id": 53000128,
    "reference_id": "84fa19b2826e78cc2c591c5f61f9f12d",
    "type": "sms",
    "source": "rest",
    "text": "Hello! Your order #93 is on its way.",
    "phone": PHONE,
    "validity": 48,
    "status": "delivered",
    "amount": {"value": "0.0780000", "currency": "USD"},
    "sender": "MyClinic",
    "created_at": "2025-04-25 01:29:07",
    "sent_at": "2025-04-25 01:29:21",
    "delivered_at": None,
    "country": "DE",
    "parts": 1,
}


def shaper(**modes: str) -> MessageShaper:
    return MessageShaper(PersonalData(key=KEY, **modes), api_timezone="Europe/Berlin")


def test_hash_mode_is_a_keyed_hmac_of_the_digits():
    record = shaper().json_record(MESSAGE)
    assert record["phone_hash"] == hmac.new(KEY, str(PHONE).encode(), hashlib.sha256).hexdigest()
    assert "phone" not in record and "text" not in record
    assert record["created_at"] == "2025-04-24T23:29:07+00:00" and record["delivered_at"] is None
    other = MessageShaper(PersonalData(key=b"x" * 32)).json_record(MESSAGE)
    assert other["phone_hash"] != record["phone_hash"], "another key, another hash"


def test_keep_mode_keeps_every_digit_as_text_and_amounts_stay_strings():
    keep = shaper(phone="keep", text="keep")
    drifted = {**MESSAGE, "phone": "+" + str(PHONE), "amount": {"value": 7, "currency": "EUR"}}
    record = keep.json_record(drifted)
    assert list(record) == list(MESSAGE_FIELDS)
    assert record["phone"] == str(PHONE) and record["amount"] == {"value": "7", "currency": "EUR"}
    row = keep.csv_row(MESSAGE)
    cells = dict(zip(keep.csv_columns, row, strict=True))
    assert cells["phone"] == str(PHONE) and cells["amount_value"] == "0.0780000"
    assert cells["amount_currency"] == "USD" and cells["extra_fields"] is None


def test_unknown_fields_are_kept_and_csv_puts_them_in_extra_fields():
    s = shaper(phone="drop")
    message = {**MESSAGE, "zeta": 1, "alpha": {"a": [1]}}
    assert list(s.json_record(message))[-2:] == ["alpha", "zeta"]
    cells = dict(zip(s.csv_columns, s.csv_row(message), strict=True))
    assert cells["extra_fields"] == '{"alpha":{"a":[1]},"zeta":1}'
    assert "phone" not in s.csv_columns and "phone_hash" not in s.csv_columns


@pytest.mark.parametrize("phone", [9.98901234567891e14, True, -5, "99 8x", [1]])
def test_a_phone_that_lost_or_lacks_digits_fails_without_showing_it(phone):
    with pytest.raises(BsgMalformedResponseError, match="has a phone of type") as info:
        shaper().json_record({**MESSAGE, "phone": phone})
    assert str(phone) not in str(info.value) and repr(phone) not in str(info.value)


def test_a_float_amount_fails():
    with pytest.raises(BsgMalformedResponseError, match=r"amount.value 0.078 \(float\)"):
        shaper().csv_row({**MESSAGE, "amount": {"value": 0.078, "currency": "USD"}})


def test_modes_and_key_are_checked_and_the_key_never_shows():
    with pytest.raises(BsgConfigError, match="phone='hash' needs an HMAC key"):
        PersonalData()
    with pytest.raises(BsgConfigError, match="phone must be one of hash, keep, drop"):
        PersonalData(phone="mask", key=KEY)
    with pytest.raises(BsgConfigError, match="text must be one of drop, keep"):
        PersonalData(text="hash", key=KEY)
    assert "kkkk" not in repr(PersonalData(key=KEY))
    assert PersonalData(phone="drop").columns()[:5] == ("id", "campaign_id", "reference_id", "type", "source")


def test_a_bad_timestamp_names_the_message_and_the_way_out():
    bad = r"^Message 4400000190 has sent_at 'soon', which is not"
    with pytest.raises(BsgMalformedResponseError, match=bad):
        shaper().json_record({**MESSAGE, "sent_at": "soon"})
    record = MessageShaper(PersonalData(phone="drop"), convert_timestamps=False).json_record(MESSAGE)
    assert record["created_at"] == MESSAGE["created_at"]


ODD_VALUES = {
    "created_at": [
        "2025-04-25T01:29:07",
        "2025-04-25 01:29:07+02:00",
        "not a time",
        None,
        "2025-02-30 00:00:00",
    ],
    "phone": [PHONE, str(PHONE), "+49 30 1234", 4.9e10, None, True],
    "amount": [{"value": 7, "currency": "EUR"}, {"value": 0.1}, None, "0.1", {"currency": "EUR"}],
    "text": ['Grüße, "quoted"\nline', None, 5],
}


def encoded(encoder_type, shaper_: MessageShaper, page: list[dict], by_page: bool) -> list[bytes] | str:
    from bsg_provider.extraction.file_formats import CsvEncoder, JsonLinesEncoder

    encoder = {"csv": CsvEncoder, "jsonl": JsonLinesEncoder}[encoder_type](shaper_)
    try:
        return encoder.encode_page(page) if by_page else [encoder.encode(message) for message in page]
    except BsgMalformedResponseError as exc:
        return str(exc)


@pytest.mark.parametrize("encoder_type", ["csv", "jsonl"])
@pytest.mark.parametrize("timezone", ["UTC", "Europe/Berlin"])
@pytest.mark.parametrize(("phone", "text"), [("hash", "drop"), ("keep", "keep"), ("drop", "keep")])
def test_a_page_of_messages_encodes_as_its_messages_one_by_one(encoder_type, timezone, phone, text):
    usual = [{**MESSAGE, "id": MESSAGE["id"] + n, "phone": PHONE + n} for n in range(5)]
    pages = [usual, [{**MESSAGE, "extra": 1}, *usual], [dict(reversed(MESSAGE.items())), *usual]]
    for name, values in ODD_VALUES.items():
        pages += [[*usual, {**MESSAGE, name: value}, *usual] for value in values]
    for convert in (True, False):
        modes = PersonalData(phone=phone, text=text, key=KEY)
        shaper_ = MessageShaper(modes, api_timezone=timezone, convert_timestamps=convert)
        for page in pages:
            one_by_one = encoded(encoder_type, shaper_, page, by_page=False)
            assert encoded(encoder_type, shaper_, page, by_page=True) == one_by_one, page
    # The usual page takes the page path (and still matches, above), in every timezone.
    shaper_ = MessageShaper(PersonalData(phone=phone, text=text, key=KEY), api_timezone=timezone)
    assert shaper_.json_columns(usual) is not None and shaper_.csv_cell_columns(usual) is not None


@pytest.mark.parametrize(
    "key", [b"k" * 16, b"0123456789abcdef" * 4, b"x" * 65, "ключ-ключ-ключ-ключ".encode(), b"\0" * 200]
)
def test_the_phone_hash_is_hmac_sha256_for_keys_of_any_length(key):
    shaper_ = MessageShaper(PersonalData(key=key))
    for phone in (PHONE, 1, 10**30, 4915112345678):
        expected = hmac.new(key, str(phone).encode(), hashlib.sha256).hexdigest()
        assert shaper_.json_record({**MESSAGE, "phone": phone})["phone_hash"] == expected
