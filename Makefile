# Kartabl. The two promises: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench lint install fleet-check clean

# The virtualenv is rebuilt when pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## make run: the embedded default (SQLite, in-process queue, demo data) on http://127.0.0.1:8000
run: $(STAMP)
	$(BIN)/kartabl run --demo

## make test: lint and type-check, then the whole suite on SQLite + stub broker and PostgreSQL + Redis
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

## make bench: the ingest pipeline on PostgreSQL + Redis with dramatiq workers
bench: $(STAMP)
	$(BIN)/python -m bench.ingest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/ruff format --check . || true

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
