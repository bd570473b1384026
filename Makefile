# Kartabl. The two promises: `make run` and `make test` work on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
RUNSTAMP := $(VENV)/.installed-run-stamp
# pytest-xdist workers for `make test`: each worker process gets its own PostgreSQL
# database, Redis namespace and Dovecot (tests/conftest.py), so they never share rows. Six on
# this 2-core machine: many tests wait on subprocesses, servers and timers rather than the CPU
# (2026-12-04, 3,200 tests: 659 s with 3 workers, 606 s with 4; after the browser tests'
# fork server, 612 s with 5 and 586 s with 6, the CPU still about a quarter idle). The fleet
# tests are one xdist group.
TEST_WORKERS ?= 6

.PHONY: run test bench chaos lint install clean dovecot chromium

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

# The IMAP tests run against a real Dovecot, which tests/channels/email/conftest.py starts
# on a private port; only the package is needed (Debian's dovecot-imapd), not its service.
dovecot:
	@test -x /usr/sbin/dovecot || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "dovecot-imapd is missing; install it as root (apt-get install dovecot-imapd)" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd; }

# The browser tests (tests/browser) drive Debian's Chromium with Playwright's executable_path;
# `playwright install` is never run (it downloads a browser build of its own).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; \
	  elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; \
	  else echo "chromium is missing; install it as root (apt-get install chromium)" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

## make test: lint and type-check, then the whole suite on SQLite + stub broker and PostgreSQL + Redis
test: $(STAMP) dovecot chromium
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadgroup

## make bench: email parse/ingest throughput against BytesParser, webhook ingest through
## `kartabl web`, the console, search inside messages (bench.search), live events to 200 SSE streams, the gap a SIGKILLed worker process leaves (bench.worker_kill),
## the fleet under faults (make chaos), then the ingest pipeline on PostgreSQL + Redis with
## dramatiq workers (its line stays the last one: a failed chaos run is reported by make as
## "Error 1 (ignored)" and the ingest benchmark still runs)
bench: $(STAMP)
	$(BIN)/python -m bench.email
	$(BIN)/python -m bench.webhooks
	$(BIN)/python -m bench.console
	$(BIN)/python -m bench.search
	$(BIN)/python -m bench.live
	$(BIN)/python -m bench.webchat
	$(BIN)/python -m bench.worker_kill
	-$(BIN)/python -m bench.chaos
	$(BIN)/python -m bench.ingest

## make chaos: every Procfile line as its own process, ~3 min of faults (worker kills, Redis
## restarts, PostgreSQL terminations, provider faults); one line of counts (bench/README.md).
## Its SMTP server is aiosmtpd, a development dependency. CHAOS_ARGS=--quick: a 40 s run.
chaos: $(STAMP)
	$(BIN)/python -m bench.chaos $(CHAOS_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache
