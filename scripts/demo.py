"""
The one-command demo (README: ``make demo``; ``scripts/demo.sh`` prepares the virtualenv and runs this).

In a real Airflow with its own SQLite metadata database under ``.demo/airflow``, against the
BSG One API simulator started on 127.0.0.1:

1. ``bsg_campaigns_nightly`` runs for the last three complete UTC days, loading the campaigns
   and their messages (phones hashed, texts dropped) into the SQLite warehouse
   ``.demo/warehouse.db``;
2. ``bsg_campaigns_report``, scheduled on the campaigns asset the nightly load updates, is
   queued by the last night's asset event and reports the file that event names;
3. ``bsg_campaign_gate`` waits (deferred) for a campaign that finishes within seconds, extracts
   its messages and reports its delivery.

Then it prints what was loaded (with a few message rows, as the warehouse holds them: no phone,
only its keyed hash), checks it against the simulator's ground truth and stops the simulator,
also on failure. The phones' HMAC key is made once and kept in ``.demo/pii_key`` (mode 0600),
so reruns hash each phone the same way; it is never printed. Run it again: the warehouse keeps
its row counts, because the load is an upsert and the simulator's campaigns and messages depend
only on the seed and the day. Exit status 0 when everything worked, 1 otherwise. Airflow's own
output goes to ``.demo/demo.log``.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parents[1]
DEMO_DIR = ROOT / ".demo"
AIRFLOW_HOME = DEMO_DIR / "airflow"
DATA_DIR = DEMO_DIR / "data"
WAREHOUSE = DEMO_DIR / "warehouse.db"
AIRFLOW_LOG = DEMO_DIR / "demo.log"
SIMULATOR_LOG = DEMO_DIR / "simulator.log"
PII_KEY_FILE = DEMO_DIR / "pii_key"
DAGS_FOLDER = ROOT / "dags_examples"

NIGHTLY_DAG = "bsg_campaigns_nightly"
REPORT_DAG = "bsg_campaigns_report"
GATE_DAG = "bsg_campaign_gate"
DAYS = 3
ONE_DAY = timedelta(days=1)
#: The simulator's data set: the same seed and clock give the same campaigns on every run of a day.
SIMULATOR_ARGS = ("--campaigns", "5000", "--seed", "42", "--period-days", "120", "--status-step-seconds", "2")
#: How fast the gate's campaign moves through creation, moderation, scheduled, sending and done.
GATE_STATUS_STEP_SECONDS = 1.5
STARTUP_TIMEOUT_SECONDS = 30


class DemoError(Exception):
    """A step of the demo failed; the message says which and why."""


class Console:
    """The demo's own output, kept apart from Airflow's (which goes to :data:`AIRFLOW_LOG`)."""

    def __init__(self) -> None:
        self._out: IO[str] = sys.stdout

    def say(self, text: str = "") -> None:
        print(text, file=self._out, flush=True)

    @contextmanager
    def airflow_output_to(self, log_file: Path) -> Iterator[None]:
        """Send everything written to fds 1 and 2 (Airflow's logging included) to ``log_file``."""
        sys.stdout.flush()
        sys.stderr.flush()
        saved_out, saved_err = os.dup(1), os.dup(2)
        self._out = os.fdopen(os.dup(saved_out), "w")
        with log_file.open("a") as log:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved_out, 1)
                os.dup2(saved_err, 2)
                os.close(saved_out)
                os.close(saved_err)
                self._out.close()
                self._out = sys.stdout


console = Console()


