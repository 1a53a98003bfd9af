# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
# They install exactly what uv.lock pins (uv itself comes from PyPI, pinned below).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000
# The extras synced into .venv; `make sync EXTRAS="dev loadtest"` adds Locust.
EXTRAS ?= dev

UV_VERSION := 0.13.9
TOOLS := .tools
UV ?= $(TOOLS)/uv/bin/uv
# Installed by the rule below only when it is ours: `make UV=uv` uses one of your own.
UV_DEP := $(filter $(TOOLS)/uv/bin/uv,$(UV))
# uv uses the system python3 and never downloads an interpreter.
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
UV_SYNC = $(UV) sync --locked --all-packages --python $(PYTHON) $(addprefix --extra ,$(EXTRAS))

.PHONY: pg-repack run test browser lint format check clean bench storebench soak sync lock lock-upgrade

$(TOOLS)/uv/bin/uv:
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target $(TOOLS)/uv uv==$(UV_VERSION)

# --locked: a uv.lock that no longer matches the pyproject files fails here (run `make lock`).
$(STAMP): uv.lock pyproject.toml client/pyproject.toml | $(UV_DEP)
	$(UV_SYNC)
	touch $(STAMP)

sync: | $(UV_DEP)
	$(UV_SYNC)
	touch $(STAMP)

# Re-resolve after a pyproject change, keeping every other pin.
lock: | $(UV_DEP)
	$(UV) lock --python $(PYTHON)

# The monthly refresh (README.md, "Refreshing the lock"): newest allowed versions of everything.
lock-upgrade: | $(UV_DEP)
	$(UV) lock --upgrade --python $(PYTHON)

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

# Hard erasure on PostgreSQL rewrites tables with pg_repack (docs/privacy.md): its
# extension and client, installed here when missing and we may.
pg-repack:
	@if ! command -v pg_repack >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      "postgresql-$$(ls /etc/postgresql 2>/dev/null | sort -n | tail -1)-repack" >/dev/null; \
	  else \
	    echo "no pg_repack and no root to install it: PostgreSQL hard-erasure tests fail"; \
	  fi; \
	fi

test: $(STAMP) browser pg-repack
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
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
