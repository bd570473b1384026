# Kartabl. The two promises: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUNSTAMP := $(VENV)/.installed-run-stamp

.PHONY: run test bench lint install clean

# The virtualenv is refreshed when pyproject.toml changes. `make run` installs what Kartabl
# needs to run; `make test` adds the development tools (pytest, ruff, mypy).
$(RUNSTAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $(RUNSTAMP)

$(STAMP): $(RUNSTAMP)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## make run: the embedded default (SQLite, in-process queue, demo data) on http://127.0.0.1:8000
run: $(RUNSTAMP)
	$(BIN)/kartabl run --demo

## make test: lint and type-check, then the whole suite on SQLite + stub broker and PostgreSQL + Redis
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

## make bench: email parse/ingest throughput against BytesParser, then the ingest pipeline on
## PostgreSQL + Redis with dramatiq workers (its line stays the last one)
bench: $(RUNSTAMP)
	$(BIN)/python -m bench.email
	$(BIN)/python -m bench.ingest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
