"""Execute one graded notebook in a fresh kernel: ``python -m sslbook.teach.runner NB STATUS T``.

The cells share one time budget of T seconds (each cell may use what is left); when it runs
out, or the kernel dies (``os._exit``, a segfault), execution stops and STATUS (JSON) says why.
An exception in a cell (``sys.exit`` included) does not stop the notebook.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path


def main(nb_path: str, status_path: str, limit: str) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    budget = float(limit)
    nb = nbformat.read(nb_path, as_version=4)
    # A kernel spec for this very interpreter, whatever "python3" means on this machine.
    spec_root = Path(tempfile.mkdtemp(prefix="sslbook-kernel-"))
    (spec_root / "kernels" / "sslbook-grader").mkdir(parents=True)
    (spec_root / "kernels" / "sslbook-grader" / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "sslbook grader", "language": "python"}))
    import os

    os.environ["JUPYTER_PATH"] = str(spec_root)
    deadline = [None]

    def remaining(cell) -> int:
        if deadline[0] is None:  # the budget starts once the kernel is up
            deadline[0] = time.time() + budget
        return max(1, int(deadline[0] - time.time()))

    client = NotebookClient(nb, kernel_name="sslbook-grader", allow_errors=True,
                            timeout_func=remaining, startup_timeout=60,
                            resources={"metadata": {"path": str(Path(nb_path).parent)}})
    status = {"status": "completed"}
    try:
        client.execute()
    except CellTimeoutError:
        status = {"status": f"time limit ({budget:g} s) reached"}
    except DeadKernelError:
        status = {"status": "the kernel died (os._exit, a crash or out of memory)"}
    except Exception as err:  # noqa: BLE001
        status = {"status": f"execution failed: {type(err).__name__}: {err}"}
    Path(status_path).write_text(json.dumps(status))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:4]))
