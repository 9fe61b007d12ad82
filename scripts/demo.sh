#!/usr/bin/env bash
# The demo (README: `make demo`): the example DAGs in a real Airflow against the local simulator.
# Creates the pinned virtualenv on first use (shared with `make test`); everything else lives in .demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

ensure_venv .venv requirements/airflow-3.3.txt
exec .venv/bin/python scripts/demo.py "$@"
