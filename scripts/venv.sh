# Sourced by the other scripts: ensure_venv DIR REQUIREMENTS creates or refreshes a virtualenv
# with exactly the pinned requirements and this project installed (editable, no extra deps).
ensure_venv() {
  local dir=$1 reqs=$2 python=${PYTHON:-python3}
  local stamp
  stamp=$(cat "$reqs" pyproject.toml | sha256sum | cut -d' ' -f1)
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.bsg-stamp" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  echo ">> preparing $dir from $reqs" >&2
  rm -rf "$dir"
  "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade "pip==26.3" "setuptools==80.9.0" "wheel==0.45.1"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$reqs"
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "$stamp" > "$dir/.bsg-stamp"
}
