# One command on a fresh machine: `make lab` (read the book) or `make test` (run every check).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# JupyterLab refuses to start as root unless told; containers often run as root.
LAB_ARGS ?= $(if $(filter 0,$(shell id -u)),--allow-root,)
LAB_SETTINGS := $(VENV)/share/jupyter/lab/settings/overrides.json

.PHONY: setup data lab test test-all test-teach test-book lint unit chapters chapters-all bench checkpoints book notebooks clean

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
	$(PY) -m pytest -q tests --ignore=tests/test_teach.py --ignore=tests/test_browser.py \
	  --ignore=tests/test_notebooks.py  # test-teach and test-book run these

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

# The book as a website (_build/book/en, _build/book/zh): Sphinx + myst-nb + sphinx-book-theme
# from the [book] extra, in .venv-book without the package, and MathJax 3 from npm unpacked into
# .venv-book/mathjax (the site fetches nothing from elsewhere). Sphinx executes nothing: the
# outputs are those of the notebooks tests/run_chapters.py executed and kept in _build/executed
# (make test: fast mode; the Pages workflow: reader mode); the Chinese edition takes the English
# outputs cell by cell (docs/book/outputs.py). Chapters not executed show no outputs.
BOOK_VENV := .venv-book
BOOK_STAMP := $(BOOK_VENV)/.installed
MATHJAX_VERSION := 3.2.2
$(BOOK_STAMP): pyproject.toml
	$(PYTHON) -m venv $(BOOK_VENV)
	$(BOOK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BOOK_VENV)/bin/python -m pip install --quiet $$($(BOOK_VENV)/bin/python -c "import tomllib; \
	  print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['book']))")
	rm -rf $(BOOK_VENV)/mathjax $(BOOK_VENV)/mathjax-npm && mkdir -p $(BOOK_VENV)/mathjax-npm
	cd $(BOOK_VENV)/mathjax-npm && npm pack --silent mathjax@$(MATHJAX_VERSION) && tar xzf mathjax-*.tgz
	mkdir -p $(BOOK_VENV)/mathjax && mv $(BOOK_VENV)/mathjax-npm/package/es5 $(BOOK_VENV)/mathjax/mathjax
	cd $(BOOK_VENV)/mathjax/mathjax && rm -rf *svg* mml-* tex-mml-* tex-chtml-full* node-main.js output/svg*
	rm -rf $(BOOK_VENV)/mathjax-npm
	touch $@

book: $(BOOK_STAMP)
	for e in en zh; do $(BOOK_VENV)/bin/python docs/book/outputs.py $$e _build/book-src/$$e && \
	  SSLBOOK_EDITION=$$e $(BOOK_VENV)/bin/sphinx-build -q -W --keep-going -b html \
	  -c docs/book -d _build/doctrees/$$e _build/book-src/$$e _build/book/$$e || exit 1; done
	rm -rf _build/book/jupyter_execute  # myst-nb's copies of the notebooks, not part of the site
	cp docs/book/redirect.html _build/book/index.html

# Both editions as .ipynb (_build/notebooks/en, zh), each with a first cell that installs the
# book where it is missing (Colab).
notebooks: $(BOOK_STAMP)
	$(BOOK_VENV)/bin/python docs/book/notebooks.py _build/notebooks

# The site in a real browser and a launchable notebook (tests/test_browser.py,
# tests/test_notebooks.py): Debian's chromium driven by Playwright (no browser download), both
# editions, every page, offline. Uses the outputs `make test` kept in _build/executed (runs
# chapters 01 and 08 in fast mode first when there are none). Screenshots: _build/test-artifacts.
BOOK_TEST_STAMP := $(BOOK_VENV)/.installed-test
$(BOOK_TEST_STAMP): pyproject.toml $(BOOK_STAMP)
	$(BOOK_VENV)/bin/python -m pip install --quiet $$($(BOOK_VENV)/bin/python -c "import tomllib; \
	  print(' '.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['book-test']))")
	touch $@

test-book: $(BOOK_TEST_STAMP) setup
	@command -v chromium >/dev/null || { echo "test-book needs Debian's chromium: apt-get install chromium fonts-noto-cjk" >&2; exit 2; }
	@ls _build/executed/en/*.ipynb >/dev/null 2>&1 || $(PY) tests/run_chapters.py --only 01,08
	$(MAKE) book notebooks
	$(BOOK_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_book.py tests/test_browser.py
	$(PY) -m pytest -q -p no:cacheprovider tests/test_notebooks.py

bench: setup
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)

# Train a pretrained network again from scratch (resumes after an interruption): NAME=simclr
checkpoints: setup
	$(PY) benchmarks/checkpoints.py $(or $(NAME),$(error give NAME=, e.g. make checkpoints NAME=simclr; names: python benchmarks/checkpoints.py --list))

clean:
	rm -rf $(VENV) $(TEACH_VENV) $(BOOK_VENV) _build .pytest_cache .ruff_cache
