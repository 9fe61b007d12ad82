"""BsgExtractMessagesOperator against the simulator over real HTTP, writing real files."""

from __future__ import annotations

import csv
import gzip
import hashlib
import hmac
import io
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import AirflowFailException

from bsg_provider.errors import BsgConfigError
from bsg_provider.hooks.bsg import BsgHook
from bsg_provider.operators.messages import BsgExtractMessagesOperator
from bsg_provider.simulator import BsgSimulator
from tests.operators.conftest import MESSAGES_NOW as NOW
from tests.operators.conftest import serving_messages

UTC = timezone.utc
START, END = datetime(2026, 9, 1, tzinfo=UTC), datetime(2026, 9, 20, tzinfo=UTC)
PII_KEY = "test-pii-key-3f1c9a7e5b2d8f40"
CONTEXT = {"data_interval_start": START, "data_interval_end": END}


@pytest.fixture
def sim(monkeypatch: pytest.MonkeyPatch) -> Iterator[BsgSimulator]:
    with serving_messages(monkeypatch, "bsg_msg", PII_KEY, seed=5, messages_per_campaign=20) as simulator:
        yield simulator


def extract(path: Path | str, context: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    operator = BsgExtractMessagesOperator(
        task_id="messages", output_path=f"file://{path}", bsg_conn_id="bsg_msg", **kwargs
    )
    return operator.execute(CONTEXT if context is None else context)


def read_text(path: Path) -> str:
    data = path.read_bytes()
    return (gzip.decompress(data) if path.name.endswith(".gz") else data).decode()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in read_text(path).splitlines()]


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""))
    rows = list(reader)
    return list(reader.fieldnames or ()), rows


def raw_messages(start: datetime = START, end: datetime = END) -> dict[int, dict[str, Any]]:
    """The messages as the API sends them, through the hook."""
    hook = BsgHook("bsg_msg")
    try:
        return {m["id"]: m for m in hook.iter_messages(start, end)}
    finally:
        hook.close()


def digest(phone: int, key: str = PII_KEY) -> str:
    return hmac.new(key.encode(), str(phone).encode(), hashlib.sha256).hexdigest()


def test_defaults_hash_the_phone_drop_the_text_and_keep_exact_values(sim, tmp_path):
    summary = extract(tmp_path / "m.jsonl")
    records = read_jsonl(tmp_path / "m.jsonl")
    raw = raw_messages()
    ids = [r["id"] for r in records]
    assert ids == sim.message_ground_truth_ids(START, END) == sorted(raw) and len(ids) > 100
    assert summary["records"] == len(ids) and summary["phone"] == "hash" and summary["text"] == "drop"
    first = records[0]
    assert list(first) == [
        "id", "campaign_id", "reference_id", "type", "source", "phone_hash", "validity", "status",
        "amount", "sender", "created_at", "sent_at", "delivered_at", "country", "parts",
    ]  # fmt: skip
    for record in records:
        message = raw[record["id"]]
        assert "phone" not in record and "text" not in record
        assert record["phone_hash"] == digest(message["phone"])
        # The API's decimal string, digit for digit: never a float.
        assert record["amount"] == message["amount"] and type(record["amount"]["value"]) is str
    text = read_text(tmp_path / "m.jsonl")
    assert f'"value":"{raw[ids[0]]["amount"]["value"]}"' in text
    assert not any(str(m["phone"]) in text for m in raw.values()), "no raw phone in the file"


def test_phone_keep_writes_every_digit_as_text_in_jsonl_and_csv(sim, tmp_path):
    raw = raw_messages()
    extract(tmp_path / "k.jsonl", phone="keep", text="keep")
    extract(tmp_path / "k.csv", phone="keep", text="keep")
    records = read_jsonl(tmp_path / "k.jsonl")
    header, rows = read_csv(tmp_path / "k.csv")
    assert header[:8] == ["id", "campaign_id", "reference_id", "type", "source", "text", "phone", "validity"]
    assert "amount_value" in header and "amount_currency" in header and header[-1] == "extra_fields"
    assert len(records) == len(rows) == len(raw)
    assert max(len(str(m["phone"])) for m in raw.values()) >= 13
    for record, row in zip(records, rows, strict=True):
        message = raw[record["id"]]
        assert record["phone"] == row["phone"] == str(message["phone"])
        assert record["text"] == row["text"] == message["text"]
        assert row["amount_value"] == message["amount"]["value"]
        assert row["amount_currency"] == message["amount"]["currency"]
        assert int(row["id"]) == record["id"]


