#!/usr/bin/env bash
# `make smoke`: every pinned Airflow environment keeps Airflow itself working. For each one it
# creates the virtualenv on first use (scripts/venv.sh), then runs the component smoke
# (scripts/smoke_airflow.sh: api-server, scheduler, dag-processor and triggerer, health, a login,
# version, providers list); in the smoke-only environments (3.1, 3.2), which `make test` does not
# cover, also the example DAGs under dag.test() against the simulator and the provider info test.
# One environment at a time. Arguments pick environments by name, e.g. `scripts/smoke.sh 3.2 floor`;
# none means all but `system` (the system test's environment: its Airflow pins are airflow-3.3.txt's,
# and building it takes minutes; `scripts/smoke.sh system` smokes it). Prints each step's time, and
# fails at the end if any environment failed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

# name venv requirements examples(1: also run tests/dags_examples) default(1: run without arguments)
envs=(
  "3.3 .venv requirements/airflow-3.3.txt 0 1"
  "3.0 .venv-airflow-3.0 requirements/airflow-3.0.txt 0 1"
  "floor .venv-floor requirements/floor.txt 0 1"
  "3.1 .venv-airflow-3.1 requirements/airflow-3.1.txt 1 1"
  "3.2 .venv-airflow-3.2 requirements/airflow-3.2.txt 1 1"
  "system .venv-system requirements/system.txt 0 0"
)
wanted=("$@")
selected=()
for entry in "${envs[@]}"; do
  read -r name venv reqs examples default <<< "$entry"
  if [ ${#wanted[@]} -eq 0 ]; then
    [ "$default" = 1 ] || continue
  elif [[ " ${wanted[*]} " != *" $name "* ]]; then
    continue
  fi
  selected+=("$entry")
done
# Environments not built yet (in CI the smoke-only 3.1 and 3.2) are built in the background, one
# after the other in the order they are needed, while the first environments are smoked; each
# step below waits for its own (scripts/venv.sh).
to_build=()
for entry in "${selected[@]}"; do
  read -r name venv reqs examples default <<< "$entry"
  to_build+=("$venv" "$reqs")
done
prefetch_venv "${to_build[@]}"
trap wait_prefetched EXIT
failed=()
for entry in "${selected[@]}"; do
  read -r name venv reqs examples default <<< "$entry"
  t0=$SECONDS
  ensure_venv "$venv" "$reqs"
  t1=$SECONDS
  ok=1
  ./scripts/smoke_airflow.sh "$venv" "$reqs" || ok=0
  t2=$SECONDS
  if [ "$examples" = 1 ]; then
    echo ">> example DAGs on $("$venv/bin/python" -c 'import airflow; print("Airflow", airflow.__version__)')"
    "$venv/bin/python" -m pytest tests/dags_examples tests/test_get_provider_info.py -q -p no:cacheprovider \
      -n auto --dist worksteal || ok=0
  fi
  t3=$SECONDS
  echo "smoke-times $name: venv $((t1 - t0)) s, components $((t2 - t1)) s, example DAGs $((t3 - t2)) s"
  [ "$ok" = 1 ] || failed+=("$name")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "smoke: FAILED in ${failed[*]}" >&2
  exit 1
fi
echo "smoke: every environment PASS"