def pii_key() -> str:
    """The demo's HMAC key for phones: made on the first run, then read from :data:`PII_KEY_FILE`."""
    if not PII_KEY_FILE.exists():
        descriptor = os.open(PII_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return PII_KEY_FILE.read_text().strip()


def configure_airflow() -> None:
    """A private Airflow (own home, SQLite metadata DB, the example DAGs); set before Airflow is imported."""
    AIRFLOW_HOME.mkdir(parents=True, exist_ok=True)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "AIRFLOW_HOME": str(AIRFLOW_HOME),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            # What the example DAGs read: where files go, the warehouse, and a quick gate.
            "AIRFLOW_VAR_BSG_DATA_URL": f"file://{DATA_DIR}",
            "AIRFLOW_CONN_BSG_WAREHOUSE": json.dumps({"conn_type": "sqlite", "host": str(WAREHOUSE)}),
            "AIRFLOW_CONN_BSG_PII_KEY": json.dumps({"conn_type": "generic", "password": pii_key()}),
            "BSG_GATE_POKE_SECONDS": "1",
        }
    )


class Simulator:
    """
    ``python -m bsg_provider.simulator`` in a child process, stopped when the block ends.

    :param now: the instant the simulator's clock starts at; its campaigns are the days before it.
    """

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.url = ""
        self.api_key = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> Simulator:
        command = [
            sys.executable,
            "-m",
            "bsg_provider.simulator",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--now",
            self.now.isoformat(),
            *SIMULATOR_ARGS,
        ]
        log = SIMULATOR_LOG.open("w")
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True, cwd=ROOT)
        log.close()
        lines = self._read_banner()
        for line in lines:
            if line.startswith("BSG One API simulator listening on "):
                self.url = line.rsplit(" ", 1)[1]
            elif line.startswith("API key: "):
                self.api_key = line.split(": ", 1)[1]
        if not (self.url and self.api_key):
            self.stop()
            raise DemoError(
                f"The simulator did not start: it printed {lines!r}; see {SIMULATOR_LOG.relative_to(ROOT)}."
            )
        # Keep draining its stdout so it can never block on a full pipe.
        threading.Thread(target=self._process.stdout.read, daemon=True).start()  # type: ignore[union-attr]
        return self

    def _read_banner(self) -> list[str]:
        assert self._process is not None and self._process.stdout is not None
        lines: list[str] = []

        def read() -> None:
            for _ in range(2):
                line = self._process.stdout.readline()  # type: ignore[union-attr]
                if not line:
                    return
                lines.append(line.strip())

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT_SECONDS)
        return lines

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within 10 s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        """Call one of the simulator's ``/_simulator/...`` control endpoints."""
        response = requests.request(method, f"{self.url}/_simulator/{path}", timeout=10, **kwargs)
        if not response.ok:
            raise DemoError(f"The simulator refused {method} /_simulator/{path}: {response.text}")
        return response.json()

    def ground_truth_count(self, start: datetime, end: datetime) -> int:
        """How many SMS campaigns were created in ``[start, end)``."""
        return self.control(
            "GET", "ground-truth", params={"start": start.isoformat(), "end": end.isoformat(), "type": "sms"}
        )["count"]

    def message_ground_truth_count(self, start: datetime, end: datetime) -> int:
        """How many messages were created in ``[start, end)``."""
        params = {"start": start.isoformat(), "end": end.isoformat()}
        return self.control("GET", "messages/ground-truth", params=params)["count"]


def prepare_metadata_db() -> None:
    """Create or migrate the SQLite metadata database and the ``bsg_api`` pool the extract runs in."""
    from airflow.models.pool import Pool
    from airflow.utils.db import initdb

    initdb()
    Pool.create_or_update_pool("bsg_api", 2, "BSG One API calls", False)


