"""`make bench`: run every benchmark in turn (long: about 90 minutes on a 2-core CPU).

    python benchmarks/run_all.py [--quick]

``--quick`` shrinks the pretraining budget to 1 minute per method (a smoke run; its numbers
are not the book's).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    minutes = ["--minutes", "1"] if quick else []
    runs = [["throughput.py"], ["pretrain_fmnist.py", "--baselines"],
            ["pretrain_fmnist.py", *minutes]]
    for script, *args in runs:
        print(f"== {script} {' '.join(args)}", flush=True)
        code = subprocess.call([sys.executable, str(HERE / script), *args])
        if code:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
