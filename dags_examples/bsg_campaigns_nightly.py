"""
Nightly warehouse load of BSG SMS campaigns and their messages.

Each run covers one UTC day, ``[D-1 00:00, D 00:00)``, and starts right after it ends:

1. ``extract_campaigns`` writes the campaigns created that day to
   ``{bsg_data_url}/campaigns/<day>.jsonl``. ``lookback`` adds the day before, whose campaigns
   were still being sent when the previous run read them, so their status and statistics get
   refreshed. It runs in the ``bsg_api`` pool, so a backfill cannot flood the API.
2. ``load_campaigns`` upserts that file into the table ``bsg_campaigns`` of the ``bsg_warehouse``
   connection (any common-sql database whose SQL has ``INSERT ... ON CONFLICT``: SQLite,
   PostgreSQL), keyed by campaign id, in one transaction. Reruns and the lookback day update
   rows in place and never duplicate them.
3. ``extract_messages`` writes the messages created that day (and, through the same lookback,
   the day before, whose delivery reports were still arriving) to
   ``{bsg_data_url}/messages/<day>.jsonl``, in the same pool. A message's ``phone`` and ``text``
   are personal data: the phone is written only as ``phone_hash``, an HMAC-SHA256 under the key
   in the ``bsg_pii_key`` connection (the same phone hashes the same way in every load, so the
   column still joins and counts distinct recipients; nobody without the key can test a guess),
   and the text is not written at all. The key never appears in this file, a log or XCom.
4. ``load_messages`` upserts that file into ``bsg_messages`` by message id, as ``load_campaigns``
   does. ``amount_value`` is the API's exact decimal (``NUMERIC`` in PostgreSQL; ``TEXT`` in
   SQLite, whose ``NUMERIC`` would make it a float), ``phone_hash`` is text.

Setup (see docs/getting-started.md):

- connection ``bsg_default`` (type ``bsg``): the API key in the password field;
- connection ``bsg_pii_key`` (any type, e.g. ``generic``): the HMAC key of the phones in the
  password field, at least 16 characters, e.g. from
  ``python -c 'import secrets; print(secrets.token_urlsafe(32))'``; keep it (rotating it breaks
  joins with older loads) and keep it secret (a secrets backend suits it);
- connection ``bsg_warehouse``, e.g. ``AIRFLOW_CONN_BSG_WAREHOUSE='{"conn_type": "sqlite",
  "host": "/data/bsg/warehouse.db"}'`` (needs ``apache-airflow-providers-sqlite``);
- pool ``bsg_api``: ``airflow pools set bsg_api 2 "BSG One API calls"``;
- Variable ``bsg_data_url`` (optional, default ``file:///tmp/bsg``): where the files go, any
  ObjectStoragePath URL such as ``s3://aws_default@my-bucket/bsg``.

A run triggered without a logical date (``airflow dags trigger bsg_campaigns_nightly``, which
in Airflow 3 gives the run no data interval) loads the last complete UTC day before it was
triggered, as a run triggered from the UI with its default logical date does.

``catchup`` is off: load history on purpose with a backfill, e.g. two days at a time (a
backfill's own limit; the DAG's ``max_active_runs`` bounds scheduled runs), while the pool
bounds the extractions that call the API at once:

    airflow backfill create --dag-id bsg_campaigns_nightly \\
        --from-date 2025-01-01 --to-date 2025-03-31 --max-active-runs 2
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import BaseHook
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.sdk import ObjectStoragePath, dag, task
from airflow.timetables.base import DataInterval
from airflow.timetables.interval import CronDataIntervalTimetable

from bsg_provider.operators.campaigns import BsgExtractCampaignsOperator
from bsg_provider.operators.messages import BsgExtractMessagesOperator

log = logging.getLogger(__name__)

WAREHOUSE_CONN_ID = "bsg_warehouse"
API_POOL = "bsg_api"
#: The connection whose password is the key of the phones' HMAC (never a literal in this file).
PII_KEY_CONN_ID = "bsg_pii_key"
#: Rows sent to the database per executemany() call; the whole file is still one transaction.
BATCH_ROWS = 1000
#: Each run covers the day before it. (schedule="@daily" would give zero-width intervals in
#: Airflow 3, and the extract would refuse to guess.)
NIGHTLY = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")
#: The type of a column holding an exact decimal, resolved per database by :func:`decimal_type`.
DECIMAL = "DECIMAL"


@dataclass(frozen=True)
class WarehouseTable:
    """
    A warehouse table loaded from one kind of extract, upserted by ``id``.

    :param name: the table.
    :param columns: ``(column, SQL type)`` pairs in order, ``id`` first; :data:`DECIMAL` marks an
        exact decimal column.
    :param row: one line of the extract (a JSON object) and the load's timestamp, as a row of ``columns``.
    :param noun: what a row is, for the log.
    """

    name: str
    columns: tuple[tuple[str, str], ...]
    row: Callable[[dict[str, Any], str], tuple[Any, ...]]
    noun: str

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column for column, _ in self.columns)

    def create_sql(self, decimal_type: str) -> str:
        """
        ``CREATE TABLE IF NOT EXISTS``, the same on SQLite and PostgreSQL but for exact decimals.

        :param decimal_type: the SQL type of an exact decimal column (``NUMERIC``, or ``TEXT`` on SQLite).
        """
        body = ",\n    ".join(
            f"{column} {decimal_type if sql_type == DECIMAL else sql_type}"
            + (" PRIMARY KEY" if column == "id" else "")
            for column, sql_type in self.columns
        )
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body}\n)"

    def upsert_sql(self, placeholder: str) -> str:
        """
        ``INSERT ... ON CONFLICT (id) DO UPDATE`` of one row (SQLite 3.24+, PostgreSQL 9.5+).

        :param placeholder: the driver's parameter marker (``?`` for sqlite3, ``%s`` for psycopg).
        """
        names = self.column_names
        updates = ", ".join(f"{column} = excluded.{column}" for column in names if column != "id")
        return (
            f"INSERT INTO {self.name} ({', '.join(names)}) VALUES ({', '.join([placeholder] * len(names))}) "
            f"ON CONFLICT (id) DO UPDATE SET {updates}"
        )


def campaign_row(record: dict[str, Any], loaded_at: str) -> tuple[Any, ...]:
    """
    One campaign of the extract as a row of :data:`CAMPAIGNS_TABLE`; ``statistics`` is flattened
    into ``delivered`` and ``sent``.

    :param record: a campaign as the operator wrote it.
    :param loaded_at: when this load ran, ISO 8601.
    """
    statistics = record.get("statistics") or {}
    channels = record.get("alternative_channels")
    return (
        record["id"],
        record.get("name"),
        record.get("sender"),
        record.get("status"),
        record.get("message_type"),
        record.get("start_at"),
        record.get("real_start_at"),
        record.get("finished_at"),
        record.get("created_at"),
        statistics.get("delivered"),
        statistics.get("sent"),
        record.get("calculated_price"),
        record.get("currency"),
        None if channels is None else json.dumps(channels, sort_keys=True),
        loaded_at,
    )


def message_row(record: dict[str, Any], loaded_at: str) -> tuple[Any, ...]:
    """
    One message of the extract as a row of :data:`MESSAGES_TABLE`; ``amount`` is flattened into
    ``amount_value`` (the API's exact decimal string, unchanged) and ``amount_currency``.

    :param record: a message as the operator wrote it (``phone="hash"``, ``text="drop"``).
    :param loaded_at: when this load ran, ISO 8601.
    """
    amount = record.get("amount") or {}
    return (
        record["id"],
        record.get("campaign_id"),
        record.get("reference_id"),
        record.get("type"),
        record.get("source"),
        record.get("phone_hash"),
        record.get("validity"),
        record.get("status"),
        amount.get("value"),
        amount.get("currency"),
        record.get("sender"),
        record.get("created_at"),
        record.get("sent_at"),
        record.get("delivered_at"),
        record.get("country"),
        record.get("parts"),
        loaded_at,
    )


# Timestamps stay ISO 8601 text in UTC (as the operator writes them): they sort and compare
# correctly as text, and the same DDL works on SQLite and PostgreSQL.
CAMPAIGNS_TABLE = WarehouseTable(
    name="bsg_campaigns",
    columns=(
        ("id", "BIGINT"),
        ("name", "TEXT"),
        ("sender", "TEXT"),
        ("status", "TEXT"),
        ("message_type", "TEXT"),
        ("start_at", "TEXT"),
        ("real_start_at", "TEXT"),
        ("finished_at", "TEXT"),
        ("created_at", "TEXT"),
        ("delivered", "BIGINT"),
        ("sent", "BIGINT"),
        ("calculated_price", "NUMERIC"),
        ("currency", "TEXT"),
        ("alternative_channels", "TEXT"),
        ("loaded_at", "TEXT"),
    ),
    row=campaign_row,
    noun="campaigns",
)

# phone_hash is 64 hex digits (HMAC-SHA256 of the phone under the bsg_pii_key key); there is no
# phone and no text column: the extract drops both (see docs/messages.md before adding them).
MESSAGES_TABLE = WarehouseTable(
    name="bsg_messages",
    columns=(
        ("id", "BIGINT"),
        ("campaign_id", "BIGINT"),
        ("reference_id", "TEXT"),
        ("type", "TEXT"),
        ("source", "TEXT"),
        ("phone_hash", "TEXT"),
        ("validity", "BIGINT"),
        ("status", "TEXT"),
        ("amount_value", DECIMAL),
        ("amount_currency", "TEXT"),
        ("sender", "TEXT"),
        ("created_at", "TEXT"),
        ("sent_at", "TEXT"),
        ("delivered_at", "TEXT"),
        ("country", "TEXT"),
        ("parts", "BIGINT"),
        ("loaded_at", "TEXT"),
    ),
    row=message_row,
    noun="messages",
)


def read_records(path: ObjectStoragePath) -> Iterator[dict[str, Any]]:
    """
    The campaigns of a JSON Lines file (gzip-compressed if it ends in ``.gz``), one at a time.

    :param path: the file the extract task wrote.
    """
    with path.open("rb") as raw:
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if path.name.endswith(".gz") else raw
        # readline, not iteration: Airflow 3.0 wraps the file in a proxy that is not iterable.
        for line in iter(stream.readline, b""):
            if line.strip():
                yield json.loads(line)


def day_to_load(dag_run: Any) -> DataInterval:
    """
    The day a run loads: its data interval, or for a run that has none (triggered without a
    logical date), the last complete day before it was triggered, as the timetable infers it.

    :param dag_run: the run, as templates see it (``{{ dag_run }}``).
    """
    start, end = dag_run.data_interval_start, dag_run.data_interval_end
    if start is not None and end is not None:
        return DataInterval(start, end)
    return NIGHTLY.infer_manual_data_interval(run_after=pendulum.instance(dag_run.run_after))


def warehouse_hook() -> DbApiHook:
    """The SQL hook of the ``bsg_warehouse`` connection; a clear error if it is not a database."""
    connection = BaseHook.get_connection(WAREHOUSE_CONN_ID)
    hook = connection.get_hook()
    if not isinstance(hook, DbApiHook):
        raise TypeError(
            f"Connection {WAREHOUSE_CONN_ID!r} has type {connection.conn_type!r}, whose hook "
            f"{type(hook).__name__} is not a SQL (common-sql DbApiHook) hook; point it at a database "
            "such as sqlite or postgres."
        )
    return hook


def decimal_type(hook: DbApiHook) -> str:
    """
    The SQL type that keeps a decimal string such as ``0.0780000`` exact: ``NUMERIC``, but
    ``TEXT`` in SQLite, whose ``NUMERIC`` affinity would store it as the float 0.078.

    :param hook: the warehouse's SQL hook.
    """
    return "TEXT" if getattr(hook, "conn_type", None) == "sqlite" else "NUMERIC"


def upsert_file(summary: dict[str, Any], table: WarehouseTable) -> dict[str, Any]:
    """
    Upsert the file an extract task wrote into ``table``, all rows or none, and say what changed.

    :param summary: the extract task's XCom summary (its ``path`` and ``records``).
    :param table: where the rows go.
    """
    path = ObjectStoragePath(summary["path"])
    hook = warehouse_hook()
    loaded_at = pendulum.now("UTC").isoformat()
    rows = (table.row(record, loaded_at) for record in read_records(path))
    upsert = table.upsert_sql(hook.placeholder)
    upserted = 0
    with closing(hook.get_conn()) as conn:
        try:
            with closing(conn.cursor()) as cursor:
                cursor.execute(table.create_sql(decimal_type(hook)))
                cursor.execute(f"SELECT COUNT(*) FROM {table.name}")
                before = cursor.fetchone()[0]
                while batch := list(islice(rows, BATCH_ROWS)):
                    cursor.executemany(upsert, batch)
                    upserted += len(batch)
                if upserted != summary["records"]:
                    # The file changed since the extract wrote it (a concurrent rerun?): load nothing.
                    raise ValueError(
                        f"{path} holds {upserted} {table.noun} but the extract wrote {summary['records']}; "
                        "rerun the DAG run so extract and load see the same file."
                    )
                cursor.execute(f"SELECT COUNT(*) FROM {table.name}")
                after = cursor.fetchone()[0]
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    log.info(
        "Upserted %d %s from %s into %s: %d new, %d updated, %d rows in total.",
        upserted,
        table.noun,
        path,
        table.name,
        after - before,
        upserted - (after - before),
        after,
    )
    return {
        "path": str(path),
        "table": table.name,
        "interval_start": summary["interval_start"],
        "interval_end": summary["interval_end"],
        "upserted": upserted,
        "new_rows": after - before,
        "table_rows": after,
    }


@dag(
    dag_id="bsg_campaigns_nightly",
    description="Extract yesterday's BSG SMS campaigns and messages and upsert them into the warehouse.",
    schedule=NIGHTLY,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=2,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    dagrun_timeout=timedelta(hours=6),
    tags=["bsg", "example"],
    doc_md=__doc__,
    user_defined_macros={"day_to_load": day_to_load},
)
def bsg_campaigns_nightly() -> None:
    # The run's data interval, or the day before a trigger that gave the run none.
    day = {
        "start": "{{ day_to_load(dag_run).start.isoformat() }}",
        "end": "{{ day_to_load(dag_run).end.isoformat() }}",
    }
    files = "{{ var.value.get('bsg_data_url', 'file:///tmp/bsg') }}"
    extract_campaigns = BsgExtractCampaignsOperator(
        task_id="extract_campaigns",
        output_path=files + "/campaigns/{{ day_to_load(dag_run).start | ds }}.jsonl",
        **day,
        campaign_type="sms",
        lookback=timedelta(days=1),
        pool=API_POOL,
    )
    extract_messages = BsgExtractMessagesOperator(
        task_id="extract_messages",
        output_path=files + "/messages/{{ day_to_load(dag_run).start | ds }}.jsonl",
        **day,
        # Messages of the day before are still being delivered when it ends: refresh their status.
        lookback=timedelta(days=1),
        phone="hash",
        text="drop",
        pii_key_conn_id=PII_KEY_CONN_ID,
        pool=API_POOL,
    )

    @task
    def load_campaigns(summary: dict[str, Any]) -> dict[str, Any]:
        """Upsert the extracted campaigns into ``bsg_campaigns``, all rows or none."""
        return upsert_file(summary, CAMPAIGNS_TABLE)

    @task
    def load_messages(summary: dict[str, Any]) -> dict[str, Any]:
        """Upsert the extracted messages into ``bsg_messages``, all rows or none."""
        return upsert_file(summary, MESSAGES_TABLE)

    load_campaigns(extract_campaigns.output)
    load_messages(extract_messages.output)


bsg_campaigns_nightly()