def parse_dags() -> dict[str, Any]:
    """Parse ``dags_examples/`` and write the DAGs to the metadata DB, as the DAG processor would."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    try:  # Airflow 3.1+
        from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    except ImportError:  # Airflow 3.0
        from airflow.models.dagbag import DagBag

        sync_bag_to_db = None
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    if bag.import_errors:
        raise DemoError(f"The example DAGs do not import: {bag.import_errors}")
    for dag in bag.dags.values():
        for task in dag.tasks:
            # dag.test() would sit out the DAG's five-minute retry delays; a failing demo should fail now.
            task.retries = 0
    DagBundlesManager().sync_bundles_to_db()
    if sync_bag_to_db is not None:
        sync_bag_to_db(bag, "dags-folder", None)
    else:
        bag.sync_to_db("dags-folder", None)
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        # Unpaused as a user would: a paused DAG gets no asset-triggered runs queued.
        session.query(DagModel).filter_by(dag_id=REPORT_DAG).update({"is_paused": False})
    return bag.dags


def queued_asset_events(dag_id: str) -> int:
    """Asset changes queued for ``dag_id`` (what makes the scheduler create its next run)."""
    from airflow.models.asset import AssetDagRunQueue
    from airflow.utils.session import create_session

    with create_session() as session:
        return session.query(AssetDagRunQueue).filter_by(target_dag_id=dag_id).count()


def run(dag: Any, **kwargs: Any) -> Any:
    """``dag.test()``; raises :class:`DemoError` naming the failed tasks unless every task succeeded."""
    dag_run = dag.test(**kwargs)
    states = {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}
    if any(state != "success" for state in states.values()):
        failed = ", ".join(f"{task} {state}" for task, state in sorted(states.items()))
        raise DemoError(f"{dag.dag_id} run {dag_run.run_id} did not succeed ({failed}).")
    return dag_run


def xcom(dag_run: Any, task_id: str) -> Any:
    """What ``task_id`` returned in ``dag_run``."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key="return_value")
            .one()
        )
        return XComModel.deserialize_value(row)


def warehouse_count(
    start: datetime | None = None, end: datetime | None = None, table: str = "bsg_campaigns"
) -> int:
    """Rows in ``table``, all or those created in ``[start, end)``; 0 before the first load."""
    if not WAREHOUSE.exists():
        return 0
    with sqlite3.connect(WAREHOUSE) as conn:
        if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (table,)).fetchone():
            return 0
        if start is None or end is None:
            return conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        # created_at is ISO 8601 in UTC, so text order is time order.
        return conn.execute(
            f"SELECT COUNT(*) FROM {table} WHERE created_at >= ? AND created_at < ?",
            (start.isoformat(), end.isoformat()),
        ).fetchone()[0]


