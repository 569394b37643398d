"""Rubrics of the written parts: in the instructor copy after their exercise, never in the
student notebook or the autograder."""

from __future__ import annotations

import json

import nbformat
import pytest

from sslbook.teach.release import release
from sslbook.teach.rubrics import RUBRICS
from sslbook.teach.spec import EXERCISES


def test_every_rubric_names_a_known_exercise():
    known = {ex.id for ex in EXERCISES} | {"8.3"}
    assert set(RUBRICS) <= known
    assert {"8.1", "8.3", "10.1", "10.2", "11.2", "11.3", "4.3"} <= set(RUBRICS)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_rubrics_go_to_the_instructor_copy_only(tmp_path, lang):
    written = release(["08", "10"], lang, tmp_path, seed=1, otter=False)
    instructor = nbformat.read(str(written["instructor"]), as_version=4)
    student = nbformat.read(str(written["student"]), as_version=4)
    tags = [t for c in instructor.cells for t in c.metadata.get("tags", [])]
    for ex_id in ("8.1", "8.2", "8.3", "10.1", "10.2", "10.3"):
        assert f"rubric-{ex_id}" in tags, ex_id
    index = {t: i for i, c in enumerate(instructor.cells) for t in c.metadata.get("tags", [])}
    # after the exercise's own code cell (8.1), after the heading for the open exercise 8.3
    assert index["rubric-8.1"] == index["exercise-8.1"] + 1
    heading = "### Exercise 8.3" if lang == "en" else "### 练习 8.3"
    assert heading in instructor.cells[index["rubric-8.3"] - 1].source
    assert "1 / 8192" in instructor.cells[index["rubric-8.1"]].source
    text = json.dumps(student.cells) + json.dumps(
        [p.read_text() for p in (tmp_path / "autograder").rglob("*.json")])
    assert "rubric" not in text.lower() and "1 / 8192" not in text
