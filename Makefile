# One command on a fresh machine: `make lab` (read the book) or `make test` (run every check).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# JupyterLab refuses to start as root unless told; containers often run as root.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: setup data lab test test-all test-teach lint unit chapters chapters-all bench checkpoints clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP) data $(LAB_SETTINGS)

data: $(STAMP)
	$(PY) -m sslbook data

# Double-click opens a chapter (.md) as a notebook: jupyter/overrides.json sets jupytext as the
# default viewer. Pick a mode with SSLBOOK_MODE=fast|reader|train|record make lab (default reader).
$(LAB_SETTINGS): jupyter/overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp jupyter/overrides.json $@

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=chapters \
	  --ServerApp.contents_manager_class=jupytext.TextFileContentsManager $(LAB_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check sslbook tests benchmarks

unit: $(STAMP)
	$(PY) -m pytest -q tests --ignore=tests/test_teach.py  # test-teach runs it, with Otter

chapters: $(STAMP)
	$(PY) tests/run_chapters.py --editions en

chapters-all: $(STAMP)
	$(PY) tests/run_chapters.py --editions en,zh

test: setup lint unit chapters

test-all: setup lint unit chapters-all

# Course assignments (docs/teaching.md): release chapters 08-09, grade four synthetic submissions
# locally and with Otter-Grader's runner. Otter lives in its own venv, which sees .venv's packages.
TEACH_VENV := .venv-teach
TEACH_STAMP := $(TEACH_VENV)/.installed
$(TEACH_STAMP): pyproject.toml $(STAMP)
	$(PYTHON) -m venv $(TEACH_VENV)
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" > \
	  "$$($(TEACH_VENV)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/zz-sslbook-venv.pth"
	$(TEACH_VENV)/bin/python -m pip install --quiet "otter-grader>=6"
	touch $@

test-teach: $(TEACH_STAMP)
	PYTHONPATH=$(CURDIR) $(TEACH_VENV)/bin/python -m pytest -q tests/test_teach.py

bench: setup
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

# Train a pretrained network again from scratch (resumes after an interruption): NAME=simclr
checkpoints: setup
	$(PY) benchmarks/checkpoints.py $(or $(NAME),$(error give NAME=, e.g. make checkpoints NAME=simclr; names: python benchmarks/checkpoints.py --list))

clean:
	rm -rf $(VENV) $(TEACH_VENV) .pytest_cache .ruff_cache
