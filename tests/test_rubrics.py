"""Rubrics of the written parts: in the instructor copy after their exercise, never in the
student notebook or the autograder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from sslbook.teach.release import release
from sslbook.teach.rubrics import RUBRICS
from sslbook.teach.rubrics_zh import RUBRICS_ZH
from sslbook.teach.spec import EXERCISES


def test_every_rubric_names_a_known_exercise():
    known = {ex.id for ex in EXERCISES} | {"8.3"}
    assert set(RUBRICS) <= known
    assert {"8.1", "8.3", "10.1", "10.2", "11.2", "11.3", "4.3"} <= set(RUBRICS)
    # every chapter with a written part has its rubric (2.1, 2.2 and 6.2 have none)
    assert {"1.1", "1.2", "1.3", "2.3", "2.4", "6.1", "6.3", "7.1", "7.2", "7.3", "9.1", "9.2",
            "9.3"} <= set(RUBRICS)


def test_every_rubric_has_its_chinese_text_with_the_same_numbers():
    assert set(RUBRICS_ZH) == set(RUBRICS)
    number = re.compile(r"\d+(?:\.\d+)?")
    for ex_id, text in RUBRICS.items():
        zh = RUBRICS_ZH[ex_id]
        assert re.search(r"[\u4e00-\u9fff]", zh), ex_id
        missing = set(number.findall(text)) - set(number.findall(zh))
        assert not missing, f"{ex_id}: numbers of the English rubric missing in Chinese: {missing}"


def test_chinese_rubrics_keep_the_glossary_terms():
    root = Path(__file__).resolve().parents[1]
    terms = json.loads((root / "chapters" / "terms-zh.json").read_text(encoding="utf-8"))["terms"]
    problems = [f"{ex_id}: '{banned}' -> '{term['zh']}'" for ex_id, text in RUBRICS_ZH.items()
                for term in terms for banned in term["banned"] if banned in text]
    assert not problems, problems
    italics = re.compile(r"(?<![*\w])\*(?=\S)[^*]+(?<=\S)\*(?![*\w])")
    assert not any('"' in text or italics.search(text) for text in RUBRICS_ZH.values())  # “…”


def test_the_8_3_rubric_quotes_simclr_table_3():
    """SimCLR (arXiv:2002.05709) Table 3: rotation 67.6 from h, 25.6 from g(h), chance 25;
    rotation was an augmentation during that pretraining (the table's caption)."""
    for text in (RUBRICS["8.3"], RUBRICS_ZH["8.3"]):
        for value in ("67.6", "25.6", "59.6", "99.5", "56.3", "96.6", "97.4", "99.3"):
            assert value in text


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
    rubric_81 = instructor.cells[index["rubric-8.1"]].source
    assert ("负样本" in rubric_81) == (lang == "zh")
    assert ("negatives" in rubric_81) == (lang == "en")
    text = json.dumps(student.cells) + json.dumps(
        [p.read_text() for p in (tmp_path / "autograder").rglob("*.json")])
    assert "rubric" not in text.lower() and "1 / 8192" not in text
