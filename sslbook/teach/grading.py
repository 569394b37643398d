"""Hidden checks, library-use detection and the local grader.

A submission is graded in a fresh kernel (:mod:`sslbook.teach.runner`, a subprocess, so that a
crash, an infinite loop or ``sys.exit`` of one submission never stops the others). Only the setup
cell and the exercise cells run (the chapter's teaching cells are skipped: they take minutes and
are not graded); after the cell that defines an exercise's function, a grading cell calls
:func:`record_exercise`, which runs the checker twice, with its default inputs (those the student
saw) and with a hidden ``seed`` drawn at grading time, and appends the result to a JSON-lines file.
Points already earned survive a later crash or time-out.

While the student's function runs, :func:`watch_calls` records every call into code of the
modules an exercise forbids (the library function the exercise asks to re-write, and the private
reference answers); such an answer scores 0 and is flagged.
"""

from __future__ import annotations

import csv
import importlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from sslbook.teach.spec import Exercise, exercises

SETUP_TAG, EXERCISE_TAG, TEACHING_TAG = "exercise-setup", "exercise", "teaching"
RESULTS_ENV = "SSLBOOK_GRADE_RESULTS"
SOLUTIONS_DIR = Path(__file__).resolve().parents[2] / "chapters" / "solutions"


def _module_file(name: str) -> str:
    """The file of a module, or the folder (ending with a separator) of a package: a package's
    submodules are forbidden with it."""
    path = Path(importlib.import_module(name).__file__).resolve()
    return str(path.parent) + os.sep if path.name == "__init__.py" else str(path)


@contextmanager
def watch_calls(modules: tuple[str, ...]):
    """Record calls, made inside the block, to Python functions defined in these modules (a
    package: in any of its modules) or in chapters/solutions; yields the list of
    ``module.function`` names called."""
    files = {_module_file(m): m for m in modules}
    folders = [(f, m) for f, m in files.items() if f.endswith(os.sep)]
    solutions = str(SOLUTIONS_DIR)
    seen: list[str] = []
    previous = sys.getprofile()

    def profiler(frame, event, arg):
        if event == "call":
            filename = frame.f_code.co_filename
            where = files.get(filename)
            if where is None:
                where = next((m for f, m in folders if filename.startswith(f)), None)
            if where is None and filename.startswith(solutions):
                where = "chapters/solutions/" + Path(filename).name
            if where is not None:
                name = f"{where}.{getattr(frame.f_code, 'co_qualname', frame.f_code.co_name)}"
                if name not in seen:
                    seen.append(name)

    sys.setprofile(profiler)
    try:
        yield seen
    finally:
        sys.setprofile(previous)


def _checker(ex: Exercise):
    return getattr(importlib.import_module(f"sslbook.exercises.ch{ex.chapter}"), ex.checker)


def grade_exercise(ex: Exercise | str, namespace: dict, seed: int) -> dict:
    """Grade the function ``ex.function`` of ``namespace`` (a notebook's globals): the checker
    on its default inputs and again with the hidden ``seed``; 0 points when the answer calls a
    forbidden module. Returns {exercise, passed, points, max_points, flagged, message}."""
    if isinstance(ex, str):
        ex = next(e for e in exercises([ex.split(".")[0].zfill(2)]) if e.id == ex)
    row = {"exercise": ex.id, "passed": False, "points": 0.0, "max_points": ex.points,
           "flagged": "", "message": ""}
    fn = namespace.get(ex.function)
    if not callable(fn):
        row["message"] = (f"{ex.function} is not defined (the exercise cell did not run or was "
                          "removed)")
        return row
    calls: list[str] = []

    def tracked(*args, **kwargs):
        with watch_calls(ex.forbidden) as seen:
            try:
                return fn(*args, **kwargs)
            finally:
                calls.extend(c for c in seen if c not in calls)

    check = _checker(ex)
    messages = []
    passed = True
    for label, s in (("visible check", None), ("hidden check", seed)):
        result = check(tracked, verbose=False, seed=s)
        passed &= result.passed
        messages.append(f"{label}: {'pass' if result.passed else 'FAIL'}, {result.message}")
    if calls:
        row["flagged"] = "calls " + ", ".join(calls)
        messages.insert(0, f"FLAGGED: {ex.function} calls {', '.join(calls)}; the exercise asks "
                           "you to write this yourself, so it scores 0")
        passed = False
    row.update(passed=passed, points=ex.points if passed else 0.0, message="; ".join(messages))
    return row


