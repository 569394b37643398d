"""Time each chapter in a mode, as a reader runs it, and record it in results/chapter_times.json.

    python benchmarks/chapter_times.py --mode reader            # every chapter, English edition
    python benchmarks/chapter_times.py --mode fast --only 08,11

Each chapter runs alone through tests/run_chapters.py (a fresh kernel, nbval), so the time
includes starting the kernel and importing torch, as opening the notebook in JupyterLab does.
Run it on an idle machine: another job on the cores slows every number here. The learning
objectives of each chapter quote these records.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ROOT, provenance, write  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("fast", "reader", "train"), default="reader")
    parser.add_argument("--only", default="", help="comma-separated prefixes, e.g. 01,08")
    parser.add_argument("--edition", default="en")
    args = parser.parse_args()
    names = sorted(p.name[:2] for p in (ROOT / "chapters" / args.edition).glob("[0-9][0-9]-*.md"))
    names = [n for n in names if not args.only or n in args.only.split(",")]
    path = RESULTS / "chapter_times.json"
    record = json.loads(path.read_text()) if path.exists() else {"benchmark": "chapter_times"}
    for name in names:
        tic = time.perf_counter()
        # --keep '': no executed notebooks kept, figures drawn by Agg, as the recorded times were
        code = subprocess.call([sys.executable, str(ROOT / "tests" / "run_chapters.py"), "--only",
                                name, "--editions", args.edition, "--mode", args.mode,
                                "--keep", "", "-q"], stdout=subprocess.DEVNULL)
        seconds = time.perf_counter() - tic
        row = {"seconds": round(seconds, 1), "minutes": round(seconds / 60, 2),
               "passed": code == 0, **provenance(torch.device("cpu"))}
        record.setdefault(args.mode, {})[name] = row
        write("chapter_times", record)
        status = "passed" if code == 0 else "FAILED"
        print(f"chapter {name} ({args.mode}): {seconds:.0f} s, {status}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
