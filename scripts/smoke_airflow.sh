#!/usr/bin/env bash
# The component smoke of one pinned environment: `scripts/smoke_airflow.sh VENV_DIR REQUIREMENTS`
# creates (or reuses) VENV_DIR from REQUIREMENTS, then scripts/smoke_airflow.py starts Airflow's
# api-server, scheduler, dag-processor and triggerer on SQLite in a temporary AIRFLOW_HOME, waits
# until /api/v2/monitor/health calls each healthy, logs in through the simple auth manager, reads
# /api/v2/version and /api/v2/dags with the token, checks `airflow providers list`, and stops them.
# Prints `smoke <env>: PASS`, or the failure and the component's log tail (exit 1).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

if [ $# -ne 2 ]; then
  echo "usage: $0 VENV_DIR REQUIREMENTS   (e.g. $0 .venv-airflow-3.0 requirements/airflow-3.0.txt)" >&2
  exit 2
fi
venv=$1 reqs=$2
env_name=$(basename "$reqs" .txt)
ensure_venv "$venv" "$reqs"

home=$(mktemp -d "${TMPDIR:-/tmp}/bsg-smoke-$env_name.XXXXXX")
helper=
# The helper stops what it started and removes each group's record once the group is gone; should
# it be killed before that, kill every process group still recorded (named by its leader's pid).
cleanup() {
  local pgid_file
  if [ -n "$helper" ] && kill -0 "$helper" 2> /dev/null; then
    kill -TERM "$helper" 2> /dev/null || true
    wait "$helper" 2> /dev/null || true
  fi
  for pgid_file in "$home"/*.pgid; do
    [ -e "$pgid_file" ] || continue
    kill -KILL -- "-$(cat "$pgid_file")" 2> /dev/null || true
  done
  rm -rf "$home"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# In the background, so that a signal to this script runs the trap at once, not after the helper.
"$venv/bin/python" scripts/smoke_airflow.py "$env_name" "$home" &
helper=$!
wait "$helper"
