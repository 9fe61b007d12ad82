#!/usr/bin/env bash
# `make simulator`: serve the BSG One API simulator on 127.0.0.1 until Ctrl-C.
# Arguments go to the simulator, e.g. `./scripts/simulator.sh --port 8099 --campaigns 20000`;
# see `./scripts/simulator.sh --help`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

ensure_venv .venv requirements/airflow-3.3.txt
exec .venv/bin/python -m bsg_provider.simulator "$@"
