"""A notebook of ``make notebooks`` runs in a fresh kernel, in a folder outside the checkout.

This is what a reader gets in Colab: a Python without ``sslbook``, the chapter's ``.ipynb`` alone
in an empty folder. The first cell must clone the book, install it and move into the chapter's
folder, and the chapter must then run top to bottom. Here the "remote" is a git repository made
from this working tree (``file://``; nothing touches the network), the fresh Python is a venv
without pip or the package that sees ``.venv``'s other packages (torch and the rest are not
installed again: ``PIP_NO_INDEX``), and the chapter runs in fast mode. About a minute on 2 cores.
Run by ``make test-book``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "docs" / "book"))
from notebooks import write_notebook  # noqa: E402

CHAPTER = "01-introduction"

RUN = """\
import sys
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
NotebookClient(nb, kernel_name="sslbook-fresh", timeout=600,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[1])
"""


def _git(*args, cwd):
    subprocess.run(["git", "-c", "user.name=sslbook-test", "-c", "user.email=test@invalid",
                    "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                   capture_output=True)


def _origin(tmp: Path) -> Path:
    """A git repository holding this working tree as it is (tracked and new files)."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    origin = tmp / "origin"
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (origin / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, origin / name)
    _git("init", "-q", cwd=origin)
    _git("add", "-A", cwd=origin)
    _git("commit", "-q", "-m", "working tree", cwd=origin)
    return origin


def _fresh_python(tmp: Path) -> Path:
    """A venv without pip, setuptools or sslbook that imports .venv's other packages."""
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # A path line, not a site dir: .venv's own .pth files (its editable sslbook) are not read.
    Path(purelib, "zz-dot-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    kernel = tmp / "jupyter" / "kernels" / "sslbook-fresh"
    kernel.mkdir(parents=True)
    (kernel / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh", "language": "python"}))
    return python


@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_generated_notebook_runs_in_a_fresh_kernel_outside_the_checkout(tmp_path):
    origin = _origin(tmp_path)
    python = _fresh_python(tmp_path)
    folder = tmp_path / "reader"  # where the reader opened the notebook, outside the checkout
    notebook = write_notebook(ROOT / "chapters" / "en" / f"{CHAPTER}.md", folder, "en",
                              url=origin.as_uri(), branch="main")
    nb = nbformat.read(notebook, as_version=4)
    assert "sslbook-setup" in nb.cells[0].metadata["tags"]
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code")  # stripped
    nb.cells.append(new_code_cell("import os, sslbook\n"
                                  "print(os.getcwd()); print(sslbook.__file__)"))
    nbformat.write(nb, notebook)

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER", "PIP_"))}
    env.update(JUPYTER_PATH=str(tmp_path / "jupyter"), SSLBOOK_MODE="fast", MPLBACKEND="Agg",
               PIP_NO_INDEX="1", PIP_NO_BUILD_ISOLATION="0", PIP_DISABLE_PIP_VERSION_CHECK="1",
               HOME=str(tmp_path / "home"), OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    check = subprocess.run([str(python), "-c", "import importlib.util as u; "
                            "print(u.find_spec('sslbook'), u.find_spec('torch') is not None)"],
                           env=env, cwd=folder, capture_output=True, text=True, check=True)
    assert check.stdout.split() == ["None", "True"], check.stdout  # the fresh Python lacks it
    run = subprocess.run([str(python), "-c", RUN, str(notebook), str(folder)], env=env,
                         cwd=folder, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]

    done = nbformat.read(notebook, as_version=4)
    errors = [o for c in done.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.output_type == "error"]
    assert not errors
    cwd, package = done.cells[-1].outputs[0].text.split()
    clone = folder / "sslbook-repo"
    assert Path(cwd) == clone / "chapters" / "en"  # relative paths work as in JupyterLab
    assert Path(package) == clone / "sslbook" / "__init__.py"  # installed from the clone
    first = next(c for c in done.cells[1:] if c.cell_type == "code")  # the chapter's own
    assert "mode: fast" in "".join(o.get("text", "") for o in first.outputs)


def test_no_notebook_is_committed():
    # Notebooks are built (make notebooks) and published on the branch `notebooks`, never on main.
    tracked = subprocess.run(["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True,
                             text=True, check=True).stdout.split()
    assert not tracked, tracked
