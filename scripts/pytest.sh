#!/usr/bin/env bash
# Runs the test suite in the project's venv. pytest exits 5 when it collects no test: that is a
# failure of the suite here (a green run must have run tests), so it is reported as such.
set -u
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
fi
exit "$rc"
