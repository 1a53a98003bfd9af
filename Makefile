# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test browser lint format check clean bench storebench soak

$(STAMP): pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]" -e ./client
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/callhome init
	$(BIN)/callhome serve --host $(HOST) --port $(PORT)

# The browser tests drive Debian's chromium (with Playwright, never a browser of its own):
# installed here when it is missing and we may.
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "no chromium and no root to install it: browser tests are skipped (CI=true fails them)"; \
	  fi; \
	fi

test: $(STAMP) browser
	$(BIN)/pytest -q tests client/tests

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy app
	cd client && ../$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

check: lint test

# Benchmarks against the PostgreSQL at CALLHOME_BENCH_ADMIN_DSN (loadtest/README.md);
# options go in ARGS, e.g. make storebench ARGS="--scale 0.01".
bench: $(STAMP)
	$(BIN)/python loadtest/bench.py $(ARGS)

storebench: $(STAMP)
	$(BIN)/python loadtest/storebench.py $(ARGS)

soak: $(STAMP)
	$(BIN)/python loadtest/soak.py $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
