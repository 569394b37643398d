"""Release an assignment: student notebook, instructor copy, autograder package.

The notebooks are the chapters themselves (chapters/LANG/NN-*.md, read with jupytext), one after
the other, without outputs: the teaching cells are kept so the notebook runs top to bottom (they
carry the tags ``teaching`` and ``otter_ignore``, so that graders skip them), a setup cell with the
imports the exercises use is inserted before the first exercise cell, and the exercise cells keep
their stubs. The instructor copy has the stubs replaced by chapters/solutions/chNN.py and a
rubric cell for the written part of each exercise that has one (:mod:`sslbook.teach.rubrics`). The
autograder folder holds assignment.json (exercises, points) and, when Otter-Grader is installed,
an Otter master notebook and the autograder zip that ``otter assign`` builds from it (for
Gradescope; hidden tests with a seed drawn at release time). Only ``student/`` goes to students.
"""

from __future__ import annotations

import ast
import copy
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from sslbook.teach.grading import EXERCISE_TAG, SETUP_TAG, TEACHING_TAG, defines, setup_source
from sslbook.teach.rubrics import with_rubrics
from sslbook.teach.spec import OPEN_EXERCISES, Exercise, exercises

ROOT = Path(__file__).resolve().parents[2]
IGNORE_TAG = "otter_ignore"  # Otter skips these cells when it grades a submission


def chapter_file(chapter: str, lang: str, chapters_dir: Path | None = None) -> Path:
    found = sorted((chapters_dir or ROOT / "chapters" / lang).glob(f"{chapter}-*.md"))
    if not found:
        raise ValueError(f"no chapter {chapter} in {chapters_dir or ROOT / 'chapters' / lang}")
    return found[0]


def solution_sources(chapter: str) -> dict[str, str]:
    """{function name: source} of chapters/solutions/chNN.py (decorators included)."""
    path = ROOT / "chapters" / "solutions" / f"ch{chapter}.py"
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    lines = text.splitlines()
    out = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            out[node.name] = "\n".join(lines[start - 1:node.end_lineno])
    return out


def with_solution(source: str, function: str, solution: str) -> str:
    """Replace the stub ``def function(...)`` of an exercise cell by the solution's source."""
    tree = ast.parse(source)
    lines = source.splitlines()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            start = min([d.lineno for d in node.decorator_list] + [node.lineno])
            return "\n".join(lines[:start - 1] + solution.splitlines() + lines[node.end_lineno:])
    raise ValueError(f"the exercise cell does not define {function}")


def build_notebooks(chapters: list[str], chosen: list[Exercise], lang: str,
                    chapters_dir: Path | None = None):
    """(student notebook, instructor notebook)."""
    import jupytext
    import nbformat

    student = nbformat.v4.new_notebook()
    student.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)",
                                       "language": "python", "name": "python3"},
                        "language_info": {"name": "python"}}
    setup_done = False
    for chapter in chapters:
        nb = jupytext.read(chapter_file(chapter, lang, chapters_dir))
        mine = [ex for ex in chosen if ex.chapter == chapter]
        for cell in nb.cells:
            cell = copy.deepcopy(cell)
            cell.metadata = {k: v for k, v in cell.metadata.items() if k == "tags"}
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
                tags = [t for t in cell.metadata.get("tags", []) if t not in ("remove-input",)]
                graded = [ex for ex in mine if defines(cell.source, ex.function)]
                if graded:
                    if not setup_done:
                        setup = nbformat.v4.new_code_cell(setup_source(lang))
                        setup.metadata["tags"] = [SETUP_TAG]
                        student.cells.append(setup)
                        setup_done = True
                    tags += [EXERCISE_TAG] + [f"exercise-{ex.id}" for ex in graded]
                else:
                    tags += [TEACHING_TAG, IGNORE_TAG]
                cell.metadata["tags"] = tags
            student.cells.append(cell)
    for i, cell in enumerate(student.cells):
        cell["id"] = f"cell-{i}"
    instructor = copy.deepcopy(student)
    solutions = {ch: solution_sources(ch) for ch in chapters}
    for cell in instructor.cells:
        for ex in chosen:
            if cell.cell_type == "code" and defines(cell.source, ex.function):
                cell.source = with_solution(cell.source, ex.function,
                                            solutions[ex.chapter][ex.function])
    return student, instructor


