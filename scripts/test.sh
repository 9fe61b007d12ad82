#!/usr/bin/env bash
# The test command (README: `make test`): lint, then the whole suite on the newest Airflow we
# support, on the oldest, and on the lowest versions pyproject allows (requirements/floor.txt),
# each in its own pinned virtualenv created on first use; the floor environment also builds the
# sdist and wheel with the lowest setuptools allowed and checks them with twine.
# BSG_SKIP_OLDEST=1 skips the 3.0 run, BSG_SKIP_FLOOR=1 the floor run and the package check.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

ensure_venv .venv requirements/airflow-3.3.txt
echo ">> ruff"
.venv/bin/ruff check .

if [ "${BSG_SKIP_FLOOR:-0}" != "1" ]; then
  ensure_venv .venv-floor requirements/floor.txt
  echo ">> sdist and wheel (setuptools $(.venv-floor/bin/python -c 'import setuptools; print(setuptools.__version__)'))"
  dist=$(mktemp -d)
  trap 'rm -rf "$dist"' EXIT
  # The wheel is built from the sdist, so a file missing from the sdist fails here.
  .venv-floor/bin/python -m build --no-isolation --outdir "$dist" . > "$dist/build.log" 2>&1 \
    || { cat "$dist/build.log"; exit 1; }
  rm -rf build
  .venv-floor/bin/twine check --strict "$dist"/*.whl "$dist"/*.tar.gz
fi

echo ">> tests on $(.venv/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
.venv/bin/python -m pytest "$@"

if [ "${BSG_SKIP_OLDEST:-0}" != "1" ]; then
  ensure_venv .venv-airflow-3.0 requirements/airflow-3.0.txt
  echo ">> tests on $(.venv-airflow-3.0/bin/python -c 'import airflow; print("Airflow", airflow.__version__)')"
  .venv-airflow-3.0/bin/python -m pytest "$@"
fi

if [ "${BSG_SKIP_FLOOR:-0}" != "1" ]; then
  echo ">> tests on the floor versions ($(.venv-floor/bin/python -c 'import airflow; print("Airflow", airflow.__version__)'), requirements/floor.txt)"
  .venv-floor/bin/python -m pytest "$@"
fi
