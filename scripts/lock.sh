#!/usr/bin/env bash
# `make lock`: compile the loose specs (requirements*.in) into the fully pinned, hashed requirement
# files that Azure installs (requirements.txt), that `make demo` adds for the local server
# (requirements-local.txt) and that `make test` adds for the tools (requirements-dev.txt).
# Every version is re-resolved to the newest the loose spec allows (a refresh); commit the result
# after `make test` passes. pip-tools lives in its own virtual environment (.venv-lock).
#
# Run on Linux with Python 3.11, the platform of the Flex Consumption app: the pins are resolved
# for it, and each pin carries the hashes of every file of that version, so pip verifies whatever
# wheel it picks.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LOCK_VENV:-$ROOT/.venv-lock}"
PIP_TOOLS_VERSION="7.6.2"
PY="${PYTHON:-python3}"

if [[ ! -x "$VENV/bin/pip-compile" || ! -f "$VENV/.pip-tools-$PIP_TOOLS_VERSION" ]]; then
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "pip-tools==$PIP_TOOLS_VERSION"
  touch "$VENV/.pip-tools-$PIP_TOOLS_VERSION"
fi

version="$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$version" == "3.11" ]] || echo "lock: warning: resolving with Python $version; the app runs on 3.11" >&2

cd "$ROOT"
export CUSTOM_COMPILE_COMMAND="make lock"
# Order matters: the local and dev specs are constrained by the files compiled before them.
for spec in requirements.in requirements-local.in requirements-dev.in; do
  out="${spec%.in}.txt"
  echo "lock: $spec -> $out" >&2
  "$VENV/bin/pip-compile" --quiet --upgrade --generate-hashes --allow-unsafe --strip-extras \
    --no-emit-index-url --no-emit-find-links --no-emit-trusted-host \
    --output-file "$out" "$spec"
done
