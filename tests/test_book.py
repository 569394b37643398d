"""The book as a website (make book): both editions build and work offline.

Skipped unless the book's venv exists (``make book`` creates ``.venv-book``). Reuses the site in
``_build/book`` when it is newer than every chapter and every file of ``docs/book``; otherwise
runs ``make book`` (about 15-20 s on 2 cores). These tests read the built files; what a browser
shows is tested by tests/test_browser.py (``make test-book``).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "book"
EDITIONS = ("en", "zh")
OTHER = {"en": "zh", "zh": "en"}

pytestmark = pytest.mark.skipif(not (ROOT / ".venv-book" / ".installed").is_file(),
                                reason="no .venv-book: run make book first")


def _sources() -> list[Path]:
    files = [p for e in EDITIONS for p in (ROOT / "chapters" / e).glob("*.md")]
    book = [p for p in (ROOT / "docs" / "book").rglob("*")
            if p.suffix in (".py", ".html", ".css") and "__pycache__" not in p.parts]
    return files + book + [ROOT / "Makefile"]


def _chapters(edition: str) -> list[str]:
    return sorted(p.stem for p in (ROOT / "chapters" / edition).glob("*.md"))


@pytest.fixture(scope="module")
def site() -> Path:
    pages = [SITE / e / "index.html" for e in EDITIONS]
    newest = max(p.stat().st_mtime for p in _sources())
    if not all(p.is_file() and p.stat().st_mtime > newest for p in pages):
        subprocess.run(["make", "book"], cwd=ROOT, check=True)
    return SITE


class _Page(HTMLParser):
    """What a page loads (scripts, stylesheets, images, frames) and its anchors by class."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.anchors: list[dict[str, str]] = []
        self.scripts: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag in ("script", "img", "iframe", "source", "audio", "video", "embed") and "src" in a:
            self.loads.append(a["src"])
        if tag == "link" and "href" in a:
            self.loads.append(a["href"])
        if tag == "a":
            self.anchors.append(a)
        if tag == "script" and "src" in a:
            self.scripts.append(a["src"])


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _html_files(site: Path) -> list[Path]:
    return sorted(p for e in EDITIONS for p in (site / e).rglob("*.html"))


def test_every_chapter_page_in_both_editions(site):
    assert _chapters("en") == _chapters("zh")
    for edition in EDITIONS:
        for name in _chapters(edition):
            assert (site / edition / f"{name}.html").is_file(), f"{edition}/{name}.html missing"
    assert '<html lang="zh-CN"' in (site / "zh" / "index.html").read_text(encoding="utf-8")


def test_nothing_loaded_from_another_host(site):
    remote = re.compile(r"^(https?:)?//", re.I)
    for path in _html_files(site):
        bad = [u for u in _parse(path).loads if remote.match(u)]
        assert not bad, f"{path.relative_to(site)} loads {bad}"
    for css in (p for e in EDITIONS for p in (site / e / "_static").rglob("*.css")):
        text = css.read_text(encoding="utf-8", errors="replace")
        assert not re.search(r"(@import|url\()\s*['\"]?(https?:)?//", text), css


def test_language_link_leads_to_the_same_page(site):
    for edition in EDITIONS:
        for name in [*_chapters(edition), "search", "genindex"]:
            page = _parse(site / edition / f"{name}.html")
            links = [a for a in page.anchors if "sslbook-language" in a.get("class", "")]
            assert len(links) == 1, f"{edition}/{name}.html: {len(links)} language links"
            target = posixpath.normpath(posixpath.join(edition, links[0]["href"]))
            assert target == f"{OTHER[edition]}/{name}.html", (edition, name, target)
            assert (site / target).is_file()


