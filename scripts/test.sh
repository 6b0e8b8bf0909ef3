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
# Two workers (one per core of the reference machine): most tests wait on servers, mail and browsers, so two
# in parallel roughly halve the wall time. Each worker has its own private PostgreSQL database, ports and temp
# folders; a test file stays on one worker (--dist loadfile), so a module's fixtures are built once.
# SWITCHBOARD_TEST_WORKERS=0 runs in one process (e.g. to debug with -s or pdb).
WORKERS="${SWITCHBOARD_TEST_WORKERS:-2}"
XDIST=()
if [ "$WORKERS" != "0" ]; then XDIST=(-n "$WORKERS" --dist loadfile); fi
$BIN/python -m pytest -q -p no:cacheprovider "${XDIST[@]}" --durations=15 "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing" >&2; exit 1; fi
exit "$rc"
