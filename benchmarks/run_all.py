"""`make bench`: run every benchmark in turn (long: about 95 minutes on a 2-core CPU).

    python benchmarks/run_all.py [--quick]

``--quick`` shrinks the pretraining budget to 1 minute per method and the throughput run to
one round at width 32 (a smoke run; its numbers are not the book's, so it writes them under
``runs/quick/`` and leaves ``results/`` alone).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK = HERE.parent / "runs" / "quick"


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    minutes = ["--minutes", "1"] if quick else []
    rounds = ["--rounds", "1", "--widths", "32"] if quick else []
    out = ["--out", str(QUICK / "pretrain_fmnist")] if quick else []
    env = {**os.environ, "SSLBOOK_RESULTS": str(QUICK / "results")} if quick else None
    runs = [["throughput.py", *rounds], ["pretrain_fmnist.py", "--baselines", *out],
            ["pretrain_fmnist.py", *minutes, *out]]
    if quick:
        shutil.rmtree(QUICK, ignore_errors=True)  # a smoke run starts afresh, never resumes
    for script, *args in runs:
        print(f"== {script} {' '.join(args)}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / script), *args], env=env)
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
