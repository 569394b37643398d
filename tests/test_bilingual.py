"""The English and Chinese editions cannot drift apart: same files, same code, matching prose."""

from __future__ import annotations

import re
from pathlib import Path

import jupytext
import pytest

CHAPTERS = Path(__file__).resolve().parents[1] / "chapters"
EDITIONS = ("en", "zh")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
LATIN = re.compile(r"[A-Za-z]")


def chapter_files(edition: str) -> list[str]:
    return sorted(p.name for p in (CHAPTERS / edition).glob("*.md"))


def read(edition: str, name: str):
    return jupytext.read(CHAPTERS / edition / name)


def prose(source: str) -> str:
    """Markdown without code, maths, links' targets, HTML, admonition options and citations."""
    source = re.sub(r"```.*?```", " ", source, flags=re.S)  # fenced blocks' openers stay prose
    source = re.sub(r"\$\$.*?\$\$|\$[^$\n]+\$", " ", source, flags=re.S)
    source = re.sub(r"`[^`]*`", " ", source)
    source = re.sub(r"\]\([^)]*\)|https?://\S+|<[^>]+>", " ", source)
    source = re.sub(r"arXiv:\S+|\b[A-Z][A-Za-z-]+ et al\.", " ", source)
    return source


def headings(source: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^(#+) ", source, flags=re.M)]


def test_both_editions_hold_the_same_files():
    en, zh = chapter_files("en"), chapter_files("zh")
    assert en, "chapters/en holds no chapter"
    assert en == zh, (f"only in en: {sorted(set(en) - set(zh))}; "
                      f"only in zh: {sorted(set(zh) - set(en))}")


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_file_converts_as_myst(edition):
    for name in chapter_files(edition):
        text = (CHAPTERS / edition / name).read_text(encoding="utf-8")
        if name[:2].isdigit():
            assert "format_name: myst" in text, f"{edition}/{name}: not a jupytext MyST notebook"
        notebook = read(edition, name)
        assert notebook.cells, f"{edition}/{name}: no cells after conversion"
        for i, cell in enumerate(notebook.cells):
            assert not cell.get("outputs"), f"{edition}/{name} cell {i}: outputs are committed"


@pytest.mark.parametrize("name", chapter_files("en"))
def test_code_cells_identical(name):
    en, zh = read("en", name), read("zh", name)
    code_en = [c.source for c in en.cells if c.cell_type == "code"]
    code_zh = [c.source for c in zh.cells if c.cell_type == "code"]
    assert len(code_en) == len(code_zh), (
        f"{name}: {len(code_en)} code cells in en but {len(code_zh)} in zh")
    for i, (a, b) in enumerate(zip(code_en, code_zh, strict=True)):
        assert a == b, (f"{name}: code cell {i + 1} differs between en and zh:\n"
                        f"--- en\n{a}\n--- zh\n{b}")
        assert not CJK.search(a), f"{name}: code cell {i + 1} holds Chinese text; code is English"


@pytest.mark.parametrize("name", chapter_files("en"))
def test_markdown_structure_corresponds(name):
    en, zh = read("en", name), read("zh", name)
    md_en = [c.source for c in en.cells if c.cell_type == "markdown"]
    md_zh = [c.source for c in zh.cells if c.cell_type == "markdown"]
    assert len(md_en) == len(md_zh), (
        f"{name}: {len(md_en)} markdown cells in en but {len(md_zh)} in zh")
    kinds_en = [c.cell_type for c in en.cells]
    kinds_zh = [c.cell_type for c in zh.cells]
    assert kinds_en == kinds_zh, f"{name}: the order of code and markdown cells differs"
    for i, (a, b) in enumerate(zip(md_en, md_zh, strict=True)):
        assert headings(a) == headings(b), (
            f"{name}: markdown cell {i + 1} has headings {headings(a)} in en but "
            f"{headings(b)} in zh")


@pytest.mark.parametrize("name", chapter_files("en"))
def test_prose_is_in_the_right_language(name):
    en, zh = read("en", name), read("zh", name)
    text_en = prose("\n".join(c.source for c in en.cells if c.cell_type == "markdown"))
    text_zh = prose("\n".join(c.source for c in zh.cells if c.cell_type == "markdown"))
    cjk_en, latin_en = len(CJK.findall(text_en)), len(LATIN.findall(text_en))
    # English may quote a Chinese term (glossary, a word of the article); never whole passages.
    limit = 0.35 if name.startswith("appendix-glossary") else 0.02
    assert cjk_en <= limit * (cjk_en + latin_en), (
        f"en/{name}: {cjk_en} Chinese characters against {latin_en} Latin letters")
    cjk_zh, latin_zh = len(CJK.findall(text_zh)), len(LATIN.findall(text_zh))
    # Chinese characters carry about three times the content of a Latin letter.
    assert 3 * cjk_zh >= 0.6 * (3 * cjk_zh + latin_zh), (
        f"zh/{name}: only {cjk_zh} Chinese characters against {latin_zh} Latin letters; "
        "the Chinese edition must be written in Chinese")
    for i, cell in enumerate(c for c in zh.cells if c.cell_type == "markdown"):
        text = prose(cell.source)
        letters = len(LATIN.findall(text))
        if letters > 200 and not re.search(r"^#+ (参考文献|References)", cell.source, re.M):
            assert CJK.search(text), f"zh/{name}: markdown cell {i + 1} is not translated"
