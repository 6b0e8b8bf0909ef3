# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint rasa-venv bench-ingest bench-nlu

$(STAMP): pyproject.toml
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required (PY=$(PY))")'
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
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
