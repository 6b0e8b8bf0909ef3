# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint screenshots rasa-venv bench-ingest bench-nlu

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (PY=$(PY))")'
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@# uv (from PyPI) installs the same requirements as pip, from its own wheel cache (~/.cache/uv), in seconds
	@# where pip takes one to two minutes on every fresh clone (CI's). pip stays the fallback.
	($(BIN)/pip install -q uv && $(BIN)/uv pip install -q --python $(BIN)/python -e '.[dev]') || \
		($(BIN)/pip install -q --upgrade pip && $(BIN)/pip install -q -e '.[dev]')
	@touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/switchboard init-env
	$(BIN)/switchboard db upgrade
	$(BIN)/switchboard demo --if-empty
	$(BIN)/switchboard serve --host $(HOST) --port $(PORT)

test: install
	bash scripts/system-deps.sh
	bash scripts/test.sh

# Refresh the README's pictures in docs/screenshots from the browser tests (a plain test run keeps its
# screenshots in temporary folders and leaves the working tree alone).
screenshots: install
	SWITCHBOARD_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/python -m pytest -q -p no:cacheprovider \
		tests/console/test_browser.py tests/console/test_intents_browser.py tests/console/test_sla_admin_browser.py \
		tests/console/test_reports_browser.py tests/console/test_widths_browser.py \
		tests/console/test_channel_setup_browser.py tests/console/test_mailbox_setup_browser.py \
		tests/channels/webchat/test_widget_browser.py

# The Rasa 3.6 venv (Python 3.10) for the `rasa` NLU engine and its test; cached outside the repo.
rasa-venv:
	bash scripts/rasa-venv.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy channels nlu core api

bench-ingest: install
	$(BIN)/python bench/ingest.py

bench-nlu: install
	$(BIN)/python bench/nlu.py
