#!/usr/bin/env bash
# The whole suite: lint, types, then pytest (SQLite always; PostgreSQL too when
# SWITCHBOARD_TEST_POSTGRES_URL is set). pytest's "no tests collected" (5) is a failure here.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
echo "== ruff"; $BIN/ruff check .
echo "== mypy"; $BIN/mypy channels nlu core api
echo "== pytest"
set +e
$BIN/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit "$rc"
