"""
The system test (``make system-test``; ``scripts/system_test.sh`` prepares the environment and runs this).

The example DAGs in ``dags_examples/``, unchanged, on a real distributed Airflow: PostgreSQL (the
metadata DB and a ``warehouse`` database), Redis as the Celery broker, moto's S3 server, the BSG One
API simulator, and Airflow's api-server, scheduler, dag-processor, triggerer and two Celery workers,
each its own process on 127.0.0.1, in a temporary directory removed at the end. The DAGs are
configured only through connections, Variables and pools, as a user would configure them.

Scenarios (one row each in the closing table): the connection test with the right and a wrong key;
unpausing ``bsg_campaigns_nightly``, whose run of yesterday the scheduler starts at once and whose
campaigns asset event starts ``bsg_campaigns_report`` (unpaused before), which reads the file the
event names; a 7-day backfill of the days before through the ``bsg_api`` pool into S3 and
PostgreSQL, whose asset events start the report too; the deferrable gate across a SIGKILLed
triggerer, then the campaign's messages and delivery report;
a Celery worker SIGKILLed mid-extraction; no secret (API key, HMAC key, token) in the logs, the
metadata DB or the bucket. Every wait is on a real state (a port, a health endpoint, a row, what
the simulator saw), bounded by a generous timeout. Exit status 0 when every row passed.

Every process started here runs in its own session and is stopped at the end (also on failure or
SIGTERM) through its PID: SIGTERM to it and its descendants, SIGKILL for any left after a grace time.
``--keep`` leaves the temporary directory in place for a post-mortem.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import boto3
import psutil
import psycopg2
import requests

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AIRFLOW = str(BIN / "airflow")
DAGS_FOLDER = ROOT / "dags_examples"

NIGHTLY_DAG = "bsg_campaigns_nightly"
GATE_DAG = "bsg_campaign_gate"
REPORT_DAG = "bsg_campaigns_report"
#: The asset extract_campaigns updates (its default asset) and bsg_campaigns_report is scheduled on.
CAMPAIGNS_ASSET = "bsg://bsg_default/campaigns"
WORKERS = ("worker-1", "worker-2")
#: Seven days: two runs at a time (--max-active-runs 2), each with two extracts in the pool of 2,
#: keep the pool the limit and both workers busy, and give every run's window edge a neighbour on
#: each side; 14 days proved nothing more and took 170-210 s, 7 days 62 s (2026-12, 2 busy cores).
BACKFILL_DAYS = 7
BUCKET = "bsg-system"
S3_CONN_ID = "bsg_s3"
#: The simulator's data set: the same seed and --now give the same campaigns.
SIMULATOR_SEED = 16
SIMULATOR_CAMPAIGNS = 3000
SIMULATOR_PERIOD_DAYS = 30
#: Messages per generated campaign: about 4,000 a run with the lookback day, 28,000 for the backfill.
SIMULATOR_MESSAGES_PER_CAMPAIGN = 20
#: How long the simulator holds the list request during which a worker is killed.
HELD_REQUEST_SECONDS = 120
PG_USER = "postgres"
T = TypeVar("T")


class SystemTestError(Exception):
    """A step failed; the message says which and why."""


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """Call ``check`` until it returns something truthy; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except Exception as exc:  # not ready yet: a refused connection, a missing table
            last_error = exc
        if time.monotonic() > deadline:
            detail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
            raise SystemTestError(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


class Processes:
    """The processes this test started, by name; each in its own session, logging to a file."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.running: dict[str, subprocess.Popen[bytes]] = {}
        self.started: list[int] = []

    def start(
        self, name: str, argv: list[str], env: dict[str, str], user: str | None = None
    ) -> subprocess.Popen[bytes]:
        with (self.log_dir / f"{name}.log").open("ab") as out:
            process = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.log_dir,
                start_new_session=True,
                **_as_user(user),
            )
        self.running[name] = process
        self.started.append(process.pid)
        return process

    def kill(self, name: str) -> int:
        """SIGKILL ``name`` and everything it started, at once (a machine dying); return its PID."""
        process = self.running.pop(name)
        _signal_tree(process.pid, signal.SIGKILL)
        process.wait(30)
        return process.pid

    def stop_all(self, grace: float = 20.0) -> None:
        """SIGTERM every process still running (newest first) and its descendants; SIGKILL leftovers."""
        names = list(self.running)[::-1]
        trees = {name: _tree(self.running[name].pid) for name in names}
        for name in names:
            _signal_tree(self.running[name].pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for name in names:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.running[name].wait(max(0.1, deadline - time.monotonic()))
        for name in names:
            for proc in trees[name]:
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
            try:
                self.running[name].kill()
                self.running[name].wait(10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        self.running.clear()

    def survivors(self) -> list[str]:
        """Processes still alive in the sessions this test started (none after :meth:`stop_all`)."""
        ours = set(self.started)
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "status"]):
            try:
                if proc.info["status"] != psutil.STATUS_ZOMBIE and (
                    proc.pid in ours or os.getsid(proc.pid) in ours
                ):
                    found.append(f"{proc.pid} {' '.join(proc.info['cmdline'] or [])[:80]}")
            except (psutil.Error, OSError):
                continue
        return found


def _as_user(user: str | None) -> dict[str, Any]:
    return {} if user is None else {"user": user, "group": user, "extra_groups": []}


def _tree(pid: int) -> list[psutil.Process]:
    try:
        parent = psutil.Process(pid)
        return [parent, *parent.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _signal_tree(pid: int, signum: int) -> None:
    for proc in _tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signum)


@dataclass
class Row:
    scenario: str
    expected: str
    observed: str
    seconds: float
    passed: bool


class Report:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, scenario: str, expected: str, run: Callable[[], tuple[bool, str]]) -> bool:
        started = time.monotonic()
        log(f"scenario: {scenario}")
        try:
            passed, observed = run()
        except Exception as exc:
            passed = False
            observed = str(exc) if isinstance(exc, SystemTestError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, SystemTestError):
                traceback.print_exc()
        row = Row(scenario, expected, observed, time.monotonic() - started, passed)
        self.rows.append(row)
        log(f"  {'PASS' if passed else 'FAIL'}: {observed}")
        return passed

    def print(self) -> None:
        headers = ("scenario", "expected", "observed", "time")
        lines = [
            (r.scenario, r.expected, ("" if r.passed else "FAILED: ") + r.observed, f"{r.seconds:.0f} s")
            for r in self.rows
        ]
        print()
        print("| " + " | ".join(headers) + " |")
        print("|" + "|".join("---" for _ in headers) + "|")
        for line in lines:
            print("| " + " | ".join(" ".join(cell.replace("|", "/").split()) for cell in line) + " |")
        print()

    @property
    def counts(self) -> tuple[int, int]:
        passed = sum(row.passed for row in self.rows)
        return passed, len(self.rows) - passed


class Cluster:
    """Every service of the deployment, started in ``base`` and stopped by :meth:`stop`."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.logs = base / "logs"
        self.logs.mkdir()
        self.procs = Processes(self.logs)
        self.today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        self.api_key = "test_canary_" + secrets.token_hex(12)
        # The phones' HMAC key of the bsg_pii_key connection, a canary too.
        self.pii_key = "pii_canary_" + secrets.token_hex(12)
        self.pg_port, self.redis_port, self.s3_port, self.api_port = (free_port() for _ in range(4))
        self.sim_url = ""
        self.env: dict[str, str] = {}

    # --- services -------------------------------------------------------------------------------
    def start_postgres(self) -> None:
        bindir = _postgres_bindir()
        data = self.base / "pgdata"
        data.mkdir()
        shutil.chown(data, PG_USER, PG_USER)
        data.chmod(0o700)
        subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                PG_USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            stdout=(self.logs / "initdb.log").open("ab"),
            stderr=subprocess.STDOUT,
            cwd=data,
            **_as_user(PG_USER),
        )
        self.procs.start(
            "postgres",
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.pg_port),
                "-k",
                str(data),
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ],
            os.environ.copy(),
            user=PG_USER,
        )

        def ready() -> bool:
            with closing_pg(self.pg_port, "postgres") as conn:
                conn.autocommit = True
                with conn.cursor() as cursor:
                    for database in ("airflow", "warehouse"):
                        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
                        if cursor.fetchone() is None:
                            cursor.execute(f"CREATE DATABASE {database}")
            return True

        wait_for("PostgreSQL to accept connections", ready, 60)

    def start_redis(self) -> None:
        data = self.base / "redis"
        data.mkdir()
        self.procs.start(
            "redis",
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data),
            ],
            os.environ.copy(),
        )

        def ping() -> bool:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")

        wait_for("Redis to answer PING", ping, 30)

    def start_s3(self) -> None:
        self.procs.start(
            "moto-s3",
            [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)],
            os.environ.copy(),
        )
        wait_for("moto's S3 server", lambda: requests.get(self.s3_url, timeout=2).ok, 60)
        self.s3().create_bucket(Bucket=BUCKET)

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
        )

    def start_simulator(self) -> None:
        name = "simulator"
        process = self.procs.start(
            name,
            [
                sys.executable,
                "-m",
                "bsg_provider.simulator",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--now",
                self.today.isoformat(),
                "--seed",
                str(SIMULATOR_SEED),
                "--campaigns",
                str(SIMULATOR_CAMPAIGNS),
                "--period-days",
                str(SIMULATOR_PERIOD_DAYS),
                "--messages-per-campaign",
                str(SIMULATOR_MESSAGES_PER_CAMPAIGN),
                "--api-key",
                self.api_key,
                # Campaigns added by the test move only when the test moves them.
                "--status-step-seconds",
                "100000",
            ],
            {**os.environ, "PYTHONPATH": str(ROOT)},
        )
        banner = self.logs / f"{name}.log"

        def listening() -> str | None:
            if process.poll() is not None:
                raise SystemTestError(f"the simulator exited: {banner.read_text()[-500:]}")
            for line in banner.read_text().splitlines():
                if line.startswith("BSG One API simulator listening on "):
                    return line.rsplit(" ", 1)[1]
            return None

        self.sim_url = wait_for("the simulator's banner", listening, 30)
        wait_for("the simulator", lambda: requests.get(f"{self.sim_url}/_simulator/now", timeout=2).ok, 30)

    def control(self, method: str, path: str, **kwargs: Any) -> Any:
        response = requests.request(method, f"{self.sim_url}/_simulator/{path}", timeout=10, **kwargs)
        if not response.ok:
            raise SystemTestError(f"the simulator refused {method} /_simulator/{path}: {response.text}")
        return response.json()

    def ground_truth(self, start: datetime | str, end: datetime | str) -> set[int]:
        params = {"start": _iso(start), "end": _iso(end), "type": "sms"}
        return set(self.control("GET", "ground-truth", params=params)["ids"])

    def message_ground_truth(self, start: datetime | str, end: datetime | str) -> set[int]:
        params = {"start": _iso(start), "end": _iso(end)}
        return set(self.control("GET", "messages/ground-truth", params=params)["ids"])

    # --- Airflow --------------------------------------------------------------------------------
    def configure_airflow(self) -> None:
        home = self.base / "airflow"
        settings_dir = self.base / "pythonpath"
        home.mkdir()
        settings_dir.mkdir()
        # Deployment-level settings a platform team owns, outside the DAG files (Airflow imports
        # airflow_local_settings from the path): each worker's hostname (two workers share this
        # machine) and a cluster policy that shortens the DAGs' five-minute retry delay, so the
        # retry after a killed worker happens within the test's budget.
        (settings_dir / "airflow_local_settings.py").write_text(
            '"""Written by scripts/system_test.py."""\n'
            "import os\nimport socket\nfrom datetime import timedelta\n\n\n"
            "def worker_hostname():\n"
            '    return os.environ.get("BSG_SYSTEM_HOSTNAME") or socket.getfqdn()\n\n\n'
            "def task_policy(task):\n"
            "    task.retry_delay = timedelta(seconds=2)\n"
        )
        pg = f"postgres@127.0.0.1:{self.pg_port}/airflow"
        self.env = {
            **os.environ,
            "PYTHONPATH": str(settings_dir),
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "airflow_local_settings.worker_hostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{self.api_port}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{pg}",
            "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
            "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{pg}",
            # One task at a time per worker: two extracts at once (the pool's 2) land on both workers.
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "1",
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{self.api_port}",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # [scheduler] use_job_schedule stays on (the default): with it off the scheduler skips
            # _create_dagruns_for_dags, which creates the asset-triggered runs too, and the report
            # never runs. The DAGs start paused (the default); the backfill covers the days before
            # the scheduled run's.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
            # The gate's poll interval (read by the DAG processor when it parses the DAG).
            "BSG_GATE_POKE_SECONDS": "2",
        }

    def airflow(
        self, *args: str, timeout: float = 240, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run one ``airflow`` CLI command; its output goes to logs/cli.log and is returned."""
        result = subprocess.run(
            [AIRFLOW, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.logs,
            start_new_session=True,
        )
        with (self.logs / "cli.log").open("a") as out:
            out.write(
                f"$ airflow {' '.join(args)}\n{result.stdout}{result.stderr}\n[exit {result.returncode}]\n"
            )
        if check and result.returncode != 0:
            raise SystemTestError(
                f"airflow {' '.join(args[:3])} exited {result.returncode}: {result.stderr.strip()[-400:]}"
            )
        return result

    def airflow_parallel(self, *commands: tuple[str, ...]) -> None:
        """Several independent CLI commands at once (each is mostly Python start-up time)."""
        errors: list[BaseException] = []

        def run(args: tuple[str, ...]) -> None:
            try:
                self.airflow(*args)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=run, args=(args,)) for args in commands]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]

    def prepare_airflow(self) -> None:
        self.airflow("db", "migrate", timeout=400)
        connections = {
            "bsg_default": {
                "conn_type": "bsg",
                "host": self.sim_url,
                "password": self.api_key,
                "extra": json.dumps({"timeout": 10, "max_retries": 3, "retry_max_wait": 2}),
            },
            # Any type will do: the messages operator reads only the password, the HMAC key.
            "bsg_pii_key": {"conn_type": "generic", "password": self.pii_key},
            "bsg_wrong_key": {
                "conn_type": "bsg",
                "host": self.sim_url,
                "password": "test_wrong_" + secrets.token_hex(8),
            },
            "bsg_warehouse": {
                "conn_type": "postgres",
                "host": "127.0.0.1",
                "port": self.pg_port,
                "schema": "warehouse",
                "login": PG_USER,
            },
            S3_CONN_ID: {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": json.dumps({"endpoint_url": self.s3_url, "region_name": "us-east-1"}),
            },
        }
        # The file holds the key: it lives only as long as the import.
        path = self.base / "connections.json"
        path.write_text(json.dumps(connections))
        path.chmod(0o600)
        try:
            self.airflow_parallel(
                ("connections", "import", str(path)),
                ("variables", "set", "bsg_data_url", f"s3://{S3_CONN_ID}@{BUCKET}/bsg"),
                ("pools", "set", "bsg_api", "2", "BSG One API calls"),
            )
        finally:
            path.unlink()

    def start_airflow(self) -> None:
        self.procs.start(
            "api-server",
            [AIRFLOW, "api-server", "--host", "127.0.0.1", "--port", str(self.api_port), "--workers", "1"],
            self.env,
        )
        self.procs.start("scheduler", [AIRFLOW, "scheduler"], self.env)
        self.procs.start("dag-processor", [AIRFLOW, "dag-processor"], self.env)
        self.start_triggerer("triggerer")
        for worker in WORKERS:
            self.procs.start(
                worker,
                [
                    AIRFLOW,
                    "celery",
                    "worker",
                    "--celery-hostname",
                    f"{worker}@127.0.0.1",
                    "--concurrency",
                    "1",
                    "--skip-serve-logs",
                ],
                {**self.env, "BSG_SYSTEM_HOSTNAME": worker},
            )
        wait_for(
            "the api-server, scheduler, dag-processor and triggerer to report healthy", self.healthy, 240, 2
        )
        wait_for("both Celery workers to answer a ping", self.workers_answer, 240, 2)
        wait_for("the DAG processor to register the example DAGs", self.dags_registered, 240, 2)
        # As a user would (docs/getting-started.md): the report before the nightly load, whose
        # unpausing is a scenario; a paused DAG gets no asset-triggered runs and its runs do not start.
        self.airflow_parallel(("dags", "unpause", REPORT_DAG), ("dags", "unpause", GATE_DAG))

    def start_triggerer(self, name: str) -> None:
        self.procs.start(name, [AIRFLOW, "triggerer", "--skip-serve-logs"], self.env)

    def healthy(self) -> bool:
        health = requests.get(f"http://127.0.0.1:{self.api_port}/api/v2/monitor/health", timeout=5).json()
        return all(
            health.get(part, {}).get("status") == "healthy"
            for part in ("metadatabase", "scheduler", "triggerer", "dag_processor")
        )

    def workers_answer(self) -> bool:
        from celery import Celery

        app = Celery(broker=self.env["AIRFLOW__CELERY__BROKER_URL"])
        try:
            replies = app.control.ping(timeout=2) or []
        finally:
            app.close()
        names = {name for reply in replies for name in reply}
        return all(f"{worker}@127.0.0.1" in names for worker in WORKERS)

    def dags_registered(self) -> bool:
        rows = self.query(
            "SELECT dag_id FROM serialized_dag WHERE dag_id IN (%s, %s, %s)",
            (NIGHTLY_DAG, GATE_DAG, REPORT_DAG),
        )
        return len({row[0] for row in rows}) == 3

    def query(
        self, sql: str, params: tuple[Any, ...] = (), database: str = "airflow"
    ) -> list[tuple[Any, ...]]:
        with closing_pg(self.pg_port, database) as conn, conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()

    def stop(self) -> None:
        self.procs.stop_all()


class closing_pg:
    """A psycopg2 connection to our cluster, closed on exit."""

    def __init__(self, port: int, database: str) -> None:
        self.conn = psycopg2.connect(
            host="127.0.0.1", port=port, user=PG_USER, dbname=database, connect_timeout=5
        )

    def __enter__(self) -> Any:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _postgres_bindir() -> Path:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not candidates:
        raise SystemTestError(
            "no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)"
        )
    return candidates[-1].parent


def _iso(value: datetime | str) -> str:
    return value.isoformat() if isinstance(value, datetime) else value


# --- scenarios ------------------------------------------------------------------------------------


def scenario_connection_test(c: Cluster) -> tuple[bool, str]:
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    def run(conn_id: str) -> None:
        results[conn_id] = c.airflow("connections", "test", conn_id, check=False)

    threads = [threading.Thread(target=run, args=(conn_id,)) for conn_id in ("bsg_default", "bsg_wrong_key")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    good, bad = results["bsg_default"], results["bsg_wrong_key"]
    good_ok = good.returncode == 0 and "Connection success!" in good.stdout
    bad_text = bad.stdout + bad.stderr
    bad_ok = bad.returncode != 0 and "check the API key in the connection's password field" in bad_text
    bad_line = next(
        (line.strip() for line in bad_text.splitlines() if "refused" in line), bad_text.strip()[-200:]
    )
    return good_ok and bad_ok, (
        f"right key: exit {good.returncode}{' success' if good_ok else ''}; "
        f"wrong key: exit {bad.returncode}, {bad_line!r}"
    )


def dag_runs(c: Cluster, dag_id: str, run_ids: list[str] | None = None) -> list[tuple[Any, ...]]:
    sql = "SELECT run_id, state, data_interval_start, data_interval_end FROM dag_run WHERE dag_id = %s"
    params: tuple[Any, ...] = (dag_id,)
    if run_ids is not None:
        sql += " AND run_id = ANY(%s)"
        params += (run_ids,)
    return c.query(sql + " ORDER BY data_interval_start", params)


def backfill_runs(c: Cluster, backfill_id: int) -> list[tuple[Any, ...]]:
    return c.query(
        "SELECT run_id, state, data_interval_start, data_interval_end FROM dag_run "
        "WHERE dag_id = %s AND backfill_id = %s ORDER BY data_interval_start",
        (NIGHTLY_DAG, backfill_id),
    )


def create_backfill(c: Cluster, first: datetime, last: datetime) -> int:
    before = {row[0] for row in c.query("SELECT id FROM backfill")}
    c.airflow(
        "backfill",
        "create",
        "--dag-id",
        NIGHTLY_DAG,
        "--from-date",
        first.isoformat(),
        "--to-date",
        last.isoformat(),
        "--max-active-runs",
        "2",
    )
    created = [row[0] for row in c.query("SELECT id FROM backfill") if row[0] not in before]
    if len(created) != 1:
        raise SystemTestError(f"expected one new backfill, found {created}")
    return int(created[0])


def wait_runs_finished(
    c: Cluster, backfill_id: int, expected_runs: int, timeout: float
) -> list[tuple[Any, ...]]:
    def finished() -> list[tuple[Any, ...]] | None:
        runs = backfill_runs(c, backfill_id)
        if len(runs) == expected_runs and all(run[1] in ("success", "failed") for run in runs):
            return runs
        return None

    return wait_for(f"{expected_runs} backfill runs to finish", finished, timeout, 2)


def xcom_values(c: Cluster, task_id: str, run_ids: list[str], dag_id: str = NIGHTLY_DAG) -> dict[str, Any]:
    rows = c.query(
        "SELECT run_id, value FROM xcom WHERE dag_id = %s AND task_id = %s AND key = 'return_value' "
        "AND run_id = ANY(%s)",
        (dag_id, task_id, run_ids),
    )
    return {run_id: _json(value) for run_id, value in rows}


def _json(value: Any) -> Any:
    return value if isinstance(value, (dict, list)) else json.loads(value)


def nightly_run_ids(c: Cluster) -> list[str]:
    return [row[0] for row in c.query("SELECT run_id FROM dag_run WHERE dag_id = %s", (NIGHTLY_DAG,))]


@dataclass
class AssetEvent:
    id: int
    source_run_id: str
    timestamp: datetime
    extra: dict[str, Any]


def campaigns_events(c: Cluster) -> list[AssetEvent]:
    """The nightly DAG's events of the campaigns asset, oldest first."""
    rows = c.query(
        "SELECT e.id, e.source_run_id, e.timestamp, e.extra FROM asset_event e "
        "JOIN asset a ON a.id = e.asset_id WHERE a.uri = %s AND e.source_dag_id = %s "
        "ORDER BY e.timestamp, e.id",
        (CAMPAIGNS_ASSET, NIGHTLY_DAG),
    )
    return [AssetEvent(row[0], row[1], row[2], _json(row[3])) for row in rows]


@dataclass
class ReportRun:
    run_id: str
    state: str
    run_type: str
    event_ids: list[int]


def report_runs(c: Cluster) -> dict[str, ReportRun]:
    """The runs of the report DAG, by run id, with the asset events each consumed."""
    rows = c.query(
        "SELECT dr.run_id, dr.state, dr.run_type, dae.event_id FROM dag_run dr "
        "LEFT JOIN dagrun_asset_event dae ON dae.dag_run_id = dr.id WHERE dr.dag_id = %s "
        "ORDER BY dr.id, dae.event_id",
        (REPORT_DAG,),
    )
    runs: dict[str, ReportRun] = {}
    for run_id, state, run_type, event_id in rows:
        run = runs.setdefault(run_id, ReportRun(run_id, state, run_type, []))
        if event_id is not None:
            run.event_ids.append(event_id)
    return runs


def check_report(
    c: Cluster, run: ReportRun, events: dict[int, AssetEvent], extracts: dict[str, Any]
) -> list[str]:
    """
    What is wrong with one finished report run: it must be asset-triggered, succeed and report the
    file its newest event names, as extract_campaigns' XCom summary of that event's run says.
    """
    if run.state != "success" or run.run_type != "asset_triggered":
        return [f"{run.run_id} {run.run_type} {run.state}"]
    consumed = [events[event_id] for event_id in run.event_ids if event_id in events]
    if not consumed:
        return [f"{run.run_id} consumed no event of the nightly DAG"]
    newest = max(consumed, key=lambda event: (event.timestamp, event.id))
    summary = extracts.get(newest.source_run_id) or {}
    report = xcom_values(c, "report_campaigns", [run.run_id], dag_id=REPORT_DAG).get(run.run_id) or {}
    named = (newest.extra.get("path"), newest.extra.get("records"))
    if not (
        named
        == (summary.get("path"), summary.get("records"))
        == (report.get("path"), report.get("campaigns"))
    ):
        return [
            f"{run.run_id}: event {named}, extract {(summary.get('path'), summary.get('records'))}, "
            f"report {(report.get('path'), report.get('campaigns'))}"
        ]
    return []


def bucket_keys(c: Cluster) -> list[str]:
    keys: list[str] = []
    for page in c.s3().get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


def s3_ids(c: Cluster, url: str) -> list[int] | None:
    """The campaign ids of the JSON Lines file at ``url``, in file order; None if there is none."""
    key = url.split(f"{BUCKET}/", 1)[1]
    try:
        body = c.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    except c.s3().exceptions.NoSuchKey:
        return None
    return [json.loads(line)["id"] for line in body.splitlines() if line.strip()]


def warehouse_ids(c: Cluster, table: str = "bsg_campaigns") -> list[int]:
    """Every id in a warehouse table, duplicates kept; none before the first load created it."""
    if not c.query("SELECT 1 FROM pg_tables WHERE tablename = %s", (table,), database="warehouse"):
        return []
    return [row[0] for row in c.query(f"SELECT id FROM {table}", database="warehouse")]


def column_types(c: Cluster, table: str) -> dict[str, str]:
    rows = c.query(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = %s",
        (table,),
        database="warehouse",
    )
    return dict(rows)


def max_overlap(intervals: list[tuple[datetime, datetime]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def scenario_unpause_report(c: Cluster) -> tuple[bool, str]:
    """
    Unpausing the nightly DAG starts its run of the latest complete day at once; that run's
    campaigns asset event makes the scheduler start the report, which reads the file it names.
    """
    unpaused_at = datetime.now(timezone.utc)
    c.airflow("dags", "unpause", NIGHTLY_DAG)

    def scheduled_run() -> tuple[Any, ...] | None:
        rows = c.query(
            "SELECT run_id, state, data_interval_start, data_interval_end, queued_at FROM dag_run "
            "WHERE dag_id = %s AND run_type = 'scheduled'",
            (NIGHTLY_DAG,),
        )
        return rows[0] if len(rows) == 1 and rows[0][1] in ("success", "failed") else None

    run_id, state, start, end, queued_at = wait_for(
        f"the scheduler's run of {NIGHTLY_DAG} to finish", scheduled_run, 420, 2
    )
    failures = []
    now = datetime.now(timezone.utc)
    if state != "success":
        failures.append(f"the nightly run {state}")
    if end - start != timedelta(days=1) or not end <= now < end + timedelta(days=1):
        failures.append(f"its interval [{start}, {end}) is not the latest complete day")
    summary = xcom_values(c, "extract_campaigns", [run_id]).get(run_id) or {}
    events = [event for event in campaigns_events(c) if event.source_run_id == run_id]
    if len(events) != 1:
        raise SystemTestError(f"{len(events)} events of {CAMPAIGNS_ASSET} from {run_id}, expected one")
    event = events[0]

    def report_run() -> ReportRun | None:
        return next(
            (
                run
                for run in report_runs(c).values()
                if event.id in run.event_ids and run.state in ("success", "failed")
            ),
            None,
        )

    report = wait_for(f"a finished run of {REPORT_DAG} started by that event", report_run, 300, 2)
    wrong_report = check_report(c, report, {event.id: event}, {run_id: summary})
    failures += wrong_report
    lines = len(s3_ids(c, summary["path"]) or []) if summary else 0
    if lines != summary.get("records"):
        failures.append(f"the file holds {lines} campaigns, the extract wrote {summary.get('records')}")
    if event.extra.get("data_interval_start") != summary.get("interval_start"):
        failures.append(f"event interval {event.extra} vs extract {summary}")
    delay = f"{(queued_at - unpaused_at).total_seconds():.0f} s" if queued_at else "?"
    observed = (
        f"the scheduler queued the run of [{start:%Y-%m-%d}, {end:%Y-%m-%d}) {delay} after the unpause: "
        f"{state}; its event named {event.extra.get('path')} ({event.extra.get('records')} records); "
        f"{REPORT_DAG}: {report.run_type} run {report.state}, "
        f"{'read that file (path, records = the XCom summary)' if not wrong_report else 'WRONG'}"
    )
    return not failures, observed + ("; " + "; ".join(failures) if failures else "")


def scenario_backfill(c: Cluster) -> tuple[bool, str]:
    # The days before the scheduled run's: a backfill skips a day that already has a run.
    last = c.today - timedelta(days=2)
    first = c.today - timedelta(days=BACKFILL_DAYS + 1)
    backfill_id = create_backfill(c, first, last)
    runs = wait_runs_finished(c, backfill_id, BACKFILL_DAYS, 420)
    run_ids = [run[0] for run in runs]
    failures = []
    succeeded = sum(run[1] == "success" for run in runs)
    if succeeded != BACKFILL_DAYS:
        failures.append(f"{BACKFILL_DAYS - succeeded} run(s) failed")
    # The warehouse holds every nightly run's load: the backfill's and the scheduled run's.
    wait_for(
        f"every run of {NIGHTLY_DAG} to finish",
        lambda: (
            not c.query(
                "SELECT 1 FROM dag_run WHERE dag_id = %s AND state NOT IN ('success', 'failed')",
                (NIGHTLY_DAG,),
            )
        ),
        300,
        2,
    )
    all_runs = nightly_run_ids(c)
    extracts = xcom_values(c, "extract_campaigns", all_runs)
    expected: set[int] = set()
    for summary in extracts.values():
        expected |= c.ground_truth(summary["interval_start"], summary["interval_end"])
    ids = warehouse_ids(c)
    if set(ids) != expected or len(ids) != len(set(ids)):
        failures.append(
            f"warehouse {len(ids)} rows ({len(set(ids))} distinct) vs ground truth {len(expected)}: "
            f"{len(set(ids) - expected)} extra, {len(expected - set(ids))} missing"
        )
    message_extracts = xcom_values(c, "extract_messages", all_runs)
    expected_messages: set[int] = set()
    for summary in message_extracts.values():
        expected_messages |= c.message_ground_truth(summary["interval_start"], summary["interval_end"])
    message_ids = warehouse_ids(c, "bsg_messages")
    if set(message_ids) != expected_messages or len(message_ids) != len(set(message_ids)) or not message_ids:
        failures.append(
            f"bsg_messages {len(message_ids)} rows ({len(set(message_ids))} distinct) vs ground truth "
            f"{len(expected_messages)}: {len(set(message_ids) - expected_messages)} extra, "
            f"{len(expected_messages - set(message_ids))} missing"
        )
    types = column_types(c, "bsg_messages")
    if types.get("amount_value") != "numeric" or types.get("phone_hash") != "text" or "phone" in types:
        failures.append(f"bsg_messages columns {types}")
    tis = c.query(
        "SELECT hostname, start_date, end_date, state FROM task_instance WHERE dag_id = %s AND task_id "
        "IN ('extract_campaigns', 'extract_messages') AND run_id = ANY(%s)",
        (NIGHTLY_DAG, run_ids),
    )
    hosts = sorted({ti[0] for ti in tis})
    if hosts != sorted(WORKERS):
        failures.append(f"extracts ran on {hosts}")
    overlap = max_overlap([(ti[1], ti[2]) for ti in tis if ti[1] and ti[2]])
    if overlap > 2:
        failures.append(f"{overlap} extracts ran at once, more than the pool's 2")
    keys = bucket_keys(c)
    temporaries = [key for key in keys if ".tmp-" in key]
    prefixes = ("bsg/campaigns/", "bsg/messages/")
    files = {key for key in keys if key.startswith(prefixes) and ".tmp-" not in key}
    written = {
        summary["path"].split(f"{BUCKET}/", 1)[1]
        for summary in (*extracts.values(), *message_extracts.values())
    }
    backfill_files = sum(run_id in run_ids for run_id in (*extracts, *message_extracts))
    if files != written or backfill_files != 2 * BACKFILL_DAYS or temporaries:
        failures.append(
            f"{len(files)} files in s3://{BUCKET} for {len(written)} the extracts wrote "
            f"({backfill_files} by the backfill), {len(temporaries)} temporary objects"
        )
    observed = (
        f"{succeeded}/{len(runs)} runs succeeded; {len(set(ids))} campaign ids in PostgreSQL "
        f"{'=' if set(ids) == expected else 'NOT EQUAL to'} ground truth {len(expected)}; "
        f"{len(set(message_ids))} message ids "
        f"{'=' if set(message_ids) == expected_messages else 'NOT EQUAL to'} ground truth "
        f"{len(expected_messages)}, amount_value {types.get('amount_value')}; "
        f"extracts on {', '.join(hosts)}; at most {overlap} at once; "
        f"{len(files)} files, {len(temporaries)} temporaries in S3 (the {len(all_runs)} nightly runs' "
        f"loads: the backfill's and the scheduled one)"
    )
    return not failures, observed + ("; " + "; ".join(failures) if failures else "")


def scenario_backfill_reports(c: Cluster) -> tuple[bool, str]:
    """Every campaigns event of the nightly runs, the backfill's included, starts the report."""
    events = {event.id: event for event in campaigns_events(c)}
    backfill_runs_ids = {
        row[0]
        for row in c.query(
            "SELECT run_id FROM dag_run WHERE dag_id = %s AND run_type = 'backfill'", (NIGHTLY_DAG,)
        )
    }
    from_backfill = sum(event.source_run_id in backfill_runs_ids for event in events.values())

    def all_consumed() -> dict[str, ReportRun] | None:
        runs = {run_id: run for run_id, run in report_runs(c).items() if run.state in ("success", "failed")}
        consumed = {event_id for run in runs.values() for event_id in run.event_ids}
        return runs if set(events) <= consumed else None

    runs = wait_for(
        f"finished runs of {REPORT_DAG} to consume all {len(events)} events", all_consumed, 300, 2
    )
    extracts = xcom_values(c, "extract_campaigns", nightly_run_ids(c))
    failures = [problem for run in runs.values() for problem in check_report(c, run, events, extracts)]
    right = len(runs) - len(failures)
    if from_backfill != BACKFILL_DAYS:
        failures.append(f"{from_backfill} events from the backfill's runs, expected {BACKFILL_DAYS}")
    succeeded = sum(run.state == "success" for run in runs.values())
    observed = (
        f"{len(events)} events of {CAMPAIGNS_ASSET} ({from_backfill} from the backfill's runs) consumed "
        f"by {len(runs)} runs of {REPORT_DAG}, {succeeded} succeeded; {right}/{len(runs)} asset-triggered "
        f"and reporting the file of their newest event (path, records = extract_campaigns' XCom)"
    )
    return not failures, observed + ("; " + "; ".join(failures) if failures else "")


def trigger_state(c: Cluster, run_id: str) -> tuple[Any, ...] | None:
    rows = c.query(
        "SELECT ti.state, ti.trigger_id, t.triggerer_id FROM task_instance ti "
        "LEFT JOIN trigger t ON t.id = ti.trigger_id "
        "WHERE ti.dag_id = %s AND ti.run_id = %s AND ti.task_id = 'wait_for_campaign'",
        (GATE_DAG, run_id),
    )
    return rows[0] if rows else None


def running_triggerer_ids(c: Cluster) -> set[int]:
    return {
        row[0] for row in c.query("SELECT id FROM job WHERE job_type = 'TriggererJob' AND state = 'running'")
    }


def scenario_gate(c: Cluster) -> tuple[bool, str]:
    now = c.control("GET", "now")["now"]
    campaign = c.control("POST", "campaigns", json={"created_at": now, "final_status": "done"})
    campaign_id = campaign["id"]
    run_id = f"system_gate_{campaign_id}"
    c.airflow(
        "dags", "trigger", GATE_DAG, "--run-id", run_id, "--conf", json.dumps({"campaign_id": campaign_id})
    )
    first = wait_for(
        "the sensor to defer and a triggerer to take its trigger",
        lambda: (
            (state := trigger_state(c, run_id)) and state[0] == "deferred" and state[2] is not None and state
        ),
        180,
        1,
    )
    old_triggerer = first[2]
    gets = c.control("GET", "stats")["requests"]["get"]
    wait_for(
        "the trigger to poll the campaign",
        lambda: c.control("GET", "stats")["requests"]["get"] > gets,
        60,
        0.5,
    )
    killed_pid = c.procs.kill("triggerer")
    status_at_kill = campaign["status"]
    c.start_triggerer("triggerer-2")
    moved = wait_for(
        "a new triggerer to take over the trigger",
        lambda: (state := trigger_state(c, run_id)) and state[2] not in (None, old_triggerer) and state,
        180,
        1,
    )
    gets = c.control("GET", "stats")["requests"]["get"]
    wait_for(
        "the new triggerer to poll the campaign",
        lambda: c.control("GET", "stats")["requests"]["get"] > gets,
        60,
        0.5,
    )
    still_deferred = moved[0] == "deferred"
    c.control("POST", f"campaigns/{campaign_id}/status", json={"status": "done"})
    state = wait_for(
        "the gate run to finish",
        lambda: (
            (rows := dag_runs(c, GATE_DAG, [run_id])) and rows[0][1] in ("success", "failed") and rows[0][1]
        ),
        180,
        1,
    )
    tis = dict(
        c.query(
            "SELECT task_id, state FROM task_instance WHERE dag_id = %s AND run_id = %s", (GATE_DAG, run_id)
        )
    )
    report = c.query(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = 'report_delivery' "
        "AND key = 'return_value'",
        (GATE_DAG, run_id),
    )
    delivery: dict[str, Any] = {}
    if report:
        delivery = report[0][0] if isinstance(report[0][0], dict) else json.loads(report[0][0])
    report_status = delivery.get("status")
    counts = c.control("GET", "messages/counts", params={"campaign_id": campaign_id})
    by_status = delivery.get("messages_by_status")
    extracted = delivery.get("messages_extracted")
    report_matches = by_status == counts["statistics"] and (
        delivery.get("total_messages") == counts["total_messages"] == extracted
    )
    passed = (
        state == "success"
        and still_deferred
        and report_status == "done"
        and report_matches
        and tis.get("wait_for_campaign") == "success"
    )
    return passed, (
        f"deferred on triggerer job {old_triggerer}; SIGKILLed it (pid {killed_pid}) with the campaign "
        f"'{status_at_kill}'; trigger moved to job {moved[2]} and still polled; campaign set done; "
        f"run {state}, report_delivery saw '{report_status}', {delivery.get('messages_extracted')} messages "
        f"extracted, report {'=' if report_matches else 'NOT EQUAL to'} the simulator's counts "
        f"{counts['total_messages']} messages"
    )


def extract_attempt(c: Cluster, run_id: str) -> tuple[Any, ...]:
    """(hostname, try_number, state) of the run's extract task instance."""
    return c.query(
        "SELECT hostname, try_number, state FROM task_instance "
        "WHERE dag_id = %s AND run_id = %s AND task_id = 'extract_campaigns'",
        (NIGHTLY_DAG, run_id),
    )[0]


def scenario_worker_kill(c: Cluster) -> tuple[bool, str]:
    day = c.today - timedelta(days=BACKFILL_DAYS + 2)
    c.control("DELETE", "faults")
    c.control(
        "POST",
        "faults",
        json={"kind": "delay", "endpoint": "list", "delay": HELD_REQUEST_SECONDS, "times": 1},
    )
    backfill_id = create_backfill(c, day, day)
    wait_for(
        "the extract's list request to reach the simulator (and be held)",
        lambda: not c.control("GET", "faults")["faults"],
        240,
        0.5,
    )
    run_id = wait_for("the backfill run", lambda: backfill_runs(c, backfill_id), 30)[0][0]
    running = extract_attempt(c, run_id)
    victim = running[0]
    if running[2] != "running" or victim not in WORKERS:
        raise SystemTestError(f"expected the extract running on a worker, found {running}")
    killed_pid = c.procs.kill(victim)
    runs = wait_runs_finished(c, backfill_id, 1, 300)
    final = extract_attempt(c, run_id)
    failures = []
    survivor = next(worker for worker in WORKERS if worker != victim)
    if runs[0][1] != "success" or final[2] != "success":
        failures.append(f"run {runs[0][1]}, extract {final[2]}")
    if final[0] != survivor or final[1] < 2:
        failures.append(f"the last try ran on {final[0]} as try {final[1]}")
    summary = xcom_values(c, "extract_campaigns", [run_id]).get(run_id)
    keys = bucket_keys(c)
    temporaries = [key for key in keys if ".tmp-" in key]
    exact = False
    lines = 0
    if summary:
        ids = s3_ids(c, summary["path"])
        lines = len(ids or [])
        expected = c.ground_truth(summary["interval_start"], summary["interval_end"])
        exact = ids == sorted(expected) and lines == summary["records"]
        if ids is None:
            failures.append(f"no file at {summary['path']}")
        elif not exact:
            failures.append(f"the file holds {lines} ids, the ground truth {len(expected)}")
    else:
        failures.append("no extract summary in XCom")
    if temporaries:
        failures.append(f"temporary objects left, e.g. {temporaries[:2]}")
    observed = (
        f"SIGKILLed {victim} (pid {killed_pid}) during a held list request; "
        f"try {final[1]} ran on {final[0]}: "
        f"{final[2]}; file {'complete and exact' if exact else 'WRONG'} ({lines} campaigns); "
        f"{len(temporaries)} temporary objects"
    )
    return not failures, observed + ("; " + "; ".join(failures) if failures else "")


def simulator_token_marker() -> str:
    """The first segment of every token the simulator issues (its fixed JWT header, base64url)."""
    header = json.dumps({"typ": "JWT", "alg": "HS256"}).encode()
    return base64.urlsafe_b64encode(header).rstrip(b"=").decode()


def scenario_secrets(c: Cluster) -> tuple[bool, str]:
    # The canary key, the header segment of every token the simulator issued, and any JWT at all.
    needles = {
        "API key": c.api_key.encode(),
        "HMAC key": c.pii_key.encode(),
        "simulator token": simulator_token_marker().encode(),
        "a JWT (eyJ...)": b"eyJ",
    }
    dumps = c.base / "dumps"
    dumps.mkdir()
    pg_dump = str(_postgres_bindir() / "pg_dump")
    for database in ("airflow", "warehouse"):
        with (dumps / f"{database}.sql").open("wb") as out:
            command = [pg_dump, "-h", "127.0.0.1", "-p", str(c.pg_port), "-U", PG_USER, database]
            subprocess.run(command, stdout=out, check=True, timeout=120)
    # The simulator stands in for the vendor: its banner prints the key, so it is not part of the
    # deployment's logs; it serves as the scan's positive control instead.
    simulator_log = c.logs / "simulator.log"
    logs = [p for p in (c.base / "airflow" / "logs").rglob("*") if p.is_file()]
    logs += [p for p in c.logs.rglob("*") if p.is_file() and p != simulator_log]
    places = {"logs": logs, "metadata DB": [dumps / "airflow.sql", dumps / "warehouse.sql"]}
    hits: list[str] = []
    scanned = 0
    for place, files in places.items():
        for path in files:
            data = path.read_bytes()
            scanned += 1
            hits.extend(
                f"{what} in {place}: {path.name}" for what, needle in needles.items() if needle in data
            )
    keys = bucket_keys(c)
    for key in keys:
        data = c.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read()
        scanned += 1
        hits.extend(f"{what} in s3://{BUCKET}/{key}" for what, needle in needles.items() if needle in data)
    # A scan that cannot find anything proves nothing: it must find the key in the simulator's
    # banner, and the token marker must begin a token the simulator issues.
    login = requests.post(f"{c.sim_url}/api/auth/login", json={"api_key": c.api_key}, timeout=10)
    control_ok = c.api_key.encode() in simulator_log.read_bytes() and login.json()["bearer"].startswith(
        simulator_token_marker() + "."
    )
    observed = (
        f"{len(logs)} log files, pg_dump of both databases, {len(keys)} S3 objects: "
        + ("; ".join(hits[:5]) if hits else "no API key, no HMAC key, no token, no JWT")
        + ("" if control_ok else "; the scan's positive control FAILED")
    )
    return not hits and control_ok and len(logs) > 10, observed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    started = time.monotonic()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    base = Path(tempfile.mkdtemp(prefix="bsg-system-"))
    base.chmod(0o755)  # the postgres user must reach its data directory inside
    cluster = Cluster(base)
    report = Report()
    setup_ok = False
    try:
        log(f"system test in {base}")
        cluster.start_postgres()
        cluster.start_redis()
        cluster.start_s3()
        cluster.start_simulator()
        log(
            f"PostgreSQL :{cluster.pg_port}, Redis :{cluster.redis_port}, S3 :{cluster.s3_port}, "
            f"simulator {cluster.sim_url}"
        )
        cluster.configure_airflow()
        cluster.prepare_airflow()
        log("starting api-server, scheduler, dag-processor, triggerer and two Celery workers")
        cluster.start_airflow()
        setup_ok = True
        log(f"deployment ready after {time.monotonic() - started:.0f} s")
    except Exception as exc:
        report.rows.append(
            Row(
                "deployment starts",
                "all services ready",
                f"{type(exc).__name__}: {exc}",
                time.monotonic() - started,
                False,
            )
        )
        traceback.print_exc()
    try:
        if setup_ok:
            report.add(
                "connections test",
                "right key: success; wrong key: the provider's message",
                lambda: scenario_connection_test(cluster),
            )
            report.add(
                "nightly DAG unpaused, report on its asset event",
                f"the scheduler runs the latest complete day at once; its campaigns event starts "
                f"{REPORT_DAG}, which succeeds and reads the file the event names",
                lambda: scenario_unpause_report(cluster),
            )
            report.add(
                f"{BACKFILL_DAYS}-day backfill, pool bsg_api=2",
                "all runs succeed; PostgreSQL campaign and message ids = ground truth, once each; "
                "extracts on both workers; files in S3",
                lambda: scenario_backfill(cluster),
            )
            report.add(
                "backfill's asset events start the report",
                f"every campaigns event is consumed by a successful asset-triggered run of {REPORT_DAG} "
                "that reads the file of its newest event",
                lambda: scenario_backfill_reports(cluster),
            )
            report.add(
                "deferred gate, triggerer SIGKILLed",
                "trigger resumes on a new triggerer; run succeeds with 'done'; messages and delivery "
                "report match the simulator",
                lambda: scenario_gate(cluster),
            )
            report.add(
                "worker SIGKILLed mid-extraction",
                "retried on the other worker; S3 file complete and exact; no temporary object",
                lambda: scenario_worker_kill(cluster),
            )
            report.add(
                "no secrets at rest",
                "no API key, HMAC key or token in logs, metadata DB, bucket",
                lambda: scenario_secrets(cluster),
            )
    finally:
        log("stopping every process this test started")
        cluster.stop()
        left = cluster.procs.survivors()
        if left:
            report.rows.append(Row("clean shutdown", "no process left", f"still running: {left}", 0, False))
        if args.keep:
            log(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    report.print()
    passed, failed = report.counts
    print(f"Total {time.monotonic() - started:.0f} s.")
    print(f"system-test: {passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