def test_notebook_links(site):
    for edition in EDITIONS:
        for name in _chapters(edition):
            md = (ROOT / "chapters" / edition / f"{name}.md").read_text(encoding="utf-8")
            page = _parse(site / edition / f"{name}.html")
            download = [a for a in page.anchors if "sslbook-download" in a.get("class", "")]
            colab = [a for a in page.anchors if "sslbook-colab" in a.get("class", "")]
            if "```{code-cell}" not in md:
                assert not download and not colab, f"{edition}/{name}: not a notebook"
                continue
            assert (site / edition / download[0]["href"]).is_file()
            nb = json.loads((site / edition / download[0]["href"]).read_text(encoding="utf-8"))
            setup, *cells = nb["cells"]
            assert "sslbook-setup" in setup["metadata"]["tags"]
            compile("".join(setup["source"]), f"{name}.ipynb[0]", "exec")
            assert len([c for c in cells if c["cell_type"] == "code"]) == md.count("```{code-cell}")
            assert colab[0]["href"].startswith("https://colab.research.google.com/github/")
            assert colab[0]["href"].endswith(f"/{edition}/{name}.ipynb")


def test_math_rendered_by_local_mathjax(site):
    checked = 0
    for edition in EDITIONS:
        for name in _chapters(edition):
            md = (ROOT / "chapters" / edition / f"{name}.md").read_text(encoding="utf-8")
            if "$$" not in md:
                continue
            html_path = site / edition / f"{name}.html"
            html = html_path.read_text(encoding="utf-8")
            assert 'class="math' in html, f"{edition}/{name}: no math"
            text = re.sub(r"<script.*?</script>", "", html, flags=re.S)
            assert "$$" not in text, f"{edition}/{name}: raw $$ left in the page"
            mathjax = [s for s in _parse(html_path).scripts if "mathjax" in s.lower()]
            assert [s.split("?")[0] for s in mathjax] == ["_static/mathjax/tex-chtml.js"], mathjax
            assert (site / edition / "_static" / "mathjax" / "tex-chtml.js").is_file()
            assert (site / edition / "_static" / "mathjax" / "output" / "chtml" / "fonts"
                    / "woff-v2").is_dir()
            checked += 1
    assert checked >= 10


def test_chinese_search_finds_chinese_words(site):
    text = (site / "zh" / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1:text.rindex(")")])
    chapter = index["docnames"].index("08-simclr")

    def docs(word):
        found = set()
        for table in ("terms", "titleterms"):
            hit = index[table].get(word, [])
            found |= {hit} if isinstance(hit, int) else set(hit)
        return found

    assert (ROOT / "chapters" / "zh" / "08-simclr.md").read_text(encoding="utf-8").count("温度") > 3
    assert chapter in docs("温度")  # temperature, a word jieba cuts out of the running text
    assert chapter in docs("对比")
    assert (site / "zh" / "_static" / "language_data.js").is_file()


def test_the_repository_is_named_in_one_place():
    # sslbook.REPOSITORY; the site's links, the notebooks' first cell, the Pages workflow and
    # sslbook.pretrained.URL derive from it. No other code file spells it out.
    init = (ROOT / "sslbook" / "__init__.py").read_text(encoding="utf-8")
    url = re.search(r'^REPOSITORY = "([^"]+)"$', init, re.M).group(1)
    slug = url.split("github.com/", 1)[1]
    code = [p for p in ROOT.rglob("*") if p.is_file() and p.suffix in (".py", ".yml", ".html",
                                                                         ".toml", ".cfg")
            and not any(part.startswith((".", "_build")) and part not in (".github",)
                        for part in p.relative_to(ROOT).parts[:-1])]
    code += [ROOT / "Makefile", ROOT / ".ci" / "run"]
    named = [str(p.relative_to(ROOT)) for p in code if slug in p.read_text(encoding="utf-8",
                                                                            errors="replace")]
    assert named == ["sslbook/__init__.py"], named
    env = {k: v for k, v in os.environ.items() if k != "SSLBOOK_REPOSITORY_URL"}
    out = subprocess.run([sys.executable, "-c", "import settings; print(settings.REPOSITORY_URL)"],
                         cwd=ROOT / "docs" / "book", env=env, capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == url
    pretrained = (ROOT / "sslbook" / "pretrained.py").read_text(encoding="utf-8")
    assert re.search(r"^URL = \(REPOSITORY\.replace\(", pretrained, re.M)
