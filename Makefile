# One command on a fresh machine: `make lab` (read the book) or `make test` (run every check).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export SSLBOOK_DATA_QUIET ?= 0

.PHONY: setup data lab test test-all lint unit chapters chapters-all bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) data

data: $(STAMP)
	$(PY) -m sslbook data

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=chapters \
	  --ServerApp.contents_manager_class=jupytext.TextFileContentsManager

lint: $(STAMP)
	$(VENV)/bin/ruff check sslbook tests benchmarks

unit: $(STAMP)
	$(PY) -m pytest -q tests

chapters: $(STAMP)
	$(PY) tests/run_chapters.py --editions en

chapters-all: $(STAMP)
	$(PY) tests/run_chapters.py --editions en,zh

test: setup lint unit chapters

test-all: setup lint unit chapters-all

bench: setup
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
