"""``python -m sslbook assignment release|grade`` (wired into sslbook/__main__.py lazily)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _points(values: list[str] | None) -> dict[str, float]:
    out = {}
    for item in values or []:
        ex, _, value = item.partition("=")
        try:
            out[ex.strip()] = float(value)
        except ValueError as err:
            raise ValueError(f"--points takes EXERCISE=POINTS, e.g. 8.2=4, got {item!r}") from err
    return out


def add_parser(sub) -> None:
    p = sub.add_parser("assignment", help="course assignments: release notebooks, grade them "
                                          "(docs/teaching.md)")
    actions = p.add_subparsers(dest="action", required=True)
    r = actions.add_parser("release", help="student notebook, instructor copy, autograder")
    r.add_argument("chapters", nargs="+", help="chapter numbers, e.g. 08 09 (one assignment)")
    r.add_argument("--lang", choices=("en", "zh"), default="en")
    r.add_argument("--out", required=True, help="folder for student/, instructor/, autograder/")
    r.add_argument("--points", nargs="*", metavar="EX=POINTS", help="override, e.g. 8.2=4")
    r.add_argument("--seed", type=int, help="seed of Otter's hidden tests (default: random)")
    r.add_argument("--no-otter", action="store_true", help="skip the Otter autograder zip")
    r.set_defaults(run=run_release)
    g = actions.add_parser("grade", help="grade submissions locally, one fresh kernel each")
    g.add_argument("submissions", nargs="+", help="the students' .ipynb files")
    g.add_argument("--out", required=True, help="grades.csv")
    g.add_argument("--release", help="a release folder: its chapters and points are used")
    g.add_argument("--chapters", nargs="*", help="without --release: chapters, e.g. 08 09")
    g.add_argument("--points", nargs="*", metavar="EX=POINTS", help="override, e.g. 8.2=4")
    g.add_argument("--timeout", type=float, default=60.0, help="seconds per notebook (60)")
    g.add_argument("--seed", type=int, help="hidden-check seed (default: a fresh random one)")
    g.add_argument("--feedback", help="folder for the feedback files (default: next to --out)")
    g.set_defaults(run=run_grade)


def run_release(args: argparse.Namespace) -> int:
    from sslbook.teach.release import release

    written = release(args.chapters, args.lang, Path(args.out), _points(args.points),
                      args.seed, otter=False if args.no_otter else None)
    for what, path in written.items():
        print(f"{what}: {path}")
    if "otter_zip" not in written and not args.no_otter:
        print("otter: not installed (pip install -e '.[teach]'); no Gradescope autograder built")
    return 0


def run_grade(args: argparse.Namespace) -> int:
    from sslbook.teach.grading import grade

    chapters, points = args.chapters, _points(args.points)
    if args.release:
        info = json.loads((Path(args.release) / "autograder" / "assignment.json").read_text())
        chapters = chapters or info["chapters"]
        points = {**{e["id"]: e["points"] for e in info["exercises"]}, **points}
    if not chapters:
        raise ValueError("give --release DIR or --chapters, e.g. --chapters 08 09")
    for path in args.submissions:
        if not Path(path).is_file():
            raise ValueError(f"no such submission: {path}")
    grade([Path(p) for p in args.submissions], [c.zfill(2) for c in chapters], Path(args.out),
          Path(args.feedback) if args.feedback else None, args.timeout, args.seed, points)
    print(f"wrote {args.out}")
    return 0
