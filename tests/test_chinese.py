"""The Chinese edition keeps one terminology and one typography (chapters/STYLE-zh.md).

Scope: every file in chapters/zh/ and the Chinese half of README.md. Each failure names the
file, the line and the rule. Terms come from chapters/terms-zh.json, which must agree with the
glossary (appendix-glossary.md).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import pytest
from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin

ROOT = Path(__file__).resolve().parents[1]
ZH = ROOT / "chapters" / "zh"
TERMS = json.loads((ROOT / "chapters" / "terms-zh.json").read_text(encoding="utf-8"))["terms"]
FILES = sorted(ZH.glob("*.md"))
CJK = r"[\u3400-\u9fff\uf900-\ufaff]"
MARKER = re.compile(r"<!--.*?-->", re.S)  # record markers and other comments: invisible
MD = MarkdownIt("commonmark").enable("table").use(dollarmath_plugin)


def readme_zh() -> str:
    """The Chinese half of README.md: its paragraphs with many CJK characters, the other lines
    blanked (so that line numbers are README.md's own)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    text = re.sub(r"```.*?```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    blocks = re.split(r"(\n\s*\n)", text)
    return "".join(b if len(re.findall(CJK, b)) > len(re.findall(r"[A-Za-z]", b)) / 4
                   else "\n" * b.count("\n") for b in blocks)


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the prose: no front matter, code blocks, maths or comments.
    Directives such as ```{admonition} hold prose and are kept; their option lines are not."""
    out, code, maths, front, directives = [], False, False, text.startswith("---\n"), 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if front:
            front = not (number > 1 and line == "---")
            continue
        if code:
            code = not stripped.startswith("```")
            continue
        if stripped == "```" and directives:  # the end of a prose directive
            directives -= 1
            continue
        if stripped.startswith("```"):
            directive = re.match(r"```\{(\w[\w-]*)\}", stripped)
            code = not directive or directive.group(1) in ("code-cell", "code", "math")
            directives += not code
            continue
        if stripped.startswith("$$") or maths:
            one_line = stripped.startswith("$$") and stripped.endswith("$$") and len(stripped) > 2
            maths = not one_line and (not maths or not stripped.endswith("$$"))
            continue
        if not stripped.startswith(":"):  # admonition options
            out.append((number, MARKER.sub("", line)))
    return out


def sources() -> list[tuple[str, str]]:
    return [(f"chapters/zh/{p.name}", p.read_text(encoding="utf-8")) for p in FILES] + [
        ("README.md (Chinese half)", readme_zh())]


SOURCES = sources()
IDS = [name for name, _ in SOURCES]


def test_terms_agree_with_the_glossary():
    glossary = (ZH / "appendix-glossary.md").read_text(encoding="utf-8")
    missing = [t["zh"] for t in TERMS if t["zh"] not in glossary and t["en"] not in (
        "correct, but incomplete", "misleading", "head start", "oscillation")]
    assert not missing, f"terms-zh.json terms missing from the glossary: {missing}"


@pytest.mark.parametrize(("name", "text"), SOURCES, ids=IDS)
def test_no_banned_term_variant(name, text):
    problems = []
    for number, line in prose_lines(text):
        line = re.sub(r"`[^`]*`", "", line)
        for term in TERMS:  # 汇聚（池化）: a variant named in brackets after its term is fine
            line = re.sub(r"(" + re.escape(term["zh"]) + r")（[^）]*）", r"\1", line)
        for term in TERMS:
            for banned in term["banned"]:
                if banned in line:
                    problems.append(f"{name}:{number}: '{banned}' -> '{term['zh']}' "
                                    f"({term['en']}; chapters/terms-zh.json)")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("name", "text"), SOURCES, ids=IDS)
def test_no_line_break_between_chinese_characters(name, text):
    problems = []
    lines = prose_lines(text)
    for (n1, a), (n2, b) in zip(lines, lines[1:]):
        if n2 == n1 + 1 and re.search(CJK + r"[，。、；：！？）”]?$", a.rstrip()) and \
                re.match(r"[（“]?" + CJK, b.lstrip()) and not b.lstrip().startswith(("|", "#")) \
                and not a.lstrip().startswith(("|", "#")) and b == b.lstrip():
            problems.append(f"{name}:{n1}: a line break between two Chinese characters renders "
                            "as a space; join the lines")
    assert not problems, "\n".join(problems[:30])


def _rendered_cells(text: str):
    """(first line, rendered HTML) of every Markdown cell (or of the README half)."""
    if "jupytext" not in text[:200]:
        yield 1, MD.render(MARKER.sub("", text))
        return
    notebook = jupytext.reads(text, fmt="md:myst")
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            source = re.sub(r"```.*?```", "", MARKER.sub("", cell.source), flags=re.S)
            first = text.find(cell.source.splitlines()[0]) if cell.source else 0
            yield text.count("\n", 0, max(first, 0)) + 1, MD.render(source)


