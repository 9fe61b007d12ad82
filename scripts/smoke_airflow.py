"""
The component smoke of one pinned environment (``scripts/smoke_airflow.sh VENV REQUIREMENTS``).

Run with the environment's own Python. In a fresh ``AIRFLOW_HOME`` with SQLite it runs
``airflow db migrate``, starts Airflow's api-server (on a free 127.0.0.1 port), scheduler,
dag-processor and triggerer in the background, and then checks, each step bounded:

1. ``/api/v2/monitor/health`` reports every component the version reports (metadatabase,
   scheduler, triggerer, dag_processor) healthy;
2. a login as Airflow ships it: the simple auth manager's ``POST /auth/token`` with a user from
   ``[core] simple_auth_manager_users`` and its password from the passwords file, no JWT setting
   touched; the token then reads ``/api/v2/version`` (the version of this environment) and
   ``/api/v2/dags``, which refuses a request without it and lists the example DAGs once the
   dag-processor has parsed them;
3. ``airflow providers list`` shows airflow-provider-bsg.

Every process it starts runs in its own process group and is stopped on the way out, also on
failure or a signal (the shell wrapper kills the groups again if this process dies). The last
line is ``smoke <env>: PASS``; on a failure it prints what failed and the tail of the
component's log, and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DAGS_FOLDER = ROOT / "dags_examples"
EXAMPLE_DAG_IDS = {"bsg_campaigns_nightly", "bsg_campaign_gate"}
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
#: The components /api/v2/monitor/health reports and must call healthy (3.0 to 3.3 report all four).
HEALTH_KEYS = ("metadatabase", "scheduler", "triggerer", "dag_processor")
STARTUP_TIMEOUT_SECONDS = 240
DAGS_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 20
LOG_TAIL_LINES = 40
USER = "smoke"


class SmokeError(Exception):
    """A check failed; ``component`` names the log worth reading, if one."""

    def __init__(self, message: str, component: str | None = None) -> None:
        super().__init__(message)
        self.component = component


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text[-lines:])


def http(
    method: str, url: str, token: str | None = None, body: dict[str, Any] | None = None
) -> tuple[int, Any]:
    """One request; returns the status and the JSON (or text) answer, never raises on an HTTP status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, raw = error.code, error.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