def sample_messages(limit: int = 3) -> list[tuple[Any, ...]]:
    """The last messages loaded, as the warehouse holds them (a phone's hash, never the phone)."""
    with sqlite3.connect(WAREHOUSE) as conn:
        return conn.execute(
            "SELECT id, campaign_id, status, phone_hash, amount_value, amount_currency, delivered_at "
            "FROM bsg_messages ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()


def run_nightly(dag: Any, days: list[datetime], sim: Simulator) -> list[dict[str, Any]]:
    """One run per day, as the scheduler would make them; a row of the summary table per day."""
    rows = []
    for day in days:
        started = time.monotonic()
        # dag.test() infers the data interval from the logical date: the day that ends there.
        dag_run = run(dag, logical_date=day + ONE_DAY)
        extract, load = xcom(dag_run, "extract_campaigns"), xcom(dag_run, "load_campaigns")
        messages, messages_load = xcom(dag_run, "extract_messages"), xcom(dag_run, "load_messages")
        in_warehouse = warehouse_count(day, day + ONE_DAY)
        expected = sim.ground_truth_count(day, day + ONE_DAY)
        if in_warehouse != expected:
            raise DemoError(
                f"The warehouse holds {in_warehouse} campaigns created on {day:%Y-%m-%d}, "
                f"the simulator {expected}."
            )
        messages_in_warehouse = warehouse_count(day, day + ONE_DAY, table="bsg_messages")
        messages_expected = sim.message_ground_truth_count(day, day + ONE_DAY)
        if messages_in_warehouse != messages_expected:
            raise DemoError(
                f"The warehouse holds {messages_in_warehouse} messages created on {day:%Y-%m-%d}, "
                f"the simulator {messages_expected}."
            )
        rows.append(
            {
                "day": day,
                "extract": extract,
                "campaigns": in_warehouse,
                **load,
                "messages": messages_in_warehouse,
                "messages_upserted": messages_load["upserted"],
                "message_rows": messages_load["table_rows"],
            }
        )
        console.say(
            f"  {NIGHTLY_DAG} for {day:%Y-%m-%d}: {extract['records']} campaigns and "
            f"{messages['records']} messages extracted (with the lookback day), "
            f"{load['upserted']} + {messages_load['upserted']} upserted, "
            f"in {time.monotonic() - started:.1f} s"
        )
    return rows


def run_report(dag: Any, last_night: dict[str, Any]) -> dict[str, Any]:
    """
    Run the downstream report the last night's asset event queued; check it read that night's file.

    dag.test() runs no scheduler, so the demo starts the queued run itself, as a manual run that
    reads the asset's latest event.
    """
    if not queued_asset_events(REPORT_DAG):
        raise DemoError(f"The nightly load queued no run of {REPORT_DAG} (no asset event?).")
    report = xcom(run(dag), "report_campaigns")
    if report["path"] != last_night["path"] or report["campaigns"] != last_night["records"]:
        raise DemoError(
            f"{REPORT_DAG} read {report['campaigns']} campaigns from {report['path']}; the last night "
            f"wrote {last_night['records']} to {last_night['path']}."
        )
    by_status = ", ".join(f"{count} {status}" for status, count in report["by_status"].items())
    console.say(
        f"  {REPORT_DAG}, queued by the campaigns asset's event: {report['campaigns']} campaigns "
        f"({by_status}) in {report['path']}"
    )
    return report


def run_gate(dag: Any, sim: Simulator) -> dict[str, Any]:
    """Create a campaign that finishes in seconds and run the gate on it."""
    now = sim.control("GET", "now")["now"]
    campaign = sim.control(
        "POST",
        "campaigns",
        json={"created_at": now, "final_status": "done", "status_step_seconds": GATE_STATUS_STEP_SECONDS},
    )
    console.say(f"  created campaign {campaign['id']} ({campaign['status']}); waiting for it to finish")
    started = time.monotonic()
    dag_run = run(dag, run_conf={"campaign_id": campaign["id"]})
    report = xcom(dag_run, "report_delivery")
    counts = sim.control("GET", "messages/counts", params={"campaign_id": campaign["id"]})
    by_status = report["messages_by_status"]
    if by_status != counts["statistics"] or report["total_messages"] != counts["total_messages"]:
        raise DemoError(
            f"The gate reported {by_status} for campaign {campaign['id']}; the simulator "
            f"counts {counts['statistics']}."
        )
    return {**report, "waited": time.monotonic() - started}


def print_report(
    rows: list[dict[str, Any]], rows_before: int, messages_before: int, gate: dict[str, Any]
) -> None:
    """The summary: what each night loaded, the table's row count, the gate's outcome."""
    say = console.say
    say()
    say(f"Nightly load ({NIGHTLY_DAG}) into {WAREHOUSE.relative_to(ROOT)}, table bsg_campaigns:")
    say("  Day (UTC)   Created that day   Upserted*   New rows   Rows in table")
    for row in rows:
        say(
            f"  {row['day']:%Y-%m-%d}  {row['campaigns']:>16}   {row['upserted']:>9}   {row['new_rows']:>8}"
            f"   {row['table_rows']:>13}"
        )
    say("  * the day and the day before it (lookback), whose statuses and statistics are refreshed")
    rows_after = rows[-1]["table_rows"]
    if rows_after == rows_before:
        say(f"  {rows_after} rows before this demo and after it: the load upserts by campaign id.")
    else:
        say(f"  {rows_before} rows before this demo, {rows_after} after; run it again: the count stays.")
    say("  Each day holds exactly the simulator's SMS campaigns created that day.")
    say()
    say("Table bsg_messages (phones as their keyed HMAC-SHA256, texts not loaded):")
    say("  Day (UTC)   Created that day   Upserted*   Rows in table")
    for row in rows:
        say(
            f"  {row['day']:%Y-%m-%d}  {row['messages']:>16}   {row['messages_upserted']:>9}"
            f"   {row['message_rows']:>13}"
        )
    messages_after = rows[-1]["message_rows"]
    if messages_after == messages_before:
        say(f"  {messages_after} rows before this demo and after it: the load upserts by message id.")
    else:
        say(
            f"  {messages_before} rows before this demo, {messages_after} after; "
            "run it again: the count stays."
        )
    say("  Each day holds exactly the simulator's messages created that day. The last three loaded:")
    say("  id          campaign   status        phone_hash          amount           delivered_at")
    for message_id, campaign_id, status, phone_hash, value, currency, delivered_at in sample_messages():
        say(
            f"  {message_id:<11} {campaign_id:<10} {status:<13} {phone_hash[:16]}... "
            f"{value} {currency}  {delivered_at or '-'}"
        )
    say()
    rate = f", {gate['delivery_rate']:.0%}" if gate["delivery_rate"] is not None else ""
    say(
        f"Gate ({GATE_DAG}): campaign {gate['campaign_id']} was '{gate['status']}' after "
        f"{gate['waited']:.1f} s, so extract_messages and report_delivery ran "
        f"({gate['sent']} sent, {gate['delivered']} delivered{rate})."
    )
    by_status = ", ".join(
        f"{count} {status}" for status, count in gate["messages_by_status"].items() if count
    )
    say(
        f"  Delivery report (GET /api/campaigns/{gate['campaign_id']}/detail): {gate['total_messages']} "
        f"messages to {gate['total_phones']} phones (by latest status: {by_status}), {gate['total_price']} "
        f"{gate['currency']}; {gate['messages_extracted']} messages extracted to {gate['messages_path']}."
    )
    say(
        "  ('sent' above counts every message that left BSG; a message whose latest status is 'sent' "
        "has no delivery report yet.)"
    )


def main() -> int:
    started = time.monotonic()
    # Unwind on SIGTERM too (a CI timeout, kill), so the simulator is stopped.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    DEMO_DIR.mkdir(exist_ok=True)
    AIRFLOW_LOG.write_text("")
    configure_airflow()
    # Midnight UTC: the days before it are complete, and the simulator's campaigns stay the same all day.
    today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [today - ONE_DAY * n for n in range(DAYS, 0, -1)]
    rows_before = warehouse_count()
    messages_before = warehouse_count(table="bsg_messages")
    console.say("BSG provider demo: a real Airflow (SQLite metadata DB in .demo/airflow) and the simulator")
    try:
        with console.airflow_output_to(AIRFLOW_LOG):
            import airflow

            console.say(f"- Airflow {airflow.__version__}: migrating the metadata database")
            prepare_metadata_db()
            dags = parse_dags()
            with Simulator(now=today) as sim:
                console.say(f"- simulator listening on {sim.url} (log: {SIMULATOR_LOG.relative_to(ROOT)})")
                os.environ["AIRFLOW_CONN_BSG_DEFAULT"] = json.dumps(
                    {
                        "conn_type": "bsg",
                        "host": sim.url,
                        "password": sim.api_key,
                        "extra": {"timeout": 10, "max_retries": 3, "retry_max_wait": 2},
                    }
                )
                rows = run_nightly(dags[NIGHTLY_DAG], days, sim)
                run_report(dags[REPORT_DAG], rows[-1]["extract"])
                gate = run_gate(dags[GATE_DAG], sim)
            console.say("- simulator stopped")
    except Exception as exc:
        reason = str(exc) if isinstance(exc, DemoError) else traceback.format_exc()
        console.say(f"\nDEMO FAILED: {reason}")
        console.say(f"Airflow's output is in {AIRFLOW_LOG.relative_to(ROOT)}; its last lines:")
        for line in AIRFLOW_LOG.read_text(errors="replace").splitlines()[-25:]:
            console.say(f"  | {line}")
        return 1
    print_report(rows, rows_before, messages_before, gate)
    console.say(
        f"\nDone in {time.monotonic() - started:.0f} s. Airflow's output: {AIRFLOW_LOG.relative_to(ROOT)}."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
