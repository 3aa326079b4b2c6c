# Two commands for a fresh machine with Python 3.11+:
#   make run    install, migrate, print a curl example with a real key, serve on 127.0.0.1:8000
#   make test   install, lint, type-check, and run every test on SQLite and on PostgreSQL
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never

.PHONY: install run test test-sqlite test-postgres lint bench

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==0.13.9

install: $(UV)
	$(UV) sync --frozen --quiet --python $(PYTHON)

run: install
	@bash scripts/run.sh

lint: install
	$(VENV)/bin/ruff format --check
	$(VENV)/bin/ruff check
	$(VENV)/bin/mypy

test-sqlite: install
	INVOICEHUB_TEST_DB=sqlite $(VENV)/bin/pytest -q $(PYTEST_ARGS)

test-postgres: install
	INVOICEHUB_TEST_DB=postgres $(VENV)/bin/pytest -q $(PYTEST_ARGS)

test: lint test-sqlite test-postgres

bench: install
	$(VENV)/bin/python bench/bench_core.py