@pytest.mark.parametrize(("name", "text"), SOURCES, ids=IDS)
def test_emphasis_renders_and_is_bold(name, text):
    problems = []
    for line, html in _rendered_cells(text):
        visible = re.sub(r"<code>.*?</code>|<eq>.*?</eq>|<eqn>.*?</eqn>|<span class=\"math.*?"
                         r"</span>|<div class=\"math.*?</div>", "", html, flags=re.S)
        visible = re.sub(r"<[^>]+>", "", visible)
        if "**" in visible or re.search(r"(?<![\\\w*])\*(?=" + CJK + ")", visible):
            problems.append(f"{name}:{line}: literal * in the rendered text: a ** span that "
                            "CommonMark does not close (put it next to punctuation or a space)")
        for em in re.findall(r"<em>(.*?)</em>", html, flags=re.S):
            if re.search(CJK, em):
                problems.append(f"{name}:{line}: italics on Chinese text ({em[:20]}...): use "
                                "bold (**…**) for emphasis; captions are plain 图 N.M　…")
    assert not problems, "\n".join(problems[:30])


@pytest.mark.parametrize(("name", "text"), SOURCES, ids=IDS)
def test_chinese_quotation_marks(name, text):
    problems = []
    for number, line in prose_lines(text):
        line = re.sub(r"`[^`]*`|\$[^$]*\$|\]\([^)]*\)|<[^>]+>", "", line)
        if re.search(CJK + r"\s*\"|\"\s*" + CJK, line) or re.search(r"「|」|『|』", line):
            problems.append(f"{name}:{number}: use “…” around Chinese text, not \"…\" or 「…」")
    assert not problems, "\n".join(problems[:30])


def _numbers(text: str) -> list[float]:
    """Numbers written in digits, with 万/亿 and million/billion understood."""
    text = MARKER.sub("", text)
    text = re.sub(r"`[^`]*`|\$[^$]*\$|\]\([^)]*\)|https?://\S+|arXiv:\S+|\[\^?\w+\]", " ", text)
    text = re.sub(r"(?i:\b(?:Sec|Section|Fig|Figure|Table|App|Appendix|Eq|Equation|Chapter|"
                  r"Exercise|Algorithm|Step)s?)\.?\s*[\dA-Z][\d.]*[a-z]?"
                  r"(?:\s*(?:and|to|-|–)\s*(?!0\.)[\d.]+)?|"
                  r"第\s*[\d.]+\s*[节章步]|[图表]\s*[\d.]+[a-z]?|式\s*\(\s*[\d.]+\s*\)|练习\s*[\d.]+(?:\s*[和与、至到]\s*[\d.]+)?|附录\s*[A-Z][\d.]*|"
                  r"\d+\s*(?:–|-|至|到)\s*\d+\s*章|§\s*[\d.]+|\b(?:19|20)\d\d\b", " ", text)
    values = []
    for m in re.finditer(r"(\d[\d,]*(?:\.\d+)?)\s*(万|亿|million|billion|k\b)?", text):
        value = float(m.group(1).replace(",", ""))
        scale = {"万": 1e4, "亿": 1e8, "million": 1e6, "billion": 1e9, "k": 1e3}.get(
            m.group(2) or "", 1)
        if value * scale > 10 or value != int(value):  # 0-10 are often spelled out in English
            values.append(round(value * scale, 6))
    return values


def _prose_blocks(path: Path) -> list[str]:
    """The prose between consecutive code cells (the code cells are identical in en and zh)."""
    blocks, current = [], []
    for cell in jupytext.read(path).cells:
        if cell.cell_type == "code":
            blocks.append("\n".join(current))
            current = []
        else:
            current.append(re.sub(r"```.*?```", "", cell.source, flags=re.S))
    return [*blocks, "\n".join(current)]


@pytest.mark.parametrize("name", [p.name for p in FILES if p.name[:2].isdigit()])
def test_numbers_agree_with_the_english_edition(name):
    en, zh = _prose_blocks(ROOT / "chapters" / "en" / name), _prose_blocks(ZH / name)
    assert len(en) == len(zh)
    problems = []
    for i, (a, b) in enumerate(zip(en, zh)):
        only_en = sorted(set(_numbers(a)) - set(_numbers(b)))
        only_zh = sorted(set(_numbers(b)) - set(_numbers(a)))
        if only_en or only_zh:
            problems.append(f"{name}, prose before code cell {i + 1}: only in en {only_en}, "
                            f"only in zh {only_zh}")
    assert not problems, "\n".join(problems[:20])


@pytest.mark.parametrize(("name", "text"), SOURCES[:-1], ids=IDS[:-1])
def test_first_use_of_a_term_gives_the_english(name, text):
    if "glossary" in name or "errata" in name:
        pytest.skip("the appendices are the terms' tables")
    lines = prose_lines(text)
    body = "\n".join(line for _, line in lines)
    problems = []
    for term in (t for t in TERMS if t["first_use"]):
        first = body.find(term["zh"])
        if first < 0:
            continue
        after = body[first + len(term["zh"]):first + len(term["zh"]) + 60]
        if not re.match(r"（[^）]*" + re.escape(term["en"].split()[0]), after, flags=re.I):
            line = lines[body.count("\n", 0, first)][0]
            problems.append(f"{name}:{line}: the first '{term['zh']}' should read "
                            f"{term['zh']}（{term['en']}）")
    assert not problems, "\n".join(problems)
