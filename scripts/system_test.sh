#!/usr/bin/env bash
# The system test (`make system-test`): the example DAGs on a real distributed Airflow 3.3 with
# PostgreSQL, Redis, moto's S3 server and two Celery workers (see scripts/system_test.py).
# Installs what it needs on first use: Debian's postgresql and redis-server (as root, only if
# missing) and the pinned virtualenv .venv-system from requirements/system.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

missing=()
compgen -G "/usr/lib/postgresql/*/bin/initdb" > /dev/null || missing+=(postgresql)
command -v redis-server > /dev/null || missing+=(redis-server)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "system test: needs ${missing[*]}; run as root or: apt-get install ${missing[*]}" >&2
    exit 1
  fi
  echo ">> installing ${missing[*]} (apt)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d 101: install the packages without starting their system-wide services.
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created_policy=1; fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
  if [ "$created_policy" = 1 ]; then rm -f "$policy"; fi
fi

ensure_venv .venv-system requirements/system.txt
exec .venv-system/bin/python scripts/system_test.py "$@"
