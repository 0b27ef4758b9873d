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

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python bench/server_ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
