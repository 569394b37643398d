"""Course assignments (sslbook.teach, docs/teaching.md): release, local grading, Otter.

The round trip (``make test-teach``, under 4 minutes): a release of chapters 08-09 is built and
four synthetic submissions (the solutions; a partly wrong one from the mutation bank; one that
crashes with sys.exit and an exception; one that loops forever) are graded locally, and through
Otter-Grader's own runner (``otter run``) when Otter is installed, with the same scores.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from sslbook.teach import mutations, release  # noqa: E402
from sslbook.teach.grading import grade, grade_exercise  # noqa: E402
from sslbook.teach.spec import exercises  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXPECTED = {  # submission -> points of 8.1, 8.2, 9.1, 9.2, 9.3 (default points 2, 3, 2, 2, 3)
    "solutions.ipynb": (2, 3, 2, 2, 3),
    "partly-wrong.ipynb": (2, 0, 0, 2, 3),  # 8.2 without self-mask, 9.1 with m swapped
    "crashes.ipynb": (2, 0, 0, 2, 3),  # sys.exit in 8.2's cell, an exception in 9.1's
    "loops-forever.ipynb": (0, 0, 0, 0, 0),  # an infinite loop in the first exercise cell
}


def _otter() -> bool:
    try:
        import otter  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    out = tmp_path_factory.mktemp("release")
    written = release.release(["08", "09"], "en", out, seed=4242, otter=_otter())
    return out, written


def _code(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_student_notebook_keeps_the_chapter_and_holds_no_solution(lang):
    chosen = exercises(["08", "09"])
    student, instructor = release.build_notebooks(["08", "09"], chosen, lang)
    import jupytext

    chapter_code = [c for ch in ("08", "09") for c in
                    _code(jupytext.read(release.chapter_file(ch, lang)))]
    student_code = _code(student)
    # every chapter code cell is there, in order, unchanged; one setup cell is added
    setup = [c for c in student.cells if "exercise-setup" in c.metadata.get("tags", [])]
    assert len(setup) == 1
    assert [c for c in student_code if c != setup[0].source] == chapter_code
    assert all(not c.get("outputs") for c in student.cells if c.cell_type == "code")
    for ex in chosen:
        cells = [c for c in student.cells if f"exercise-{ex.id}" in c.metadata.get("tags", [])]
        assert len(cells) == 1 and "raise NotImplementedError" in cells[0].source
    text = json.dumps(student)
    for name, body in release.solution_sources("08").items() | \
            release.solution_sources("09").items():
        assert body.splitlines()[-1].strip() not in text, name  # no solution line leaks
    teaching = [c for c in student.cells if c.cell_type == "code"
                and "exercise" not in c.metadata["tags"] and c is not setup[0]]
    assert teaching and all("otter_ignore" in c.metadata["tags"] for c in teaching)
    solved = [c.source for c in instructor.cells if "exercise" in c.metadata.get("tags", [])]
    assert not any("raise NotImplementedError" in s for s in solved)


def test_release_writes_nothing_but_the_notebook_for_students(released):
    out, written = released
    assert [p.name for p in (out / "student").iterdir()] == [written["student"].name]
    info = json.loads(written["assignment"].read_text())
    assert [e["points"] for e in info["exercises"]] == [2, 3, 2, 2, 3]
    assert info["open_exercises"] == ["8.3"]


def test_references_are_not_where_students_import_checkers_from():
    with pytest.raises(ImportError):
        exec("from sslbook.exercises.ch08 import positive_mask, nt_xent_from_mask", {})
    with pytest.raises(ImportError):
        exec("from sslbook.exercises.ch09 import moco_logits", {})


def test_calling_the_library_is_flagged():
    namespace: dict = {}
    exec("import torch\nimport torch.nn.functional as F\n"
         + mutations.MUTANTS["8.2"]["library call"], namespace)
    row = grade_exercise("8.2", namespace, seed=5)
    assert not row["passed"] and row["points"] == 0
    assert "sslbook.losses.info_nce" in row["flagged"], row
    exec("from sslbook.exercises._reference import positive_mask as my_positive_mask", namespace)
    row = grade_exercise("8.1", namespace, seed=5)
    assert not row["passed"] and "sslbook.exercises._reference" in row["flagged"]


def test_points_are_overridden_per_release():
    assert [e.points for e in exercises(["08"], {"8.2": 5})] == [2, 5]
    with pytest.raises(ValueError, match="unknown"):
        exercises(["08"], {"7.9": 1})


@pytest.mark.slow
def test_round_trip_local_and_otter(released, tmp_path):
    out, written = released
    instructor = nbformat.read(str(written["instructor"]), as_version=4)
    paths = []
    for name, nb in mutations.round_trip_submissions(instructor).items():
        nbformat.write(nb, str(tmp_path / name))
        paths.append(tmp_path / name)
    table = grade(paths, ["08", "09"], tmp_path / "grades.csv", limit=20, seed=777)
    ids = ["8.1", "8.2", "9.1", "9.2", "9.3"]
    local = {row["submission"]: tuple(row[i] for i in ids) for row in table}
    assert local == EXPECTED, local
    with open(tmp_path / "grades.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["submission"] for r in rows] == [p.name for p in paths]
    assert {"total", "message 8.2", "status"} <= set(rows[0])
    assert "self-similarity" in next(r for r in rows if r["submission"] == "partly-wrong.ipynb")[
        "message 8.2"]
    assert "time limit" in next(r for r in rows if r["submission"] == "loops-forever.ipynb")[
        "status"]
    assert len(list((tmp_path / "feedback").glob("*.feedback.md"))) == 4
    if "otter_zip" not in written:
        pytest.skip("Otter-Grader is not installed (pip install -e '.[teach]'): local grading "
                    "checked, the Otter run is not")
    env = {**os.environ, "SSLBOOK_MODE": "fast", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    otter_scores = {}
    for path in paths:
        result = tmp_path / f"otter-{path.stem}"
        result.mkdir()  # otter run writes results.json into an existing folder
        try:  # Otter has no time limit of its own (Gradescope's applies): ours stands in for it
            subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(written["otter_zip"]),
                            "-o", str(result), str(path)], env=env, timeout=45,
                           capture_output=True, check=True)
            tests = json.loads((result / "results.json").read_text())["tests"]
            by_name = {t["name"]: t.get("score") for t in tests}
            otter_scores[path.name] = tuple(by_name[f"q{i.replace('.', '_')}"] for i in ids)
        except subprocess.TimeoutExpired:
            otter_scores[path.name] = (0,) * len(ids)
    assert otter_scores == EXPECTED, otter_scores


@pytest.mark.slow
def test_a_submission_that_kills_its_kernel_keeps_its_points(tmp_path):
    """os.kill(os.getpid(), 9) in the last exercise cell of chapter 1: the kernel dies, the two
    exercises graded before keep their points, the status says why."""
    out = tmp_path / "release"
    written = release.release(["01"], "en", out, seed=1, otter=False)
    instructor = nbformat.read(str(written["instructor"]), as_version=4)
    for cell in instructor.cells:
        if cell.cell_type == "code" and "def standardise(" in cell.source:
            cell.source = "import os\nos.kill(os.getpid(), 9)\n" + cell.source
    path = tmp_path / "kills-kernel.ipynb"
    nbformat.write(instructor, str(path))
    table = grade([path], ["01"], tmp_path / "grades.csv", limit=60, seed=3)
    row = table[0]
    assert (row["1.1"], row["1.2"], row["1.3"]) == (3, 2, 0), row
    assert "kernel died" in row["status"], row["status"]


@pytest.mark.slow
def test_released_student_notebook_runs_top_to_bottom_in_fast_mode(tmp_path):
    """The student notebook of chapter 1 (stubs unanswered) executes every cell without an
    error: the checkers report 'not attempted' instead of raising."""
    from nbclient import NotebookClient

    written = release.release(["01"], "zh", tmp_path, seed=1, otter=False)
    nb = nbformat.read(str(written["student"]), as_version=4)
    os.environ.setdefault("SSLBOOK_MODE", "fast")
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "chapters" / "zh")}})
    client.execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.get("outputs", []))
    assert printed.count("not attempted") >= 3, printed[-2000:]
