# zakaz: the two commands a newcomer runs are `make demo` and `make test`.
# Each installs what it needs on a fresh Linux machine with Python 3.11+.

SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
RUN := $(UV) run --frozen

.PHONY: help install redis lint typecheck test test-fast demo bench clean

help:
	@echo "make demo   - install, start the sandbox upstreams, load every source, print the summary"
	@echo "make test   - install what the tests need (workspace, redis-server) and run the suite"
	@echo "make bench  - the performance benchmark (never part of make test)"

install:
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || \
		{ echo "installing uv with pip"; \
		  $(PYTHON) -m pip install --quiet --disable-pip-version-check uv 2>/dev/null || \
		  $(PYTHON) -m pip install --quiet --disable-pip-version-check --user --break-system-packages uv; }
	$(UV) sync --frozen --all-packages

redis:
	@command -v redis-server >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
			echo "installing redis-server with apt-get"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null; \
		else \
			echo "redis-server is missing: install it (Debian/Ubuntu: sudo apt-get install redis-server)"; exit 1; \
		fi; }

lint: install
	$(RUN) ruff check .
	$(RUN) ruff format --check .

typecheck: install
	$(RUN) mypy --strict libs/zakaz_common/src

test: install redis lint typecheck
	$(RUN) pytest

test-fast: install
	$(RUN) pytest -x -q

demo: install
	$(RUN) zakaz demo

bench: install
	$(RUN) python -m bench

clean:
	rm -rf data .pytest_cache .mypy_cache .ruff_cache
