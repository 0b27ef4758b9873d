# The two commands of a fresh machine (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/dsmsyncd demo

lint: $(STAMP)
	$(BIN)/ruff check dsmsyncd tests bench
	$(BIN)/ruff format --check dsmsyncd tests bench

typecheck: $(STAMP)
	$(BIN)/mypy dsmsyncd tests

# Two workers: most tests wait on real servers and subprocesses, not on a core
# (1,010 tests: 12 min on one worker, 7 on two, on a 2-core machine).
unit: $(STAMP)
	$(BIN)/pytest -n 2 --durations=15

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/server_ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
