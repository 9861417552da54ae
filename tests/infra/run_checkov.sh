#!/usr/bin/env bash
# Run checkov over infra/ from its own virtual environment (.venv-checkov at the repo root).
# checkov pins old `packaging` and `pycep-parser` versions that clash with the test venv, so it
# never shares one. The venv is created on first use and reused afterwards (idempotent, quiet).
#
# Usage: tests/infra/run_checkov.sh [--setup-only] [extra checkov args...]
# Prints checkov's JSON report on stdout. Environment: CHECKOV_VENV, PYTHON (interpreter to build
# the venv with; default python3.11, else python3).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${CHECKOV_VENV:-$ROOT/.venv-checkov}"
CHECKOV_VERSION="3.3.30"

ensure_venv() {
  if [[ -x "$VENV/bin/checkov" ]] && [[ -f "$VENV/.checkov-$CHECKOV_VERSION" ]]; then
    return 0
  fi
  local py="${PYTHON:-}"
  if [[ -z "$py" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then py=python3.11; else py=python3; fi
  fi
  # Serialise concurrent first runs (e.g. parallel test workers) on a lock file.
  mkdir -p "$(dirname "$VENV")"
  exec 9>"${TMPDIR:-/tmp}/checkov-venv-$(printf '%s' "$VENV" | cksum | cut -d ' ' -f 1).lock"
  if command -v flock >/dev/null 2>&1; then flock 9; fi
  if [[ -x "$VENV/bin/checkov" ]] && [[ -f "$VENV/.checkov-$CHECKOV_VERSION" ]]; then
    return 0
  fi
  rm -rf "$VENV"
  local log="$VENV.install.log"
  if ! { "$py" -m venv "$VENV" &&
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
      "checkov==$CHECKOV_VERSION"; } >"$log" 2>&1; then
    cat "$log" >&2
    echo "run_checkov: could not install checkov==$CHECKOV_VERSION into $VENV (log above)" >&2
    exit 2
  fi
  rm -f "$log"
  touch "$VENV/.checkov-$CHECKOV_VERSION"
}

ensure_venv
if [[ "${1:-}" == "--setup-only" ]]; then
  exit 0
fi

# --skip-download: no call to the Prisma/Bridgecrew platform (no network needed).
export BC_SKIP_MAPPING=TRUE
exec "$VENV/bin/checkov" --framework bicep --skip-download -o json \
  -d "$ROOT/infra" "$@"