def test_phone_drop_and_the_same_hash_in_every_load(sim, tmp_path):
    extract(tmp_path / "d.csv", phone="drop")
    header, _rows = read_csv(tmp_path / "d.csv")
    assert "phone" not in header and "phone_hash" not in header and "text" not in header
    # Two loads of overlapping intervals hash each phone the same way: they still join.
    extract(tmp_path / "a.jsonl")
    later = {"data_interval_start": START + timedelta(days=5), "data_interval_end": END + timedelta(days=5)}
    extract(tmp_path / "b.jsonl", context=later)
    first = {r["id"]: r["phone_hash"] for r in read_jsonl(tmp_path / "a.jsonl")}
    second = {r["id"]: r["phone_hash"] for r in read_jsonl(tmp_path / "b.jsonl")}
    shared = first.keys() & second.keys()
    assert shared and all(first[i] == second[i] for i in shared)


def test_a_missing_or_short_key_is_a_config_error_not_a_fallback(sim, tmp_path, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_BSG_PII_KEY")
    missing = r"phone='hash' needs the HMAC key from connection 'bsg_pii_key'"
    with pytest.raises(AirflowFailException, match=missing):
        extract(tmp_path / "x.jsonl")
    monkeypatch.setenv("AIRFLOW_CONN_SHORT_KEY", json.dumps({"conn_type": "generic", "password": "short"}))
    with pytest.raises(AirflowFailException, match=r"at least 16 characters .* it has 5"):
        extract(tmp_path / "x.jsonl", pii_key_conn_id="short_key")
    assert not (tmp_path / "x.jsonl").exists()
    # Dropping the phone needs no key.
    assert extract(tmp_path / "x.jsonl", phone="drop")["records"] > 0


@pytest.mark.parametrize("name", ["r.jsonl", "r.csv", "r.jsonl.gz", "r.csv.gz"])
def test_a_rerun_writes_the_same_bytes(sim, tmp_path, name):
    extract(tmp_path / "one" / name)
    extract(tmp_path / "two" / name)
    assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    assert read_text(tmp_path / "one" / name).count("\n") >= 100


def test_the_compression_level_reaches_the_messages_file(sim, tmp_path):
    extract(tmp_path / "fast" / "m.jsonl.gz", compression_level=1)
    extract(tmp_path / "small" / "m.jsonl.gz", compression_level=9)
    fast, small = (
        (tmp_path / "fast" / "m.jsonl.gz").read_bytes(),
        (tmp_path / "small" / "m.jsonl.gz").read_bytes(),
    )
    assert (fast[8], small[8]) == (4, 2), "gzip's XFL byte: 4 fastest, 2 best"
    assert read_text(tmp_path / "fast" / "m.jsonl.gz") == read_text(tmp_path / "small" / "m.jsonl.gz")


def test_campaigns_by_id_without_an_interval_get_all_their_messages(sim, tmp_path):
    march = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)
    campaigns = sorted(sim.ground_truth_ids(*march))
    chosen = campaigns[:2]
    summary = extract(tmp_path / "c.jsonl", context={}, campaign_id=chosen, phone="drop")
    ids = [r["id"] for r in read_jsonl(tmp_path / "c.jsonl")]
    everything = datetime(2020, 1, 1, tzinfo=UTC), NOW + timedelta(days=1)
    expected = sorted(i for c in chosen for i in sim.message_ground_truth_ids(*everything, c))
    assert ids == expected and len(ids) == 40
    assert summary["campaigns"] == 2
    # A rendered template's text is a list of ids too.
    extract(tmp_path / "t.jsonl", context={}, campaign_id=f"[{chosen[0]}, {chosen[1]}]", phone="drop")
    assert (tmp_path / "t.jsonl").read_bytes() == (tmp_path / "c.jsonl").read_bytes()


def test_bad_literal_arguments_fail_when_the_dag_is_parsed():
    for kwargs, message in [
        ({"phone": "plain"}, r"^phone must be one of hash, keep, drop, got 'plain'\.$"),
        ({"text": "hash"}, r"^text must be one of drop, keep, got 'hash'\.$"),
        ({"page_size": 10}, r"^page_size must be from 15 to 500"),
        ({"campaign_id": 0}, r"^A campaign id must be a positive integer, got 0\.$"),
        ({"compression_level": 10}, r"^compression_level must be a whole number from 1 \(fastest\) to 9"),
    ]:
        with pytest.raises(BsgConfigError, match=message):
            BsgExtractMessagesOperator(task_id="m", output_path="file:///tmp/x.jsonl", **kwargs)
    # Templated values are checked once rendered, in execute().
    op = BsgExtractMessagesOperator(
        task_id="m", output_path="file:///tmp/x.jsonl", campaign_id="{{ params.c }}"
    )
    assert op.campaign_id == "{{ params.c }}"


def test_a_rendered_bad_campaign_id_fails_without_retry(sim, tmp_path):
    operator = BsgExtractMessagesOperator(
        task_id="m", output_path=f"file://{tmp_path}/x.jsonl", bsg_conn_id="bsg_msg", campaign_id="{{ c }}"
    )
    operator.campaign_id = "abc"  # what rendering the template gave
    with pytest.raises(AirflowFailException, match=r"A campaign id must be a positive integer, got 'abc'"):
        operator.execute(CONTEXT)
    assert sim.requests == []
