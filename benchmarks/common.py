"""Provenance and output for the benchmarks: every result records its command, commit, machine."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(os.environ.get("SSLBOOK_RESULTS", ROOT / "results"))  # run_all --quick: elsewhere


def recorded_warmup(epochs: int) -> float:
    """Warm-up epochs of every run recorded before each method's recipe set its own warm-up
    (``default_optimizer["warmup_epochs"]``; MoCo v2 and SimSiam have none): 10% of the run,
    at most 10 epochs, for every method. Passing it keeps those records reproducible."""
    return min(0.1 * epochs, 10)


def commit() -> str:
    """The checkout's short commit (``-dirty`` with uncommitted changes); ``$SSLBOOK_COMMIT`` where
    the copy has no git history (e.g. a working tree sent to a GPU machine)."""
    if os.environ.get("SSLBOOK_COMMIT"):
        return os.environ["SSLBOOK_COMMIT"]
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine(device: torch.device) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    text = f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, {device.type}"
    if device.type == "cuda":
        text += f" ({torch.cuda.get_device_name(device)})"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return text + f", load average at start {load:.1f}"


def provenance(device: torch.device) -> dict:
    return {"command": " ".join([Path(sys.executable).name, *sys.argv]), "commit": commit(),
            "machine": machine(device),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def table(rows: list[dict], columns: list[tuple[str, str, str]]) -> str:
    """A Markdown table; ``columns`` are (key, header, format) triples."""
    def cell(row, key, fmt):
        value = row.get(key)
        return "" if value is None else (format(value, fmt) if fmt else str(value))

    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(r, k, f) for k, _, f in columns) + " |" for r in rows]
    return "\n".join(lines)


def write(name: str, record: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path)
    return path