class Smoke:
    def __init__(self, env_name: str, home: Path) -> None:
        self.env_name = env_name
        self.home = home
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.airflow = str(Path(sys.executable).with_name("airflow"))
        passwords = home / "simple_auth_manager_passwords.json"
        passwords.write_text(json.dumps({USER: self.password}))
        passwords.chmod(0o600)
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base}/execution/",
            # The simple auth manager, Airflow's default, with one user whose password we set.
            "AIRFLOW__CORE__AUTH_MANAGER": (
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            ),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
            # One api-server worker: the machine has two cores.
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__BASE_URL": self.base,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "PYTHONUNBUFFERED": "1",
        }
        # Deliberately no [api_auth] jwt_* setting: the login must work as Airflow ships it.
        for name in list(self.env):
            if name.startswith("AIRFLOW__API_AUTH__"):
                del self.env[name]

    def log(self, component: str) -> Path:
        return self.home / f"{component}.log"

    def say(self, message: str) -> None:
        print(f"smoke {self.env_name}: {message}", file=sys.stderr, flush=True)

    def run(self, *args: str, component: str, timeout: int = 300) -> str:
        with self.log(component).open("ab") as out:
            result = subprocess.run(
                [self.airflow, *args], env=self.env, stdout=subprocess.PIPE, stderr=out, timeout=timeout
            )
        stdout = result.stdout.decode(errors="replace")
        with self.log(component).open("a") as out:
            out.write(stdout)
        if result.returncode != 0:
            raise SmokeError(f"`airflow {' '.join(args)}` exited with {result.returncode}", component)
        return stdout

    def start(self, component: str, *args: str) -> None:
        out = self.log(component).open("ab")
        self.procs[component] = subprocess.Popen(
            [self.airflow, component, *args],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: stopping it stops its children too
        )
        out.close()
        (self.home / f"{component}.pgid").write_text(str(self.procs[component].pid))

    def check_alive(self) -> None:
        for component, proc in self.procs.items():
            if proc.poll() is not None:
                raise SmokeError(f"{component} exited with {proc.returncode}", component)

    def stop(self) -> list[str]:
        """Stop every group (SIGTERM, then SIGKILL); return the groups that outlived both."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        left = list(self.procs.items())
        while left and time.monotonic() < deadline:
            left = [(c, p) for c, p in left if group_alive(p.pid)]
            if left:
                time.sleep(0.3)
            for _, proc in self.procs.items():
                proc.poll()  # reap the leaders so their group empties
        for _, proc in left:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.5)
        for proc in self.procs.values():
            proc.poll()
        leftovers = [c for c, p in self.procs.items() if group_alive(p.pid)]
        for component in self.procs:
            if component not in leftovers:
                (self.home / f"{component}.pgid").unlink(missing_ok=True)
        return leftovers

    def wait_healthy(self) -> dict[str, Any]:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        last: Any = "no answer"
        unhealthy = "api-server"  # until the api-server answers, its log is the one to read
        while True:
            self.check_alive()
            try:
                status, body = http("GET", f"{self.base}/api/v2/monitor/health")
                last = f"HTTP {status}: {body}"
                if status == 200 and isinstance(body, dict):
                    sick = [k for k in HEALTH_KEYS if (body.get(k) or {}).get("status") != "healthy"]
                    if not sick:
                        return body
                    unhealthy = "api-server" if sick[0] == "metadatabase" else sick[0].replace("_", "-")
            except OSError as error:
                last = f"{type(error).__name__}: {error}"
            if time.monotonic() > deadline:
                component = unhealthy
                raise SmokeError(
                    f"not healthy after {STARTUP_TIMEOUT_SECONDS} s; last health answer: {last}", component
                )
            time.sleep(1)

    def login(self) -> str:
        status, body = http(
            "POST", f"{self.base}/auth/token", body={"username": USER, "password": self.password}
        )
        if status not in (200, 201) or not isinstance(body, dict) or not body.get("access_token"):
            raise SmokeError(f"login (POST /auth/token) answered HTTP {status}: {body}", "api-server")
        return str(body["access_token"])

    def check_version(self, token: str) -> str:
        # From the metadata: importing airflow here would log its own start-up lines.
        expected = importlib.metadata.version("apache-airflow")
        status, body = http("GET", f"{self.base}/api/v2/version", token=token)
        if status != 200 or not isinstance(body, dict) or body.get("version") != expected:
            raise SmokeError(
                f"GET /api/v2/version with the token answered HTTP {status}: {body} "
                f"(expected version {expected})",
                "api-server",
            )
        return str(body["version"])

    def check_dags(self, token: str) -> None:
        status, body = http("GET", f"{self.base}/api/v2/dags")
        if status != 401:
            raise SmokeError(
                f"GET /api/v2/dags without a token answered HTTP {status}, not 401", "api-server"
            )
        deadline = time.monotonic() + DAGS_TIMEOUT_SECONDS
        while True:
            self.check_alive()
            status, body = http("GET", f"{self.base}/api/v2/dags?limit=100", token=token)
            if status != 200 or not isinstance(body, dict):
                raise SmokeError(
                    f"GET /api/v2/dags with the token answered HTTP {status}: {body}", "api-server"
                )
            seen = {dag.get("dag_id") for dag in body.get("dags", [])}
            if seen >= EXAMPLE_DAG_IDS:
                return
            if time.monotonic() > deadline:
                raise SmokeError(
                    f"the example DAGs {sorted(EXAMPLE_DAG_IDS - seen)} were not listed after "
                    f"{DAGS_TIMEOUT_SECONDS} s (listed: {sorted(seen)})",
                    "dag-processor",
                )
            time.sleep(1)

    def main(self) -> None:
        started = time.monotonic()
        self.run("db", "migrate", component="db-migrate")
        self.start("api-server", "--host", "127.0.0.1", "--port", str(self.port))
        # --skip-serve-logs: the log servers bind every interface on fixed ports (8793, 8794) that
        # other Airflows on the machine may hold; they are no part of what the smoke checks.
        self.start("scheduler", "--skip-serve-logs")
        self.start("dag-processor")
        self.start("triggerer", "--skip-serve-logs")
        self.say(f"started {', '.join(COMPONENTS)} (api-server on {self.base}); waiting for health")
        self.wait_healthy()
        self.say(f"healthy after {time.monotonic() - started:.0f} s: {', '.join(HEALTH_KEYS)}")
        token = self.login()
        version = self.check_version(token)
        self.check_dags(token)
        self.say(f"login, /api/v2/version ({version}) and /api/v2/dags with the token: ok")
        providers = self.run("providers", "list", component="providers-list")
        if "airflow-provider-bsg" not in providers:
            raise SmokeError("`airflow providers list` does not show airflow-provider-bsg", "providers-list")


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("env_name", help="the name printed in the result line, e.g. airflow-3.0")
    parser.add_argument("home", type=Path, help="an empty directory for AIRFLOW_HOME")
    args = parser.parse_args()

    def on_signal(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    smoke = Smoke(args.env_name, args.home)
    failure: SmokeError | None = None
    try:
        smoke.main()
    except SmokeError as error:
        failure = error
    except subprocess.TimeoutExpired as error:
        failure = SmokeError(f"`{' '.join(map(str, error.cmd))}` timed out after {error.timeout} s")
    finally:
        leftovers = smoke.stop()
    if leftovers:
        failure = failure or SmokeError(f"processes of {', '.join(leftovers)} outlived SIGKILL")
    if failure is not None:
        print(f"smoke {args.env_name}: FAIL: {failure}", file=sys.stderr)
        components = [failure.component] if failure.component else list(smoke.procs)
        for component in components:
            print(f"--- last lines of {component}.log ---", file=sys.stderr)
            print(log_tail(smoke.log(component)), file=sys.stderr)
        return 1
    print(f"smoke {args.env_name}: PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
