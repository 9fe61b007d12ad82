"""
Nightly warehouse load of BSG SMS campaigns.

Each run covers one UTC day, ``[D-1 00:00, D 00:00)``, and starts right after it ends:

1. ``extract_campaigns`` writes the campaigns created that day to
   ``{bsg_data_url}/campaigns/<day>.jsonl``. ``lookback`` adds the day before, whose campaigns
   were still being sent when the previous run read them, so their status and statistics get
   refreshed. It runs in the ``bsg_api`` pool, so a backfill cannot flood the API.
2. ``load_campaigns`` upserts that file into the table ``bsg_campaigns`` of the ``bsg_warehouse``
   connection (any common-sql database whose SQL has ``INSERT ... ON CONFLICT``: SQLite,
   PostgreSQL), keyed by campaign id, in one transaction. Reruns and the lookback day update
   rows in place and never duplicate them.

Setup (see docs/getting-started.md):

- connection ``bsg_default`` (type ``bsg``): the API key in the password field;
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
from collections.abc import Iterator
from contextlib import closing
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

log = logging.getLogger(__name__)

WAREHOUSE_CONN_ID = "bsg_warehouse"
TABLE = "bsg_campaigns"
API_POOL = "bsg_api"
#: Rows sent to the database per executemany() call; the whole file is still one transaction.
BATCH_ROWS = 1000
#: Each run covers the day before it. (schedule="@daily" would give zero-width intervals in
#: Airflow 3, and the extract would refuse to guess.)
NIGHTLY = CronDataIntervalTimetable("0 0 * * *", timezone="UTC")

#: Table columns, in order; ``statistics`` is flattened into ``delivered`` and ``sent``.
COLUMNS = (
    "id",
    "name",
    "sender",
    "status",
    "message_type",
    "start_at",
    "real_start_at",
    "finished_at",
    "created_at",
    "delivered",
    "sent",
    "calculated_price",
    "currency",
    "alternative_channels",
    "loaded_at",
)

# Timestamps stay ISO 8601 text in UTC (as the operator writes them): they sort and compare
# correctly as text, and the same DDL works on SQLite and PostgreSQL.
CREATE_TABLE_SQL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id BIGINT PRIMARY KEY,
    name TEXT,
    sender TEXT,
    status TEXT,
    message_type TEXT,
    start_at TEXT,
    real_start_at TEXT,
    finished_at TEXT,
    created_at TEXT,
    delivered BIGINT,
    sent BIGINT,
    calculated_price NUMERIC,
    currency TEXT,
    alternative_channels TEXT,
    loaded_at TEXT
)
"""


def upsert_sql(placeholder: str) -> str:
    """
    ``INSERT ... ON CONFLICT (id) DO UPDATE`` of one campaign row (SQLite 3.24+, PostgreSQL 9.5+).

    :param placeholder: the driver's parameter marker (``?`` for sqlite3, ``%s`` for psycopg).
    """
    updates = ", ".join(f"{column} = excluded.{column}" for column in COLUMNS if column != "id")
    return (
        f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join([placeholder] * len(COLUMNS))}) "
        f"ON CONFLICT (id) DO UPDATE SET {updates}"
    )


def campaign_row(record: dict[str, Any], loaded_at: str) -> tuple[Any, ...]:
    """
    One line of the extract (a JSON object) as a row of :data:`COLUMNS`.

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


@dag(
    dag_id="bsg_campaigns_nightly",
    description="Extract yesterday's BSG SMS campaigns and upsert them into the warehouse.",
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
    extract = BsgExtractCampaignsOperator(
        task_id="extract_campaigns",
        output_path=(
            "{{ var.value.get('bsg_data_url', 'file:///tmp/bsg') }}"
            "/campaigns/{{ day_to_load(dag_run).start | ds }}.jsonl"
        ),
        # The run's data interval, or the day before a trigger that gave the run none.
        start="{{ day_to_load(dag_run).start.isoformat() }}",
        end="{{ day_to_load(dag_run).end.isoformat() }}",
        campaign_type="sms",
        lookback=timedelta(days=1),
        pool=API_POOL,
    )

    @task
    def load_campaigns(summary: dict[str, Any]) -> dict[str, Any]:
        """Upsert the extracted file into the warehouse table, all rows or none."""
        path = ObjectStoragePath(summary["path"])
        hook = warehouse_hook()
        loaded_at = pendulum.now("UTC").isoformat()
        rows = (campaign_row(record, loaded_at) for record in read_records(path))
        upsert = upsert_sql(hook.placeholder)
        upserted = 0
        with closing(hook.get_conn()) as conn:
            try:
                with closing(conn.cursor()) as cursor:
                    cursor.execute(CREATE_TABLE_SQL)
                    cursor.execute(f"SELECT COUNT(*) FROM {TABLE}")
                    before = cursor.fetchone()[0]
                    while batch := list(islice(rows, BATCH_ROWS)):
                        cursor.executemany(upsert, batch)
                        upserted += len(batch)
                    if upserted != summary["records"]:
                        # The file changed since the extract wrote it (a concurrent rerun?): load nothing.
                        raise ValueError(
                            f"{path} holds {upserted} campaigns but the extract wrote {summary['records']}; "
                            "rerun the DAG run so extract and load see the same file."
                        )
                    cursor.execute(f"SELECT COUNT(*) FROM {TABLE}")
                    after = cursor.fetchone()[0]
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
        log.info(
            "Upserted %d campaigns from %s into %s: %d new, %d updated, %d rows in total.",
            upserted,
            path,
            TABLE,
            after - before,
            upserted - (after - before),
            after,
        )
        return {
            "path": str(path),
            "interval_start": summary["interval_start"],
            "interval_end": summary["interval_end"],
            "upserted": upserted,
            "new_rows": after - before,
            "table_rows": after,
        }

    load_campaigns(extract.output)


bsg_campaigns_nightly()
