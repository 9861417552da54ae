#!/usr/bin/env bash
# `make bench`: build .venv-bench if needed, run every scenario, write bench/out/*.json, render
# docs/benchmarks.md. BENCH_QUICK=1 for a small run (minutes); BENCH_ONLY="judge quota" to run some.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-bench
STAMP="$VENV/.installed"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ bench/requirements.txt -nt "$STAMP" ] || [ requirements.txt -nt "$STAMP" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r bench/requirements.txt
  touch "$STAMP"
fi
if [ ! -x node_modules/.bin/azurite ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p bench/out
SCENARIOS="${BENCH_ONLY:-judge quota ingest aggregate drift}"
for scenario in $SCENARIOS; do
  start=$(date +%s)
  echo "== bench: $scenario"
  "$VENV/bin/python" -m "bench.${scenario}_bench"
  echo "== bench: $scenario took $(( $(date +%s) - start )) s"
done
"$VENV/bin/python" -m bench.render
