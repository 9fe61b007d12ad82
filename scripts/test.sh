#!/usr/bin/env bash
# The test command (README: `make test`): lint, then the whole suite on the newest and the
# oldest Airflow we support, each in its own pinned virtualenv created on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

ensure_venv .venv requirements/airflow-3.3.txt
echo ">> ruff"
.venv/bin/ruff check .
echo ">> tests on $(.venv/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
.venv/bin/python -m pytest "$@"

if [ "${BSG_SKIP_OLDEST:-0}" != "1" ]; then
  ensure_venv .venv-airflow-3.0 requirements/airflow-3.0.txt
  echo ">> tests on $(.venv-airflow-3.0/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
  .venv-airflow-3.0/bin/python -m pytest "$@"
fi
