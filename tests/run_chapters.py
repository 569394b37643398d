"""Execute the chapters as tests: MyST markdown -> .ipynb in a temporary folder -> nbval.

Usage: python tests/run_chapters.py [--editions en,zh] [--only 01,08] [--mode MODE]

The whole ``chapters/`` tree is copied so that relative paths (``../solutions``) behave as they
do in JupyterLab, where the kernel starts in the chapter's folder. ``--mode`` sets
``SSLBOOK_MODE`` (see ``sslbook.mode``): ``fast`` (the default, as CI runs), ``reader`` (as a
reader in JupyterLab), ``train`` or ``record`` (the only one that writes ``results/``).
``--full`` is the older name of ``--mode record``.

The executed notebooks, with their outputs, are kept in ``_build/executed/<edition>/`` (``--keep
DIR`` elsewhere, ``--keep ''`` not at all; only chapters whose cells all passed): ``make book``
takes the website's outputs from there (docs/book/outputs.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import jupytext

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--editions", default="en", help="comma-separated: en, zh")
    parser.add_argument("--only", default="", help="comma-separated chapter prefixes, e.g. 01,08")
    parser.add_argument("--mode", choices=("fast", "reader", "train", "record"), default="fast")
    parser.add_argument("--full", action="store_true", help="the older name of --mode record")
    parser.add_argument("--keep", default=str(ROOT / "_build" / "executed"),
                        help="folder for the executed notebooks ('' keeps none)")
    args, pytest_args = parser.parse_known_args(argv)
    only = [p for p in args.only.split(",") if p]
    with tempfile.TemporaryDirectory(prefix="sslbook-chapters-") as tmp:
        work = Path(tmp) / "chapters"
        shutil.copytree(ROOT / "chapters", work)
        notebooks = []
        for edition in args.editions.split(","):
            for md in sorted((work / edition).glob("[0-9][0-9]-*.md")):
                if only and not any(md.name.startswith(p) for p in only):
                    continue
                nb = jupytext.read(md)
                nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                             "language": "python"}
                ipynb = md.with_suffix(".ipynb")
                jupytext.write(nb, ipynb)
                notebooks.append(str(ipynb))
        if not notebooks:
            print("no chapter matched", file=sys.stderr)
            return 2
        # Figures as the reader sees them (inline PNGs), so that the kept notebooks have them;
        # with --keep '' nothing is kept and the faster Agg backend draws nowhere.
        backend = "module://matplotlib_inline.backend_inline" if args.keep else "Agg"
        env = dict(os.environ, MPLBACKEND=backend, PYTHONWARNINGS="ignore",
                   SSLBOOK_MODE="record" if args.full else args.mode)
        env.pop("SSLBOOK_FAST", None)
        plugins = []
        if args.keep:
            # tests/keep_outputs.py writes what nbval executed; pytest imports it from cwd.
            shutil.copy(ROOT / "tests" / "keep_outputs.py", Path(tmp) / "sslbook_keep_outputs.py")
            env["SSLBOOK_EXECUTED_DIR"] = str(Path(args.keep).resolve())
            plugins = ["-p", "sslbook_keep_outputs"]
        # a cell of fast or reader mode that takes 10 minutes is a bug; train and record modes
        # run full trainings in one cell (hours for chapter 12's record)
        long_mode = env["SSLBOOK_MODE"] in ("train", "record")
        cell_timeout = "86400" if long_mode else "600"
        cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", *plugins,
               "--rootdir", tmp, "--nbval-cell-timeout", cell_timeout, "--durations", "0",
               *pytest_args, *notebooks]
        before = _snapshot()
        code = subprocess.call(cmd, env=env, cwd=tmp)
        after = _snapshot()
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        if changed and env["SSLBOOK_MODE"] != "record":
            print(f"error: {env['SSLBOOK_MODE']} mode wrote {', '.join(changed)}; only record "
                  "mode may write results/ or checkpoints/", file=sys.stderr)
            return code or 1
        return code


def _snapshot() -> dict[str, float]:
    """Modification times of what only record mode (and checkpoint training) may write."""
    return {str(p.relative_to(ROOT)): p.stat().st_mtime_ns
            for folder in ("results", "checkpoints") for p in (ROOT / folder).glob("*")}


if __name__ == "__main__":
    sys.exit(main())
