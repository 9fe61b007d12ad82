"""The nightly load, run by ``dag.test()`` against the simulator into an SQLite warehouse."""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

from tests.dag_helpers import run_dag, task_states, xcom_return_value
from tests.dags_examples.conftest import PII_KEY, without_retries

#: The days loaded (each run's data interval), all complete before the simulator's "now"; the
#: second's lookback day is the first. (Two nights, not more: each run costs four tasks.)
DAYS = [datetime(2025, 6, day, tzinfo=timezone.utc) for day in (11, 12)]
ONE_DAY = timedelta(days=1)


def run_day(dag, day: datetime):
    """Run the DAG for the data interval ``[day, day + 1)``: dag.test() infers it from the end."""
    dag_run = run_dag(dag, logical_date=day + ONE_DAY)
    assert (dag_run.data_interval_start, dag_run.data_interval_end) == (day, day + ONE_DAY)
    assert task_states(dag_run) == {
        "extract_campaigns": "success",
        "load_campaigns": "success",
        "extract_messages": "success",
        "load_messages": "success",
    }
    return {task: xcom_return_value(dag_run, task) for task in task_states(dag_run)}


def warehouse_rows(database: Path) -> dict[int, tuple]:
    with sqlite3.connect(database) as conn:
        rows = conn.execute("SELECT id, status, sent, delivered FROM bsg_campaigns")
        return {row[0]: row[1:] for row in rows}


def api_messages(sim, start: datetime, end: datetime) -> list[dict]:
    """The first page of the messages the simulator's API answers for ``[start, end]``, asked directly."""
    token = requests.post(f"{sim.url}/api/auth/login", json={"api_key": sim.api_key}, timeout=10).json()
    params = {
        "filter[from]": f"{start:%Y-%m-%d %H:%M:%S}",
        "filter[to]": f"{end:%Y-%m-%d %H:%M:%S}",
        "page[limit]": "100",
        "sort": "id",
        "way": "asc",
    }
    headers = {"Authorization": f"Bearer {token['bearer']}"}
    return requests.get(f"{sim.url}/api/messages", params=params, headers=headers, timeout=10).json()["data"]


def warehouse_message_ids(database: Path) -> list[int]:
    """Every message id in ``bsg_messages``, duplicates kept."""
    with sqlite3.connect(database) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM bsg_messages")]


def test_nights_load_exactly_the_campaigns_and_messages_and_a_rerun_duplicates_nothing(
    examples, example_simulator, example_env, airflow_db, tmp_path
):
    sim = example_simulator
    dag = without_retries(examples.dags["bsg_campaigns_nightly"])

    loaded_so_far: set[int] = set()
    messages_so_far: set[int] = set()
    for day in DAYS:
        results = run_day(dag, day)
        extract, load = results["extract_campaigns"], results["load_campaigns"]
        # Each file holds the day and, through the one-day lookback, the day before.
        with_lookback = sim.ground_truth_ids(day - ONE_DAY, day + ONE_DAY)
        assert extract["records"] == len(with_lookback) > 0
        assert extract["path"] == f"file://{tmp_path}/data/campaigns/{day:%Y-%m-%d}.jsonl"
        assert Path(tmp_path, "data", "campaigns", f"{day:%Y-%m-%d}.jsonl").is_file()
        assert load["upserted"] == extract["records"]
        assert load["new_rows"] == len(set(with_lookback) - loaded_so_far)
        loaded_so_far |= set(with_lookback)
        assert load["table_rows"] == len(loaded_so_far)
        # The messages alike: the day and the day before, each message once.
        messages = sim.message_ground_truth_ids(day - ONE_DAY, day + ONE_DAY)
        extract, load = results["extract_messages"], results["load_messages"]
        assert extract["records"] == len(messages) > 0
        assert (extract["phone"], extract["text"]) == ("hash", "drop")
        assert extract["path"] == f"file://{tmp_path}/data/messages/{day:%Y-%m-%d}.jsonl"
        assert load["upserted"] == extract["records"]
        assert load["new_rows"] == len(set(messages) - messages_so_far)
        messages_so_far |= set(messages)
        assert load["table_rows"] == len(messages_so_far)

    rows = warehouse_rows(example_env)
    assert set(rows) == set(sim.ground_truth_ids(DAYS[0] - ONE_DAY, DAYS[-1] + ONE_DAY))
    for campaign in sim.ground_truth(DAYS[0] - ONE_DAY, DAYS[-1] + ONE_DAY):
        statistics = campaign["statistics"]
        assert rows[campaign["id"]] == (campaign["status"], statistics["sent"], statistics["delivered"])

    message_ids = warehouse_message_ids(example_env)
    assert sorted(message_ids) == sim.message_ground_truth_ids(DAYS[0] - ONE_DAY, DAYS[-1] + ONE_DAY)
    assert_exact_amounts_and_only_hashed_phones(sim, example_env, tmp_path, DAYS[-1])

    # A status change since the last run, then a rerun of the last day: updated in place, no new row.
    changed = sim.ground_truth(DAYS[-1], DAYS[-1] + ONE_DAY)[0]["id"]
    new_status = "stopped" if rows[changed][0] != "stopped" else "done"
    sim.set_status(changed, new_status)
    rerun = run_day(dag, DAYS[-1])
    assert rerun["load_campaigns"]["new_rows"] == 0
    assert rerun["load_campaigns"]["table_rows"] == len(rows)
    after = warehouse_rows(example_env)
    assert len(after) == len(rows)
    assert after[changed][0] == new_status
    assert rerun["load_messages"]["new_rows"] == 0
    assert rerun["load_messages"]["upserted"] == rerun["extract_messages"]["records"] > 0
    assert sorted(warehouse_message_ids(example_env)) == sorted(message_ids)


def assert_exact_amounts_and_only_hashed_phones(sim, database: Path, tmp_path: Path, day: datetime) -> None:
    """The day's file and table hold no phone and no text; hashes and amounts match the API's own answer."""
    for line in (tmp_path / "data" / "messages" / f"{day:%Y-%m-%d}.jsonl").read_text().splitlines():
        record = json.loads(line)
        assert "phone" not in record and "text" not in record and len(record["phone_hash"]) == 64
    # What the API answers for an hour of that day, read apart from the DAG.
    answered = api_messages(sim, day + timedelta(hours=12), day + timedelta(hours=13))
    assert answered
    with sqlite3.connect(database) as conn:
        types = {row[1]: row[2] for row in conn.execute("PRAGMA table_info(bsg_messages)")}
        rows = {
            row[0]: row[1:]
            for row in conn.execute(
                "SELECT id, phone_hash, amount_value, typeof(amount_value), amount_currency FROM bsg_messages"
            )
        }
    assert "phone" not in types and "text" not in types
    assert types["amount_value"] == "TEXT"  # SQLite's NUMERIC would make 0.0780000 a float
    for message in answered:
        phone_hash, value, value_type, currency = rows[message["id"]]
        expected = hmac.new(PII_KEY.encode(), str(message["phone"]).encode(), hashlib.sha256).hexdigest()
        assert phone_hash == expected
        assert (value, value_type, currency) == (
            message["amount"]["value"],
            "text",
            message["amount"]["currency"],
        )
