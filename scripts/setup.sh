#!/usr/bin/env bash
# Set up a fresh machine for the offline preview (`python`) or for the whole test suite (`all`).
# Idempotent: re-running installs nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

what="${1:-all}"
PYTHON="${PYTHON:-python3}"

python_env() {
  if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
  fi
  if ! cmp -s requirements-dev.txt .venv/.installed-requirements 2>/dev/null \
     || ! cmp -s constraints.txt .venv/.installed-constraints 2>/dev/null; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip==26.3
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt -c constraints.txt
    cp requirements-dev.txt .venv/.installed-requirements
    cp constraints.txt .venv/.installed-constraints
  fi
}

system_packages() {
  # Services the integration tests run for real on 127.0.0.1 (added as the features need them).
  local wanted=(prometheus postgresql nginx-light)
  # Node.js with npm may come from elsewhere than Debian (the workplace image ships NodeSource's).
  command -v npm >/dev/null 2>&1 || wanted+=(nodejs npm)
  local missing=()
  for package in "${wanted[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    # root on the workplace machines; hosted CI runners need sudo.
    local as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(sudo)
    "${as_root[@]}" apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

serving_env() {
  # The model server and the storage initializer's rclone, exactly as their images install them
  # (images/model-server, images/storage-initializer), in a venv of their own: MLServer pins
  # fastapi < 0.116, which the main venv's packages do not allow. tests/test_serving_e2e.py runs them.
  local venv=.venv-serving
  if [ ! -x "$venv/bin/python" ]; then
    "$PYTHON" -m venv "$venv"
  fi
  local stamp="$venv/.installed"
  local wanted
  wanted="$(cat images/model-server/requirements.txt images/model-server/constraints.txt images/storage-initializer/requirements.txt)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip==26.3
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r images/model-server/requirements.txt -c images/model-server/constraints.txt
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes \
      -r images/storage-initializer/requirements.txt
    printf '%s' "$wanted" > "$stamp"
  fi
}

previous_mlflow_env() {
  # The previous MLflow minor release (requirements-mlflow-previous.txt) in a venv of its own:
  # tests/test_mlflow_upgrade.py fills a database with it, then migrates it with the pinned release.
  # Everything but MLflow itself follows constraints.txt, so the two venvs differ in MLflow only.
  local venv=.venv-mlflow-previous
  if [ ! -x "$venv/bin/python" ]; then
    "$PYTHON" -m venv "$venv"
  fi
  local stamp="$venv/.installed"
  local wanted
  wanted="$(cat requirements-mlflow-previous.txt constraints.txt)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip==26.3
    grep -v '^mlflow' constraints.txt > "$venv/constraints-without-mlflow.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
      -r requirements-mlflow-previous.txt -c "$venv/constraints-without-mlflow.txt"
    printf '%s' "$wanted" > "$stamp"
  fi
}

node_env() {
  # Azurite (the Azure Blob endpoint of the integration tests), pinned in package-lock.json.
  if ! cmp -s package-lock.json node_modules/.installed-lock 2>/dev/null; then
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json node_modules/.installed-lock
  fi
}

case "$what" in
  python) python_env ;;
  all) system_packages; python_env; node_env; serving_env; previous_mlflow_env ;;
  *) echo "usage: scripts/setup.sh [python|all]" >&2; exit 2 ;;
esac
