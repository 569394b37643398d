"""The website's sources: one edition's chapters with the outputs of an executed run merged in.

Usage: python docs/book/outputs.py EDITION OUTDIR [EXECUTED]

Copies ``chapters/EDITION`` to OUTDIR and writes each chapter whose code cells are exactly those
of a notebook in EXECUTED (default ``$SSLBOOK_BOOK_OUTPUTS`` or ``_build/executed/en``, where
``tests/run_chapters.py`` keeps what it executed) as ``OUTDIR/NAME.ipynb``, with that notebook's
outputs copied cell by cell; the prose and the cells' tags come from the chapter. Both editions
take the English outputs: the code cells of both editions are identical (tests/test_bilingual.py).
A chapter without an executed notebook, or whose code changed since it was executed, stays
``NAME.md`` and shows no outputs; the build says which. Outputs come only from execution: CI's
fast-mode run (``make test``) or, for the published site, a reader-mode run.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[2]
EXECUTED = Path(os.environ.get("SSLBOOK_BOOK_OUTPUTS", ROOT / "_build" / "executed" / "en"))


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


def merge(md: Path, executed: Path):
    """The chapter as a notebook with the executed outputs, or (None, why not)."""
    ipynb = executed / md.with_suffix(".ipynb").name
    if not ipynb.is_file():
        return None, "not executed"
    nb = jupytext.read(md)
    ran = nbformat.read(ipynb, as_version=4)
    if _code(nb) != _code(ran):
        return None, f"code changed since {ipynb} was executed"
    for cell, done in zip((c for c in nb.cells if c.cell_type == "code"),
                          (c for c in ran.cells if c.cell_type == "code"), strict=True):
        cell.outputs = done.outputs
        cell.execution_count = done.execution_count
    nb.metadata["sslbook"] = ran.metadata.get("sslbook", {})
    nb.metadata.pop("jupytext", None)
    return nb, None


def stage(edition: str, out: Path, executed: Path = EXECUTED) -> dict[str, str]:
    """Write the edition's sources to ``out``; returns chapter -> mode of its outputs or why none.

    Files are rewritten only when their content changes, so Sphinx rebuilds only what changed.
    """
    src = ROOT / "chapters" / edition
    out.mkdir(parents=True, exist_ok=True)
    wanted, report = set(), {}
    for path in sorted(src.rglob("*")):
        if path.is_dir() or path.suffix == ".ipynb" or ".ipynb_checkpoints" in path.parts:
            continue
        rel = path.relative_to(src)
        nb, why = merge(path, executed) if path.suffix == ".md" and _is_chapter(path) else (None,
                                                                                          None)
        if nb is not None:
            rel = rel.with_suffix(".ipynb")
            text = nbformat.writes(nb) + "\n"
            report[path.stem] = nb.metadata["sslbook"].get("mode", "unknown") + " mode"
        else:
            text = None
            if why:
                report[path.stem] = "no outputs: " + why
        target = out / rel
        wanted.add(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        if text is not None:
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                target.write_text(text, encoding="utf-8")
        elif not target.is_file() or not filecmp.cmp(path, target, shallow=False):
            shutil.copyfile(path, target)
    for stale in [p for p in out.rglob("*") if p.is_file() and p not in wanted]:
        stale.unlink()
    return report


def _is_chapter(md: Path) -> bool:
    return "```{code-cell}" in md.read_text(encoding="utf-8")


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[0] not in ("en", "zh"):
        print("usage: python docs/book/outputs.py en|zh OUTDIR [EXECUTED]", file=sys.stderr)
        return 2
    executed = Path(argv[2]) if len(argv) == 3 else EXECUTED
    report = stage(argv[0], Path(argv[1]), executed)
    with_outputs = sorted(k for k, v in report.items() if v.endswith(" mode"))
    print(f"{argv[0]}: outputs of {len(with_outputs)} of {len(report)} chapters from {executed}")
    for name, what in report.items():
        if not what.endswith(" mode"):
            print(f"  {name}: {what}")
    (Path(argv[1]) / ".outputs.json").write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