def record_exercise(exercise_id: str, namespace: dict, seed: int, points: float,
                    path: str | None = None) -> None:
    """Called by the grading cells: grade one exercise, append the row to the results file."""
    ex = next(e for e in exercises([exercise_id.split(".")[0].zfill(2)]) if e.id == exercise_id)
    ex = Exercise(**{**ex.to_dict(), "points": points})
    try:
        row = grade_exercise(ex, namespace, seed)
    except BaseException as err:  # noqa: BLE001 - the student's code may raise anything
        row = {"exercise": ex.id, "passed": False, "points": 0.0, "max_points": ex.points,
               "flagged": "", "message": f"grading raised {type(err).__name__}: {err}"}
    with open(path or os.environ[RESULTS_ENV], "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


# --------------------------------------------------------------------------- notebooks
def defines(source: str, function: str) -> bool:
    return f"def {function}(" in source


def setup_source(lang: str = "en") -> str:
    comment = {
        "en": "# Setup for the exercises. The grader runs only this cell and the exercise cells "
              "below,\n# in a fresh kernel: keep all of your code in the exercise cells.\n",
        "zh": "# 练习的准备单元。评分时只在全新内核中运行本单元和下面的练习单元，\n"
              "# 所以请把你的全部代码写在练习单元里。\n",
    }[lang]
    return comment + ("import copy\nimport math\n\nimport torch\nimport torch.nn.functional as F\n"
                      "from torch import nn")


def graded_notebook(nb, chosen: list[Exercise], seed: int, results: str):
    """The notebook the grader executes: the submission's setup cell and exercise cells, each
    followed by grading cells for the exercises it defines (the last definition wins)."""
    import nbformat

    cells = [c for c in nb.cells if c.cell_type == "code"]
    setup = [c for c in cells if SETUP_TAG in c.get("metadata", {}).get("tags", [])]
    picked = [c for c in cells if EXERCISE_TAG in c.get("metadata", {}).get("tags", [])
              or any(defines(c.source, ex.function) for ex in chosen)]
    last = {ex.id: max((i for i, c in enumerate(picked) if defines(c.source, ex.function)),
                       default=None) for ex in chosen}
    out = nbformat.v4.new_notebook()
    out.metadata = nb.metadata
    out.cells.append(nbformat.v4.new_code_cell(setup[0].source if setup else setup_source()))

    def grade_cell(ex: Exercise):
        return nbformat.v4.new_code_cell(
            "from sslbook.teach.grading import record_exercise as _sslbook_record\n"
            f"_sslbook_record({ex.id!r}, globals(), {seed}, {ex.points}, {results!r})")

    for i, cell in enumerate(picked):
        out.cells.append(nbformat.v4.new_code_cell(cell.source))
        out.cells += [grade_cell(ex) for ex in chosen if last[ex.id] == i]
    out.cells += [grade_cell(ex) for ex in chosen if last[ex.id] is None]
    return out


def _run_one(path: Path, chosen: list[Exercise], seed: int, limit: float, work: Path) -> dict:
    """Grade one submission in a subprocess; returns {status, rows}."""
    import nbformat

    results, status = work / "results.jsonl", work / "status.json"
    try:
        nb = nbformat.read(str(path), as_version=4)
    except Exception as err:  # noqa: BLE001 - not a notebook, corrupt JSON ...
        return {"status": f"not a readable notebook ({type(err).__name__}: {err})", "rows": {}}
    graded = work / "graded.ipynb"
    nbformat.write(graded_notebook(nb, chosen, seed, str(results)), str(graded))
    results.touch()
    env = {**os.environ, "SSLBOOK_MODE": "fast", "OMP_NUM_THREADS": "1",
           "MPLBACKEND": "Agg", "PYTHONPATH": os.pathsep.join(
               [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "sslbook.teach.runner", str(graded), str(status), str(limit)]
    try:
        proc = subprocess.Popen(cmd, env=env, cwd=work, start_new_session=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        log = proc.communicate(timeout=limit + 90)[0]  # + kernel start-up and shut-down
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        log = b""
        status.write_text(json.dumps({"status": f"time limit ({limit:g} s) reached"}))
    rows = {}
    for line in results.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        rows[row["exercise"]] = row
    info = json.loads(status.read_text()) if status.exists() else {
        "status": "the grader failed: " + log.decode(errors="replace")[-500:]}
    return {"status": info["status"], "rows": rows}


def grade(paths: list[Path], chapters: list[str], out_csv: Path, feedback_dir: Path | None = None,
          limit: float = 60.0, seed: int | None = None,
          points: dict[str, float] | None = None) -> list[dict]:
    """Grade each submission; write one CSV row per submission and a feedback file for each."""
    chosen = exercises(chapters, points)
    seed = secrets.randbelow(2**31 - 1) if seed is None else seed
    feedback_dir = feedback_dir or out_csv.parent / "feedback"
    feedback_dir.mkdir(parents=True, exist_ok=True)
    total_max = sum(ex.points for ex in chosen)
    table = []
    for path in paths:
        start = time.time()
        with tempfile.TemporaryDirectory(prefix="sslbook-grade-") as tmp:
            outcome = _run_one(Path(path), chosen, seed, limit, Path(tmp))
        row: dict = {"submission": Path(path).name}
        for ex in chosen:
            r = outcome["rows"].get(ex.id)
            row[ex.id] = r["points"] if r else 0.0
        row["total"] = sum(row[ex.id] for ex in chosen)
        row["max"] = total_max
        row["status"] = outcome["status"]
        for ex in chosen:
            r = outcome["rows"].get(ex.id)
            row[f"message {ex.id}"] = (r["message"] if r else
                                       f"not graded: {outcome['status']} before this exercise")
            row[f"flagged {ex.id}"] = r["flagged"] if r else ""
        row["seconds"] = round(time.time() - start, 1)
        row["seed"] = seed
        table.append(row)
        lines = [f"# Feedback: {row['submission']}", "",
                 f"Score: {row['total']:g} / {total_max:g} ({outcome['status']})", ""]
        for ex in chosen:
            lines += [f"## Exercise {ex.id}: {row[ex.id]:g} / {ex.points:g}", "",
                      row[f"message {ex.id}"], ""]
        (feedback_dir / f"{Path(path).stem}.feedback.md").write_text("\n".join(lines),
                                                                    encoding="utf-8")
        print(f"{row['submission']}: {row['total']:g} / {total_max:g} ({outcome['status']}, "
              f"{row['seconds']:g} s)", flush=True)
    out_csv.parent.mkdir(parents=True, exist_ok=True)
    with open(out_csv, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    return table