def otter_master(instructor, chosen: list[Exercise], name: str, seed: int):
    """An Otter Assign master notebook (format v1): the exercise cells as questions, each with
    one hidden test that runs :func:`sslbook.teach.grading.grade_exercise` with ``seed``."""
    import nbformat

    def raw(text: str):
        return nbformat.v4.new_raw_cell(text)

    config = {"name": name, "requirements": "requirements.txt", "files": ["sslbook"],
              "export_cell": False, "check_all_cell": False, "init_cell": False,
              "run_tests": False, "generate": {"show_stdout": True, "show_hidden": False,
                                               "pdf": False}}
    master = nbformat.v4.new_notebook()
    master.metadata = copy.deepcopy(instructor.metadata)
    master.cells.append(raw("# ASSIGNMENT CONFIG\n" + _yaml(config)))
    for cell in instructor.cells:
        graded = [ex for ex in chosen if cell.cell_type == "code"
                  and defines(cell.source, ex.function)]
        if not graded:
            master.cells.append(copy.deepcopy(cell))
            continue
        ex = graded[0]
        master.cells.append(raw(f"# BEGIN QUESTION\nname: {ex.question}\npoints: {ex.points:g}"))
        solution = copy.deepcopy(cell)
        solution.metadata["tags"] = [t for t in solution.metadata.get("tags", [])
                                     if t != IGNORE_TAG]
        master.cells.append(solution)
        master.cells.append(raw("# BEGIN TESTS"))
        for e in graded:
            master.cells.append(nbformat.v4.new_code_cell(
                "# HIDDEN\nfrom sslbook.teach.grading import grade_exercise\n"
                f"_r = grade_exercise({e.id!r}, globals(), {seed})\n"
                "assert _r['passed'], _r['message']"))
        master.cells.append(raw("# END TESTS"))
        master.cells.append(raw("# END QUESTION"))
    for i, cell in enumerate(master.cells):
        cell["id"] = f"m-{i}"
    return master


def _yaml(value, indent: int = 0) -> str:
    pad = " " * indent
    lines = []
    for key, v in value.items():
        if isinstance(v, dict):
            lines.append(f"{pad}{key}:\n{_yaml(v, indent + 2)}")
        else:
            lines.append(f"{pad}{key}: {json.dumps(v)}")
    return "\n".join(lines)


def otter_available() -> bool:
    try:
        import otter  # noqa: F401
    except ImportError:
        return False
    return True


def release(chapters: list[str], lang: str, out: Path, points: dict[str, float] | None = None,
            seed: int | None = None, otter: bool | None = None,
            chapters_dir: Path | None = None) -> dict:
    """Write OUT/student, OUT/instructor and OUT/autograder; returns what was written."""
    import nbformat

    chapters = [c.zfill(2) for c in chapters]
    chosen = exercises(chapters, points)
    name = f"sslbook-{'-'.join(chapters)}-{lang}"
    student, instructor = build_notebooks(chapters, chosen, lang, chapters_dir)
    for nb in (student, instructor):  # Otter checks that a submission is for this assignment
        nb.metadata["otter"] = {"assignment_name": name}
    seed = secrets.randbelow(2**31 - 1) if seed is None else seed
    out = Path(out)
    for sub in ("student", "instructor", "autograder"):
        shutil.rmtree(out / sub, ignore_errors=True)
        (out / sub).mkdir(parents=True)
    written = {"student": out / "student" / f"{name}.ipynb",
               "instructor": out / "instructor" / f"{name}-solutions.ipynb",
               "assignment": out / "autograder" / "assignment.json"}
    nbformat.write(student, str(written["student"]))
    ids = [ex.id for ex in chosen] + [e for c in chapters for e in OPEN_EXERCISES.get(c, ())]
    nbformat.write(with_rubrics(instructor, ids, lang), str(written["instructor"]))
    written["assignment"].write_text(json.dumps({
        "name": name, "lang": lang, "chapters": chapters,
        "exercises": [ex.to_dict() for ex in chosen],
        "open_exercises": [e for c in chapters for e in OPEN_EXERCISES.get(c, ())],
        "otter_hidden_seed": seed}, indent=1, ensure_ascii=False))
    if otter is None:
        otter = otter_available()
    if otter:
        written["otter_zip"] = build_otter(instructor, chosen, name, seed, out / "autograder")
    return written


def build_otter(instructor, chosen: list[Exercise], name: str, seed: int, where: Path) -> Path:
    """Run ``otter assign`` on the master notebook; returns the autograder zip."""
    import nbformat

    master_dir = where / "otter"
    master_dir.mkdir(parents=True, exist_ok=True)
    nbformat.write(otter_master(instructor, chosen, name, seed), str(master_dir / "master.ipynb"))
    shutil.copytree(ROOT / "sslbook", master_dir / "sslbook",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (master_dir / "requirements.txt").write_text(
        "torch>=2.4\ntorchvision>=0.19\nnumpy>=1.24\nscikit-learn>=1.3\nmatplotlib>=3.7\n"
        "tqdm>=4.60\njupytext>=1.16\n")
    dist = master_dir / "dist"
    proc = subprocess.run([sys.executable, "-m", "otter", "assign", "--no-run-tests",
                           "--no-pdfs", "master.ipynb", "dist"], cwd=master_dir,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"otter assign failed:\n{proc.stdout}\n{proc.stderr}")
    shutil.rmtree(dist / "student", ignore_errors=True)  # ours is OUT/student
    zips = sorted((dist / "autograder").glob("*.zip"))
    if not zips:
        raise RuntimeError(f"otter assign wrote no autograder zip in {dist / 'autograder'}")
    return zips[0]
