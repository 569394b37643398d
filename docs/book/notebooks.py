"""Chapters (jupytext MyST) -> .ipynb with a first cell that installs the book where it is missing.

Usage: python docs/book/notebooks.py OUTDIR   (writes OUTDIR/en/*.ipynb and OUTDIR/zh/*.ipynb)

The first cell does nothing where ``sslbook`` imports (a clone with ``make setup``); elsewhere
(Colab) it clones the repository, installs it and moves into the chapter's folder, so that the
package finds ``checkpoints/`` and ``results/`` and relative paths work as in JupyterLab.
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
from nbformat.v4 import new_code_cell

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from settings import BRANCH, REPOSITORY_URL  # noqa: E402

SETUP = '''\
# Colab (or any Python without the book): clone the book, install it, open the chapter's folder.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("sslbook") is None:
    repo = os.path.abspath("sslbook-repo")
    if not os.path.isdir(repo):
        subprocess.run(["git", "clone", "--depth", "1", "--branch", "{branch}",
                        "{url}", repo], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-e", repo], check=True)
    sys.path.insert(0, repo)
    os.chdir(os.path.join(repo, "chapters", "{edition}"))'''


def chapters(edition: str) -> list[Path]:
    """The chapters that have code (not the index nor the appendices)."""
    return sorted(p for p in (ROOT / "chapters" / edition).glob("*.md")
                  if "```{code-cell}" in p.read_text(encoding="utf-8"))


def write_notebook(md: Path, out: Path, edition: str, url: str = REPOSITORY_URL,
                   branch: str = BRANCH) -> Path:
    """Write ``md`` as ``out/NAME.ipynb``; its first cell clones ``url`` at ``branch``."""
    nb = jupytext.read(md)
    cell = new_code_cell(SETUP.format(branch=branch, url=url, edition=edition))
    cell.metadata["tags"] = ["sslbook-setup"]
    nb.cells.insert(0, cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.metadata.pop("jupytext", None)
    out.mkdir(parents=True, exist_ok=True)
    path = out / md.with_suffix(".ipynb").name
    jupytext.write(nb, path, fmt="ipynb")
    return path


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    for edition in ("en", "zh"):
        for md in chapters(edition):
            print(write_notebook(md, Path(argv[0]) / edition, edition))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
