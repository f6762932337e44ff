# zakaz: the two commands a newcomer runs are `make demo` and `make test`.
# Each installs what it needs on a fresh Linux machine with Python 3.11+.

SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen

.PHONY: help install system-deps lint typecheck test test-fast demo bench soak clean

help:
	@echo "make demo   - install, start the sandbox upstreams, load every source, print the summary"
	@echo "make test   - install what the tests need (workspace, redis-server) and run the suite"
	@echo "make bench  - the performance benchmark (never part of make test)"
	@echo "make soak   - a simulated day of zakaz up under faults, checked (never part of make test)"

install:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		{ echo "installing uv with pip"; \
		  $(PYTHON) -m pip install --quiet --disable-pip-version-check uv 2>/dev/null || \
		  $(PYTHON) -m pip install --quiet --disable-pip-version-check --user --break-system-packages uv; }
	$(UV) sync --frozen --all-packages

# System tools the tests drive for real: redis-server, headless Chromium (status page), promtool,
# amtool (the rendered Alertmanager config).
SYSTEM_TOOLS := redis-server:redis-server chromium:chromium promtool:prometheus \
	amtool:prometheus-alertmanager

system-deps:
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
		command -v $${pair%%:*} >/dev/null 2>&1 || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing with apt-get:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "missing system packages:$$missing (Debian/Ubuntu: sudo apt-get install$$missing)"; exit 1; \
		fi; fi

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install
	$(RUN) mypy --strict libs/zakaz_common/src $(wildcard services/*/src)

test: install system-deps lint typecheck
	$(RUN) pytest

test-fast: install
	$(RUN) pytest -x -q

demo: install
	$(RUN) zakaz demo

bench: install
	$(RUN) python -m bench

soak: install system-deps
	$(RUN) python -m soak --hours 24

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache
