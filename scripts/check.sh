#!/usr/bin/env bash
# The contributor's loop (`make check`): ruff, then the whole suite on Airflow 3.3 with one pytest
# worker per core; prints its wall time, pass or fail. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
started=$SECONDS
trap 'echo "make check: $((SECONDS - started)) s wall"' EXIT

ensure_venv .venv requirements/airflow-3.3.txt
echo ">> ruff"
.venv/bin/ruff check .
echo ">> tests on $(.venv/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
.venv/bin/python -m pytest -n auto --dist worksteal "$@"
