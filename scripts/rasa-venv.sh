#!/usr/bin/env bash
# Build the Rasa 3.6 virtualenv used by the `rasa` NLU engine and its tests.
#
# Rasa pins Python < 3.11 and dependencies that conflict with ours, so it lives in its own venv, cached
# outside the repository. Idempotent: an existing, working venv is left as it is.
set -euo pipefail

RASA_VERSION="${SWITCHBOARD_RASA_VERSION:-3.6.21}"
VENV="${SWITCHBOARD_RASA_VENV:-/opt/switchboard/rasa-venv}"
PYTHON310="${SWITCHBOARD_RASA_PYTHON:-}"

if [[ -f "$VENV/.switchboard-complete" ]] && "$VENV/bin/python" -c "import rasa, sys; sys.exit(rasa.__version__ != '$RASA_VERSION')" 2>/dev/null; then
    echo "rasa-venv: rasa $RASA_VERSION already built at $VENV"
    exit 0
fi

if [[ -z "$PYTHON310" ]]; then
    candidates=(/root/.pyenv/versions/3.10*/bin/python "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10*/bin/python)
    if command -v python3.10 >/dev/null 2>&1; then candidates+=("$(command -v python3.10)"); fi
    for candidate in "${candidates[@]}"; do
        if [[ -x "$candidate" ]] && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))'; then
            PYTHON310="$candidate"
            break
        fi
    done
fi
if [[ -z "$PYTHON310" ]]; then
    echo "rasa-venv: no Python 3.10 found (set SWITCHBOARD_RASA_PYTHON)" >&2
    exit 1
fi

echo "rasa-venv: building rasa $RASA_VERSION at $VENV with $PYTHON310"
# A venv records its absolute path in its scripts, so it is built in place; the marker written last tells
# a finished build from an interrupted one, which is wiped and rebuilt.
case "$VENV" in
    ""|/|/usr|/opt|"$HOME") echo "rasa-venv: refusing to build into '$VENV'" >&2; exit 1 ;;
esac
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$PYTHON310" -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --upgrade "pip<25" "setuptools<70" wheel
"$VENV/bin/pip" install --quiet --disable-pip-version-check "rasa==$RASA_VERSION"
"$VENV/bin/rasa" --version
touch "$VENV/.switchboard-complete"
echo "rasa-venv: done"
