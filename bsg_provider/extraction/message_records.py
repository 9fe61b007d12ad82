"""
From a message as the API sends it to an output record, with its personal data handled.

A message carries two fields of personal data: ``phone`` (the recipient) and ``text``
(what they were sent). :class:`PersonalData` says what becomes of them: the phone is kept,
dropped or replaced by a keyed HMAC-SHA256 (same phone, same key, same hash in every load,
so tables can still be joined on it, while nobody without the key can test a guess); the
text is dropped or kept. The hash key never appears in a record, an error or a repr.

Typed output: ``phone`` is written as a string of digits (the API sends a JSON number,
which the decoder reads as an exact int), ``amount.value`` as the API's exact decimal
string. A float in either place would already have lost digits, so it fails the load
instead. The columns are documented in docs/messages.md; change both together.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import repeat
from operator import itemgetter
from typing import Any

from bsg_provider.client.resources import MESSAGES
from bsg_provider.errors import BsgConfigError, BsgMalformedResponseError
from bsg_provider.extraction.records import TimestampConverter, csv_cell, csv_native, field_columns, json_text

PHONE_MODES = ("hash", "keep", "drop")
TEXT_MODES = ("drop", "keep")
#: The message fields the API documents, in output order.
MESSAGE_FIELDS = (
    "id",
    "campaign_id",
    "reference_id",
    "type",
    "source",
    "text",
    "phone",
    "validity",
    "status",
    "amount",
    "sender",
    "created_at",
    "sent_at",
    "delivered_at",
    "country",
    "parts",
)
#: The column that replaces ``phone`` when it is hashed.
PHONE_HASH_COLUMN = "phone_hash"
_KNOWN = frozenset(MESSAGE_FIELDS)
_TIMESTAMPS = MESSAGES.timestamp_fields
_CSV_NATIVE = frozenset({str, int, type(None)})
_ALL_FIELDS = itemgetter(*MESSAGE_FIELDS)
_PHONE_AT = MESSAGE_FIELDS.index("phone")
_AMOUNT_AT = MESSAGE_FIELDS.index("amount")
_ONLY_INTS = frozenset({int}).issuperset
_ONLY_DICTS = frozenset({dict}).issuperset
_ONLY_STRINGS = frozenset({str}).issuperset


def _dropped(personal_data: PersonalData) -> set[str]:
    """The message fields that do not reach the output."""
    return {
        name
        for name, mode in (("phone", personal_data.phone), ("text", personal_data.text))
        if mode == "drop"
    }


def check_phone_mode(phone: Any) -> str:
    """Return ``phone`` if it is ``hash``, ``keep`` or ``drop``, else raise :class:`BsgConfigError`."""
    if phone not in PHONE_MODES:
        raise BsgConfigError(f"phone must be one of {', '.join(PHONE_MODES)}, got {phone!r}.")
    return str(phone)


def check_text_mode(text: Any) -> str:
    """Return ``text`` if it is ``drop`` or ``keep``, else raise :class:`BsgConfigError`."""
    if text not in TEXT_MODES:
        raise BsgConfigError(f"text must be one of {', '.join(TEXT_MODES)}, got {text!r}.")
    return str(text)


@dataclass(frozen=True)
class PersonalData:
    """
    What to do with a message's phone and text.

    :param phone: ``hash`` (keyed HMAC-SHA256, hex, in column ``phone_hash``), ``keep`` or ``drop``.
    :param text: ``drop`` or ``keep``.
    :param key: the HMAC key, required with ``phone="hash"``; never shown in a repr.
    """

    phone: str = "hash"
    text: str = "drop"
    key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        check_phone_mode(self.phone)
        check_text_mode(self.text)
        if self.phone == "hash" and not self.key:
            raise BsgConfigError(
                "phone='hash' needs an HMAC key and none was given: set the password of the PII key "
                "connection (pii_key_conn_id) to a long random secret, or choose phone='drop'."
            )

    def columns(self) -> tuple[str, ...]:
        """The documented fields in output order, with ``phone`` and ``text`` as the modes say."""
        names: list[str] = []
        for name in MESSAGE_FIELDS:
            if name == "text" and self.text == "drop":
                continue
            if name == "phone":
                if self.phone == "drop":
                    continue
                if self.phone == "hash":
                    name = PHONE_HASH_COLUMN
            names.append(name)
        return tuple(names)


class MessageShaper:
    """
    Turn messages into JSON Lines objects or CSV cells, fixed column order, personal data handled.

    :param personal_data: what to do with phone and text.
    :param api_timezone: IANA name of the account's timezone, for the timestamps.
    :param convert_timestamps: convert timestamps to ISO 8601 UTC (True) or keep the API's strings.
    """

    def __init__(
        self, personal_data: PersonalData, *, api_timezone: str = "UTC", convert_timestamps: bool = True
    ) -> None:
        self.personal_data = personal_data
        self.convert_timestamps = convert_timestamps
        self._timestamp = TimestampConverter(api_timezone)
        self._columns = personal_data.columns()
        # The fields of a usual message that stay, in order (text and phone as the modes say).
        kept = [at for at, name in enumerate(MESSAGE_FIELDS) if name not in _dropped(personal_data)]
        self._kept = itemgetter(*kept)
        self._amount_at = amount_at = self._columns.index("amount")
        self._timestamp_at = [self._columns.index(name) for name in _TIMESTAMPS]
        #: The keys of a usual message's JSON object, in order.
        self.json_fields = self._columns
        #: CSV's fixed header: ``amount`` flattened, and one column for whatever the API adds.
        self.csv_columns = (
            *self._columns[:amount_at],
            "amount_value",
            "amount_currency",
            *self._columns[amount_at + 1 :],
            "extra_fields",
        )
        #: The types a CSV cell keeps; the rest go through csv_cell().
        self.csv_native_types = _CSV_NATIVE
        self._key = personal_data.key
        # Keyed once: each phone copies this state instead of padding and hashing the key again.
        self._keyed = None if self._key is None else hmac.new(self._key, digestmod=hashlib.sha256)

    def json_record(self, message: dict[str, Any]) -> dict[str, Any]:
        """
        The JSON Lines object: the columns in order (null when the API left one out), then any
        other field the API sent, sorted by name.

        :param message: one message as the API sent it.
        :raises BsgMalformedResponseError: for a timestamp, phone or amount that cannot be written exactly.
        """
        record = self._shape(message)
        if message.keys() != _KNOWN:
            for name in sorted(message.keys() - _KNOWN):
                record[name] = message[name]
        return record

    def json_columns(self, messages: list[dict[str, Any]]) -> list[Sequence[Any]] | None:
        """
        The values of a page of usual messages for JSON Lines, one sequence per field of
        :attr:`json_fields`: what :meth:`json_record` gives each, a column at a time. None for any
        other page (a field missing or added, a phone that is not a positive number, an amount
        whose value is not a string, a timestamp that is not one), which the caller then shapes
        message by message, so the values and the errors are the same either way.

        :param messages: one page of messages as the API sent them, left unchanged.
        """
        columns = field_columns(messages, _ALL_FIELDS, len(MESSAGE_FIELDS))
        if columns is None:
            return None
        pii = self.personal_data
        if pii.phone != "drop":
            phones = columns[_PHONE_AT]
            if not _ONLY_INTS(map(type, phones)) or min(phones) <= 0:
                return None
            digits = list(map(str, phones))
            columns[_PHONE_AT] = list(map(self._phone_hash, digits)) if pii.phone == "hash" else digits
        amounts = columns[_AMOUNT_AT]
        if not _ONLY_DICTS(map(type, amounts)) or not _ONLY_STRINGS(
            map(type, map(dict.get, amounts, repeat("value")))
        ):
            return None
        kept = list(self._kept(columns))
        if self.convert_timestamps:
            for at in self._timestamp_at:
                converted = self._timestamp.convert_column(kept[at])
                if converted is None:
                    return None
                kept[at] = converted
        return kept

    def csv_cell_columns(self, messages: list[dict[str, Any]]) -> list[Sequence[Any]] | None:
        """
        The cells of a page of usual messages, one sequence per column of :attr:`csv_columns`:
        what :meth:`csv_row` gives each, a column at a time. None for any other page, as
        :meth:`json_columns`.

        :param messages: one page of messages as the API sent them, left unchanged.
        """
        values = self.csv_value_columns(messages)
        return None if values is None else [csv_native(column, _CSV_NATIVE) for column in values]

    def csv_value_columns(self, messages: list[dict[str, Any]]) -> list[Sequence[Any]] | None:
        """
        :meth:`csv_cell_columns` before :func:`~bsg_provider.extraction.records.csv_native` (the
        cells of :attr:`csv_native_types` are the same).

        :param messages: one page of messages as the API sent them, left unchanged.
        """
        columns = self.json_columns(messages)
        if columns is None:
            return None
        at = self._amount_at
        amounts = columns[at]
        cells = [
            *columns[:at],
            list(map(dict.get, amounts, repeat("value"))),
            list(map(dict.get, amounts, repeat("currency"))),
            *columns[at + 1 :],
            [None] * len(messages),  # extra_fields: a usual message has none
        ]
        return cells

    def csv_row(self, message: dict[str, Any]) -> list[str | int | None]:
        """
        The CSV cells in :attr:`csv_columns` order; ``amount`` becomes ``amount_value`` (the exact
        decimal string) and ``amount_currency``; unknown fields go to ``extra_fields`` as JSON.

        :param message: one message as the API sent it.
        :raises BsgMalformedResponseError: for a timestamp, phone or amount that cannot be written exactly.
        """
        return self._cells(message, self._shape(message))

    def _cells(self, message: dict[str, Any], record: dict[str, Any]) -> list[str | int | None]:
        """The CSV cells of a message whose record :meth:`_shape` gave (and may be changed)."""
        amount = record.pop("amount")
        cells: list[Any] = list(record.values())
        at = self._amount_at
        if isinstance(amount, dict):
            money = [amount.get("value"), amount.get("currency")]
        else:
            money = [None, None] if amount is None else [json_text(amount), None]
        cells[at:at] = money
        extra = {name: message[name] for name in sorted(message.keys() - _KNOWN)}
        cells.append(json_text(extra) if extra else None)
        return [value if type(value) in _CSV_NATIVE else csv_cell(value) for value in cells]

    def _shape(self, message: dict[str, Any], *, convert: bool = True) -> dict[str, Any]:
        if message.keys() != _KNOWN:
            return self._shape_any(message)
        # The usual message, every documented field and no other: gathered in C, same record.
        values = list(_ALL_FIELDS(message))
        pii = self.personal_data
        if pii.phone != "drop":
            phone = values[_PHONE_AT]
            digits = str(phone) if type(phone) is int and phone > 0 else self._phone_digits(message)
            if pii.phone == "hash" and digits is not None:
                digits = self._phone_hash(digits)
            values[_PHONE_AT] = digits
        amount = values[_AMOUNT_AT]
        if type(amount) is not dict or type(amount.get("value")) is not str:
            values[_AMOUNT_AT] = self._amount(message, amount)
        record = dict(zip(self._columns, self._kept(values), strict=True))
        if convert and self.convert_timestamps:
            self._timestamp.convert_record(record, _TIMESTAMPS, noun="message", endpoint=MESSAGES.endpoint)
        return record

    def _shape_any(self, message: dict[str, Any]) -> dict[str, Any]:
        """:meth:`_shape` of a message with fields missing or added, field by field."""
        pii = self.personal_data
        record: dict[str, Any] = {}
        for name in MESSAGE_FIELDS:
            value = message.get(name)
            if name == "text":
                if pii.text == "drop":
                    continue
            elif name == "phone":
                if pii.phone == "drop":
                    continue
                digits = self._phone_digits(message)
                if pii.phone == "hash":
                    record[PHONE_HASH_COLUMN] = None if digits is None else self._phone_hash(digits)
                    continue
                value = digits
            elif name == "amount":
                value = self._amount(message, value)
            record[name] = value
        if self.convert_timestamps:
            self._timestamp.convert_record(record, _TIMESTAMPS, noun="message", endpoint=MESSAGES.endpoint)
        return record

    def _phone_hash(self, digits: str) -> str:
        """HMAC-SHA256 of the phone's digits under the key, as 64 hex digits."""
        assert self._keyed is not None  # PersonalData refuses phone="hash" without a key
        keyed = self._keyed.copy()
        keyed.update(digits.encode("ascii"))
        return keyed.hexdigest()

    @staticmethod
    def _phone_digits(message: dict[str, Any]) -> str | None:
        """The phone as a string of digits; the value itself never goes into an error."""
        phone = message.get("phone")
        if phone is None:
            return None
        if type(phone) is int and phone > 0:
            return str(phone)
        if type(phone) is str:
            digits = phone.strip().removeprefix("+")
            if digits.isdigit() and digits.isascii():
                return digits
        raise BsgMalformedResponseError(
            f"Message {message.get('id')} has a phone of type {type(phone).__name__} that is not a "
            "positive integer or a string of digits (a float would already have lost digits). "
            "Nothing was written; report the message to BSG.",
            status=200,
            reason="bad_phone",
            endpoint=MESSAGES.endpoint,
        )

    @staticmethod
    def _amount(message: dict[str, Any], amount: Any) -> Any:
        """``amount`` with its value as an exact decimal string."""
        if not isinstance(amount, dict):
            return amount
        value = amount.get("value")
        if value is None or type(value) is str:
            return amount
        if type(value) is int:
            return {**amount, "value": str(value)}
        raise BsgMalformedResponseError(
            f"Message {message.get('id')} has amount.value {value!r} ({type(value).__name__}); the API "
            "documents a decimal string, and a float cannot be written exactly. Nothing was written; "
            "report the message to BSG.",
            status=200,
            reason="bad_amount",
            endpoint=MESSAGES.endpoint,
        )
