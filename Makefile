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

.PHONY: run test browser haproxy nginx c-sdk-deps pg-repack lint format check clean bench latency storebench soak cluster cluster-test sync lock lock-upgrade

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

# HAProxy for the cluster scenarios (tests/test_cluster.py): Debian's package, installed
# here when it is missing and we may.
haproxy:
	@if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; \
	  else \
	    echo "no haproxy and no root to install it: cluster tests are skipped (CI=true fails them)"; \
	  fi; \
	fi

# The download link tests check URLs with Debian's nginx (secure_link), on a loopback port.
nginx:
	@if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null; \
	  else \
	    echo "no nginx and no root to install it: download link tests are skipped (CI=true fails them)"; \
	  fi; \
	fi

# The C SDK (client-c/) is built and run against the conformance vectors by the tests.
C_SDK_PACKAGES = gcc pkg-config libsodium-dev libcurl4-openssl-dev libjansson-dev
c-sdk-deps:
	@if ! pkg-config --exists libsodium libcurl jansson 2>/dev/null || ! command -v cc >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(C_SDK_PACKAGES) >/dev/null; \
	  else \
	    echo "no C toolchain or libraries and no root to install them: C SDK tests are skipped (CI=true fails them)"; \
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

test: $(STAMP) browser haproxy nginx c-sdk-deps pg-repack
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

# The ping's p50/p99/p99.9 at a steady 50 % and 80 % of its maximum, beside the baseline.
latency: $(STAMP)
	$(BIN)/python loadtest/latency.py $(ARGS)

# HAProxy in front of three nodes on PostgreSQL and Redis, until Ctrl-C (loadtest/README.md).
cluster: $(STAMP) haproxy
	$(BIN)/python -m loadtest.cluster.cluster $(ARGS)

# The cluster scenarios with a longer load on each (make test runs them compact).
cluster-test: $(STAMP) haproxy
	CALLHOME_TEST_DATABASE_URL=$${CALLHOME_TEST_DATABASE_URL:-postgresql+asyncpg://postgres@127.0.0.1:5432/test} \
	CALLHOME_CLUSTER_LOAD_S=$${CALLHOME_CLUSTER_LOAD_S:-30} $(BIN)/pytest -q tests/test_cluster.py

storebench: $(STAMP)
	$(BIN)/python loadtest/storebench.py $(ARGS)

soak: $(STAMP)
	$(BIN)/python loadtest/soak.py $(ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
