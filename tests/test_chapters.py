"""Every chapter has the sections a reader and a teacher rely on, in both editions."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ROOT / "chapters"
REQUIRED = {
    "en": ("Learning objectives", "Summary", "Exercises", "References"),
    "zh": ("学习目标", "小结", "练习", "参考文献"),
}
NUMBERED = sorted(p.name for p in (CHAPTERS / "en").glob("[0-9][0-9]-*.md"))


@pytest.mark.parametrize("edition", REQUIRED)
@pytest.mark.parametrize("name", NUMBERED)
def test_required_sections_in_order(edition, name):
    text = (CHAPTERS / edition / name).read_text(encoding="utf-8")
    found = re.findall(r"^## (.+?)\s*$", text, flags=re.M)
    positions = []
    for section in REQUIRED[edition]:
        assert section in found, f"{edition}/{name}: no '## {section}' section (has {found})"
        positions.append(found.index(section))
    assert positions[0] == 0, f"{edition}/{name}: '## {REQUIRED[edition][0]}' must come first"
    assert positions[1:] == sorted(positions[1:]), (
        f"{edition}/{name}: {', '.join(REQUIRED[edition][1:])} must come last, in this order")


@pytest.mark.parametrize("edition", REQUIRED)
@pytest.mark.parametrize("name", NUMBERED)
def test_title_runtime_and_setup(edition, name):
    notebook = jupytext.read(CHAPTERS / edition / name)
    first = notebook.cells[0]
    assert first.cell_type == "markdown" and first.source.startswith("# "), (
        f"{edition}/{name}: the first cell must be the '# N. Title' heading")
    assert re.match(r"# \d+\. ", first.source), f"{edition}/{name}: title must start '# N. '"
    objectives = next(c.source for c in notebook.cells if re.search(
        r"^## (Learning objectives|学习目标)", c.source, re.M))
    assert re.search(r"(min|分钟)", objectives), (
        f"{edition}/{name}: the learning objectives must state the measured full-mode runtime")
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    assert code and "mode()" in code[0], (
        f"{edition}/{name}: the first code cell must read sslbook.mode()")


@pytest.mark.parametrize("name", NUMBERED)
def test_exercises_have_checks(name):
    notebook = jupytext.read(CHAPTERS / "en" / name)
    cells = notebook.cells
    start = next(i for i, c in enumerate(cells) if c.source.startswith("## Exercises")
                 or "\n## Exercises" in c.source)
    exercise_code = [c.source for c in cells[start:] if c.cell_type == "code"]
    assert any("check" in src for src in exercise_code), (
        f"en/{name}: the exercises section has no code cell that runs a check")


def test_appendices_exist():
    for edition in REQUIRED:
        for appendix in ("appendix-glossary.md", "appendix-errata.md"):
            assert (CHAPTERS / edition / appendix).is_file(), f"missing {edition}/{appendix}"


def test_glossary_rows_have_three_columns():
    for edition in REQUIRED:
        text = (CHAPTERS / edition / "appendix-glossary.md").read_text(encoding="utf-8")
        rows = [r for r in text.splitlines() if r.startswith("|") and not r.startswith("|--")]
        assert len(rows) > 5, f"{edition}/appendix-glossary.md: too few terms"
        for row in rows:
            cells = [c.strip() for c in row.strip("|").split("|")]
            assert len(cells) == 3 and all(cells), f"{edition} glossary row malformed: {row}"
