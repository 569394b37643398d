"""tests/keep_outputs.py, the plugin through which run_chapters keeps what nbval executed (the
website's outputs): a notebook whose cells all passed is written with its outputs and its mode;
one with a failed cell is not, and an older copy of it is removed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parents[1]


def _notebook(path: Path, *sources: str) -> None:
    nb = new_notebook(cells=[new_markdown_cell("# A chapter"),
                             *(new_code_cell(s) for s in sources)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)


def test_passed_notebooks_are_kept_with_outputs_failed_ones_are_not(tmp_path):
    work, kept = tmp_path / "work", tmp_path / "kept"
    _notebook(work / "en" / "01-good.ipynb", "print('hello')", "6 * 7")
    _notebook(work / "en" / "02-bad.ipynb", "print('before')", "1 / 0", "print('after')")
    _notebook(kept / "en" / "02-bad.ipynb", "print('an older run')")  # must go
    shutil.copy(ROOT / "tests" / "keep_outputs.py", work / "sslbook_keep_outputs.py")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(SSLBOOK_EXECUTED_DIR=str(kept), SSLBOOK_MODE="fast", PYTHONWARNINGS="ignore")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "--nbval-lax", "-p",
                          "no:cacheprovider", "-p", "sslbook_keep_outputs", "--rootdir", str(work),
                          "en/01-good.ipynb", "en/02-bad.ipynb"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "1 failed" in run.stdout, run.stdout[-2000:]

    assert not (kept / "en" / "02-bad.ipynb").exists()
    nb = nbformat.read(kept / "en" / "01-good.ipynb", as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["sslbook"]["mode"] == "fast"
    first, second = (c for c in nb.cells if c.cell_type == "code")
    assert [o.output_type for o in first.outputs] == ["stream"]
    assert first.outputs[0].text == "hello\n"
    assert second.outputs[0].output_type == "execute_result"
    assert second.outputs[0].data["text/plain"] == "42"
    assert [first.execution_count, second.execution_count] == [1, 2]
