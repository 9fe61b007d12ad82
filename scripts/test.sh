#!/usr/bin/env bash
# The test command (README: `make test`): lint, the package build check, then the suite in each
# pinned virtualenv (created on first use), one pytest worker per core:
#   - Airflow 3.3 (requirements/airflow-3.3.txt): every test;
#   - the floor pins (requirements/floor.txt: Airflow 3.0.2 and the lowest library versions
#     pyproject allows): `-m floor`, the `compat` tests (all but the simulator's own, the campaigns'
#     fault matrix's first and last page, the messages' fault matrix) that do not run tasks through
#     Airflow, and the example DAGs;
#   - Airflow 3.0.6 (requirements/airflow-3.0.txt, libraries pinned as on 3.3): `-m oldest`, the
#     `compat` tests that run tasks through Airflow (dag.test(), the sensor's modes, asset events).
#     tests/conftest.py says why each test runs where.
# The floor environment also builds the sdist and wheel with the lowest setuptools allowed and
# checks them with twine. The older environments are built in the background while the 3.3 tests
# run (scripts/venv.sh: prefetch_venv). Each stage prints its wall time.
# BSG_SKIP_OLDEST=1 skips the 3.0 run, BSG_SKIP_FLOOR=1 the floor run and the package check.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

started=$SECONDS
stage_started=$SECONDS
stage() {  # stage NAME: announce a stage and start its clock
  echo ">> $1"
  stage_started=$SECONDS
}
took() {  # took NAME: the wall time since the last stage began
  echo "   ($1: $((SECONDS - stage_started)) s)"
}
pytest_in() {  # pytest_in VENV [ARGS...]: the suite on that environment, one worker per core
  local venv=$1
  shift
  "$venv/bin/python" -m pytest -n auto --dist worksteal "$@"
}

dist=$(mktemp -d)
trap 'rm -rf "$dist"; wait_prefetched' EXIT
later=()
[ "${BSG_SKIP_FLOOR:-0}" = "1" ] || later+=(.venv-floor requirements/floor.txt)
[ "${BSG_SKIP_OLDEST:-0}" = "1" ] || later+=(.venv-airflow-3.0 requirements/airflow-3.0.txt)
if [ ${#later[@]} -gt 0 ]; then
  prefetch_venv "${later[@]}"
fi

stage "environment .venv (Airflow 3.3)"
ensure_venv .venv requirements/airflow-3.3.txt
took "environment"
stage "ruff"
.venv/bin/ruff check .
took "ruff"

stage "tests on $(.venv/bin/python -c 'import airflow; print("Airflow", airflow.__version__)'): all"
pytest_in .venv "$@"
took "Airflow 3.3"

if [ "${BSG_SKIP_FLOOR:-0}" != "1" ]; then
  stage "environment .venv-floor"
  ensure_venv .venv-floor requirements/floor.txt
  took "environment"
  stage "sdist and wheel (setuptools $(.venv-floor/bin/python -c 'import setuptools; print(setuptools.__version__)'))"
  # The wheel is built from the sdist, so a file missing from the sdist fails here.
  .venv-floor/bin/python -m build --no-isolation --outdir "$dist" . > "$dist/build.log" 2>&1 \
    || { cat "$dist/build.log"; exit 1; }
  rm -rf build
  .venv-floor/bin/twine check --strict "$dist"/*.whl "$dist"/*.tar.gz
  took "package"
fi

if [ "${BSG_SKIP_OLDEST:-0}" != "1" ]; then
  stage "environment .venv-airflow-3.0"
  ensure_venv .venv-airflow-3.0 requirements/airflow-3.0.txt
  took "environment"
  stage "tests on $(.venv-airflow-3.0/bin/python -c 'import airflow; print("Airflow", airflow.__version__)'): -m oldest"
  pytest_in .venv-airflow-3.0 -m oldest "$@"
  took "Airflow 3.0"
fi

if [ "${BSG_SKIP_FLOOR:-0}" != "1" ]; then
  stage "tests on the floor versions ($(.venv-floor/bin/python -c 'import airflow; print("Airflow", airflow.__version__)'), requirements/floor.txt): -m floor"
  pytest_in .venv-floor -m floor "$@"
  took "floor"
fi
echo "make test: $((SECONDS - started)) s wall"
