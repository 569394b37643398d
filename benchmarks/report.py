"""Render the recorded benchmark tables into ``benchmarks/README.md``.

    python benchmarks/report.py          # rewrites the part between the two markers

The tables are read from ``results/*.json`` only, so the README shows what was recorded, with
each record's command, commit, machine and date; nothing is typed by hand.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, table  # noqa: E402

README = Path(__file__).resolve().parent / "README.md"
BEGIN, END = "<!-- tables: begin (benchmarks/report.py) -->", "<!-- tables: end -->"
PRETRAIN_COLUMNS = [("method", "method", ""), ("batch_size", "batch", ""),
                    ("epochs", "epochs", ""),
                    ("wall_minutes", "minutes", ".1f"), ("images_per_second", "images/s", ".0f"),
                    ("peak_memory_mb", "peak MB", ".0f"), ("knn", "kNN (k=200)", ".4f"),
                    ("linear", "linear (all)", ".4f"), ("linear_60", "linear (60/class)", ".4f"),
                    ("linear_60_std", "± std (3 draws)", ".4f")]
THROUGHPUT_COLUMNS = [("setting", "images", ""), ("width", "width", ""),
                      ("pipeline", "pipeline", ""),
                      ("images_per_second", "training images/s", ".0f"),
                      ("tflops", "achieved TFLOP/s", ".4f"),
                      ("views_only_images_per_second", "views alone, images/s", ".0f")]


def provenance_lines(rows: list[dict]) -> list[str]:
    seen = sorted({(r["command"], r["commit"], r["machine"], r["date"][:10]) for r in rows
                   if "command" in r})
    return [f"- `{c}` at commit `{k}` on {m}, {d}" for c, k, m, d in seen]


def pretrain_section() -> list[str]:
    path = RESULTS / "pretrain_fmnist.json"
    if not path.exists():
        return ["### Pretraining on Fashion-MNIST", "", "Not recorded yet: run "
                "`python benchmarks/pretrain_fmnist.py --baselines` and "
                "`python benchmarks/pretrain_fmnist.py`."]
    rows = json.loads(path.read_text())["rows"]
    return ["### Pretraining on Fashion-MNIST (`results/pretrain_fmnist.json`)", "",
            table(rows, PRETRAIN_COLUMNS), "", "Recorded by:", *provenance_lines(rows)]


def throughput_ratios(setting: dict) -> str:
    """On-device / per-image ratios of one measured setting (an entry of ``settings``)."""
    return (f"{setting['setting']}, width {setting['width']}: {setting['ratio']:.2f}x training "
            f"(model alone {setting['ceiling_ratio']:.2f}x), "
            f"{setting['views_only_ratio']:.1f}x views alone")


def throughput_section() -> list[str]:
    lines = []
    for path in sorted(RESULTS.glob("throughput*.json")):
        record = json.loads(path.read_text())
        ratios = "; ".join(throughput_ratios(s) for s in record["settings"])
        lines += [f"### Throughput (`results/{path.name}`)", "",
                  table(record["rows"], THROUGHPUT_COLUMNS), "",
                  f"On-device / per-image: {ratios}. Batch {record['batch_size']}, "
                  f"{record['steps']} timed steps x {record['rounds']} interleaved rounds "
                  f"(median), model: {record['model']}.", "",
                  "Recorded by:", *provenance_lines([record]), ""]
    return lines or ["### Throughput", "", "Not recorded yet: run "
                     "`python benchmarks/throughput.py`."]


def main() -> int:
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"{README} lacks the markers {BEGIN} ... {END}", file=sys.stderr)
        return 2
    body = "\n".join([*throughput_section(), *pretrain_section()])
    head, rest = text.split(BEGIN, 1)
    README.write_text(head + BEGIN + "\n" + body.rstrip() + "\n" + END + rest.split(END, 1)[1])
    print(body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
