# Sourced by the other scripts: ensure_venv DIR REQUIREMENTS creates or refreshes a virtualenv
# with exactly the pinned requirements and this project installed (editable, no extra deps);
# prefetch_venv DIR REQUIREMENTS does the same in the background.
#
# Every check or build holds a lock on DIR.lock (flock), so a background build and a caller that
# needs the environment never build it twice at once: the caller waits for the build, then finds
# the environment ready (or, if the background build failed, builds it itself and shows why).
ensure_venv() {
  local dir=$1 reqs=$2
  (
    if ! flock -n 9; then
      echo ">> waiting for $dir (being built in the background)" >&2
      flock 9 || exit 1
    fi
    _ensure_venv_locked "$dir" "$reqs"
  ) 9> "$dir.lock"
}

_ensure_venv_locked() {
  local dir=$1 reqs=$2 python=${PYTHON:-python3}
  local stamp
  stamp=$(cat "$reqs" pyproject.toml | sha256sum | cut -d' ' -f1) || return 1
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.bsg-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  if [ -z "${BSG_PREFETCHING:-}" ] && [ -s "$dir.prefetch.log" ]; then
    echo ">> the background build of $dir did not finish; the end of $dir.prefetch.log:" >&2
    tail -n 20 "$dir.prefetch.log" >&2
    rm -f "$dir.prefetch.log"
  fi
  echo ">> preparing $dir from $reqs" >&2
  # Each step checked by hand: `set -e` does not apply inside a function called from `&&`.
  rm -rf "$dir" \
    && "$python" -m venv "$dir" \
    && "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3" "setuptools==80.9.0" "wheel==0.45.1" \
    && "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs" \
    && "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . \
    && echo "$stamp" > "$dir/.bsg-stamp" \
    || { echo ">> building $dir from $reqs FAILED" >&2; return 1; }
}

# prefetch_venv DIR REQUIREMENTS [DIR REQUIREMENTS ...]: build those environments one after the
# other in the background while the caller runs something else (building is mostly download and
# unpacking); output to DIR.prefetch.log, removed once DIR is ready. At the lowest CPU and I/O
# priority, so the tests running meanwhile keep the cores (their short timeouts stay met). The
# caller's own ensure_venv later waits for each; wait_prefetched waits for them all.
PREFETCH_PIDS=()
prefetch_venv() {
  local args=("$@")
  (
    set +e
    export BSG_PREFETCHING=1
    renice -n 19 -p "$BASHPID" > /dev/null 2>&1
    ionice -c 3 -p "$BASHPID" > /dev/null 2>&1
    while [ ${#args[@]} -ge 2 ]; do
      ensure_venv "${args[0]}" "${args[1]}" > "${args[0]}.prefetch.log" 2>&1 && rm -f "${args[0]}.prefetch.log"
      args=("${args[@]:2}")
    done
  ) &
  PREFETCH_PIDS+=($!)
}

# wait_prefetched: wait for this shell's background builds (a script's EXIT trap calls it, so
# that none outlives the script; a build cut short is rebuilt by the next ensure_venv).
wait_prefetched() {
  local pid
  for pid in "${PREFETCH_PIDS[@]}"; do
    wait "$pid" 2> /dev/null || true
  done
  PREFETCH_PIDS=()
}
