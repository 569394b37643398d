"""pytest plugin of tests/run_chapters.py: keep the notebooks nbval executed, with their outputs.

nbval runs each code cell in a kernel and collects what the cell printed and drew, but writes
nothing back. This plugin puts those outputs into the notebook and, at the end of the session,
writes every notebook whose cells all passed to ``$SSLBOOK_EXECUTED_DIR/<edition>/<name>.ipynb``
(the website takes its outputs from there, see docs/book/outputs.py). A notebook with a failed
or skipped cell is not written, and an older copy of it is removed, so the site never shows
outputs of a run that failed. The notebook's metadata says which mode produced it.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

_notebooks: dict[str, object] = {}  # path -> nbval's IPyNbFile (holds .nb)
_failed: set[str] = set()


def _path(item) -> str | None:
    parent = getattr(item, "parent", None)
    return str(parent.fspath) if parent is not None and hasattr(parent, "nb") else None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield
    path = _path(item)
    if path is None or getattr(item, "cell", None) is None:
        return
    _notebooks[path] = item.parent
    outputs = item.test_outputs or []
    for out in outputs:
        if out.get("output_type") == "execute_result":
            out.setdefault("metadata", {})
    item.cell.outputs = outputs
    item.cell.execution_count = item.cell_num + 1


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    path = _path(item)
    if path is not None and (report.failed or (report.when == "call" and report.skipped)):
        _failed.add(path)


def pytest_sessionfinish(session):
    out = os.environ.get("SSLBOOK_EXECUTED_DIR")
    if not out:
        return
    for path, nbfile in _notebooks.items():
        source = Path(path)
        target = Path(out) / source.parent.name / source.name
        if path in _failed:
            target.unlink(missing_ok=True)
            continue
        nb = nbfile.nb
        nb.metadata["sslbook"] = {"mode": os.environ.get("SSLBOOK_MODE", "reader"),
                                  "executed_by": "tests/run_chapters.py (nbval)"}
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(target))
