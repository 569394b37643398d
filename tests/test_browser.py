"""The website in a real browser (make test-book): every page of both editions, offline.

Serves ``_build/book`` (``make book``) on 127.0.0.1 and opens every page in Debian's headless
Chromium, driven by Playwright (``executable_path``; Playwright downloads no browser). Every
request to any other host is aborted and fails the test. On each page: no console error, every
image loaded, formulas typeset by the local MathJax (no raw ``$`` or ``\\(`` left), the language
link leading to the same page of the other edition; on chapters the admonitions, the
".ipynb" and "Colab" links, the outputs of the executed run and an image before every figure
caption; Chinese text drawn with a CJK font (asked of the browser through the DevTools
protocol, not read from CSS); search finds a chapter 8 term in both languages. Screenshots of
three pages go to ``_build/test-artifacts/book``. Last, ``make lab``'s JupyterLab: a double-click
opens chapter 1 as a notebook with its admonition rendered by jupyterlab-myst, and reading and
saving it leaves ``git status`` as it was.

Which chapters have outputs is decided by the run that ``make book`` found in
``_build/executed`` (docs/book/outputs.py); with ``SSLBOOK_BOOK_ALL_OUTPUTS=1`` (``.ci/run``,
after ``make test`` executed every chapter) every chapter must have them.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="no Playwright (make test-book)")

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "book"
SOURCES = ROOT / "_build" / "book-src"
ARTIFACTS = ROOT / "_build" / "test-artifacts" / "book"
EDITIONS = ("en", "zh")
OTHER = {"en": "zh", "zh": "en"}
CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)),
                None)
CJK = re.compile(r"[\u4e00-\u9fff]")
CJK_FONT = re.compile(r"CJK|Hei|Song|Ming|Kai|WenQuanYi|Droid Sans Fallback|Sarasa|AR PL", re.I)
SCREENSHOTS = [("en", "08-simclr"), ("zh", "08-simclr"), ("en", "01-introduction")]

pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="no Chromium: apt-get install chromium"),
    pytest.mark.skipif(not (SITE / "zh" / "index.html").is_file(), reason="no site: make book"),
]


def _pages(edition: str) -> list[str]:
    return sorted(p.stem for p in (SITE / edition).glob("*.html"))


def _source(edition: str, name: str) -> str:
    md = ROOT / "chapters" / edition / f"{name}.md"
    return md.read_text(encoding="utf-8") if md.is_file() else ""


def _outputs(edition: str) -> dict[str, str]:
    """Chapter -> the mode of its outputs or why it has none (written by docs/book/outputs.py)."""
    path = SOURCES / edition / ".outputs.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(SITE)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    with playwright.sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        yield b
        b.close()


class Tab:
    """A page with its console errors and every request that tried to leave the local server."""

    def __init__(self, browser, origin: str) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 900},
                                           service_workers="block")
        self.page = self.context.new_page()
        self.origin = origin
        self.errors: list[str] = []
        self.remote: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.context.route("**/*", self._route)

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.origin + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            self.remote.append(url)
            route.abort()

    def open(self, path: str):
        response = self.page.goto(f"{self.origin}/{path}", wait_until="load")
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        # MathJax typesets after load; wait for it on pages that have formulas.
        self.page.evaluate("""async () => {
            if (!document.querySelector('.math')) return;
            for (let i = 0; i < 200 && !(window.MathJax && MathJax.startup
                 && MathJax.startup.promise); i++) await new Promise(r => setTimeout(r, 50));
            await MathJax.startup.promise;
        }""")
        return self.page

    def close(self):
        self.context.close()


@pytest.fixture
def tab(browser, server):
    t = Tab(browser, server)
    yield t
    t.close()


# What one page shows, measured in the page after its scripts ran.
MEASURE = """() => {
  const article = document.querySelector('article.bd-article') || document.body;
  const imgs = [...document.images];
  const prose = article.cloneNode(true);
  prose.querySelectorAll('pre, code, script, style, mjx-container, .cell, .cell_output')
       .forEach(e => e.remove());
  const captions = [...article.querySelectorAll('p')]
       .filter(p => /^(Figure \\d+\\.\\d+\\.|图 \\d+\\.\\d+\\u3000)/.test(p.textContent.trim()));
  // Each caption needs a loaded image after the previous caption and before it.
  let previous = null;
  const uncaptioned = [];
  for (const c of captions) {
    const ok = [...article.querySelectorAll('img')].some(i =>
        (c.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_PRECEDING)
        && (!previous || (previous.compareDocumentPosition(i) & Node.DOCUMENT_POSITION_FOLLOWING))
        && i.naturalWidth > 0);
    if (!ok) uncaptioned.push(c.textContent.trim().slice(0, 40));
    previous = c;
  }
  return {
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),
    math: article.querySelectorAll('.math').length,
    typeset: article.querySelectorAll('mjx-container').length,
    merror: article.querySelectorAll('mjx-merror').length,
    rawMath: (prose.textContent.match(/\\$|\\\\\\(|\\\\\\[/g) || []).length,
    admonitions: [...article.querySelectorAll('div.admonition')]
        .filter(a => a.querySelector('.admonition-title') && a.offsetHeight > 0
                && getComputedStyle(a).borderLeftStyle !== 'none').length,
    outputs: article.querySelectorAll('.cell_output').length,
    captions: captions.length,
    uncaptioned,
    lang: document.documentElement.lang,
    language: [...document.querySelectorAll('a.sslbook-language')].map(a => a.href),
    download: [...document.querySelectorAll('a.sslbook-download')].map(a => a.href),
    colab: [...document.querySelectorAll('a.sslbook-colab')].map(a => a.href),
  };
}"""


def _await_images(page):
    page.evaluate("""async () => {
        for (const i of document.images) i.loading = 'eager';
        await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
    }""")


def _code_cells_with_outputs(edition: str, name: str) -> int:
    nb = json.loads((SOURCES / edition / f"{name}.ipynb").read_text(encoding="utf-8"))
    return sum(1 for c in nb["cells"] if c["cell_type"] == "code" and c.get("outputs"))


@pytest.mark.parametrize("edition", EDITIONS)
def test_every_page(tab, edition):
    outputs = _outputs(edition)
    with_outputs = [n for n, what in outputs.items() if what.endswith(" mode")]
    assert with_outputs, "no chapter has outputs: run tests/run_chapters.py, then make book"
    if os.environ.get("SSLBOOK_BOOK_ALL_OUTPUTS") == "1":
        assert sorted(with_outputs) == sorted(outputs), {n: w for n, w in outputs.items()
                                                         if n not in with_outputs}
    checked = 0
    for name in _pages(edition):
        page = tab.open(f"{edition}/{name}.html")
        _await_images(page)
        m = page.evaluate(MEASURE)
        where = f"{edition}/{name}.html"
        md = _source(edition, name)
        assert m["lang"] == {"en": "en", "zh": "zh-CN"}[edition], where
        assert not m["broken"], f"{where}: images not loaded: {m['broken']}"
        assert m["math"] == m["typeset"] and not m["merror"], f"{where}: math not typeset: {m}"
        assert m["rawMath"] == 0, f"{where}: {m['rawMath']} raw math delimiters in the text"
        if "$" in md:
            assert m["typeset"] > 0, f"{where}: the chapter has formulas, the page none"
        assert m["admonitions"] == md.count("```{admonition}"), f"{where}: admonitions {m}"
        # The language link: one, to the same page of the other edition.
        assert m["language"] == [f"{tab.origin}/{OTHER[edition]}/{name}.html"], where
        if "```{code-cell}" in md:
            assert len(m["download"]) == 1 and m["download"][0].endswith(
                f"/{edition}/_notebooks/{name}.ipynb"), where
            assert len(m["colab"]) == 1 and re.fullmatch(
                rf"https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/notebooks/"
                rf"{edition}/{name}\.ipynb", m["colab"][0]), m["colab"]
            nb = page.request.get(m["download"][0])
            assert nb.ok and json.loads(nb.text())["cells"][0]["metadata"]["tags"] == [
                "sslbook-setup"], where
            if name in with_outputs:
                assert m["outputs"] == _code_cells_with_outputs(edition, name) > 0, where
                assert not m["uncaptioned"], f"{where}: captions without a figure above them"
            else:
                assert m["outputs"] == 0, where
        else:
            assert not m["download"] and not m["colab"], where
        if (edition, name) in SCREENSHOTS:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / f"{edition}-{name}.png"), full_page=False)
        checked += 1
    assert checked == len(_pages(edition)) >= 15
    assert not tab.remote, f"requests that left the site: {sorted(set(tab.remote))[:10]}"
    assert not tab.errors, f"console errors: {tab.errors[:10]}"


@pytest.mark.parametrize("edition", EDITIONS)
def test_language_link_leads_to_the_same_chapter(tab, edition):
    page = tab.open(f"{edition}/08-simclr.html")
    page.click("a.sslbook-language")
    page.wait_for_load_state("load")
    assert page.url == f"{tab.origin}/{OTHER[edition]}/08-simclr.html"
    assert page.evaluate("document.documentElement.lang") == {"en": "zh-CN", "zh": "en"}[edition]
    title = page.inner_text("article h1")
    assert title.startswith("8."), title
    assert not tab.remote and not tab.errors


@pytest.mark.parametrize("edition, word", [("en", "temperature"), ("zh", "温度")])
def test_search_box_finds_chapter_8(tab, edition, word):
    # As a reader does: the search button of the page, the box it opens, Enter.
    page = tab.open(f"{edition}/index.html")
    page.locator("button.search-button__button:visible").first.click()
    box = page.locator("form.bd-search input[name=q]:visible").first
    box.fill(word)
    box.press("Enter")
    page.wait_for_selector("#search-results .search-summary", timeout=30_000)
    assert urllib.parse.unquote(page.url).endswith(f"?q={word}")
    hits = page.eval_on_selector_all("#search-results ul.search li a",
                                     "as => as.map(a => a.getAttribute('href'))")
    assert any(h.split("#")[0].split("?")[0] == "08-simclr.html" for h in hits), hits
    assert not tab.remote and not tab.errors


def test_chinese_is_drawn_with_a_cjk_font(tab):
    page = tab.open("zh/08-simclr.html")
    picked = page.evaluate(r"""() => {
        const p = [...document.querySelectorAll('article p')].find(p =>
            [...p.childNodes].some(n => n.nodeType === 3 && /[\u4e00-\u9fff]{15}/.test(n.data)));
        if (p) p.setAttribute('data-cjk-probe', '1');
        return p ? p.textContent : null;
    }""")
    assert picked and len(CJK.findall(picked)) >= 15
    cdp = tab.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument", {"depth": -1})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "[data-cjk-probe]"})
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    cjk = sum(f["glyphCount"] for f in fonts if CJK_FONT.search(f["familyName"]))
    # The probe's own text nodes: its Chinese characters must come from a CJK font.
    own = page.evaluate("""() => [...document.querySelector('[data-cjk-probe]').childNodes]
        .filter(n => n.nodeType === 3).map(n => n.data).join('')""")
    assert cjk >= len(CJK.findall(own)) > 0, fonts


# JupyterLab as `make lab` starts it: a double-click opens a chapter as a notebook, its MyST is
# rendered (jupyterlab-myst), and reading and saving it leaves `git status` as it was.
LAB_TOKEN = "sslbook-browser-test"


@pytest.fixture(scope="module")
def make_lab(tmp_path_factory):
    # SSLBOOK_TEST_MAKE_ARGS: extra make arguments for a checkout whose .venv lives elsewhere.
    extra = os.environ.get("SSLBOOK_TEST_MAKE_ARGS", "").split()
    if not extra and not (ROOT / ".venv" / "bin" / "jupyter").exists():
        pytest.skip("no .venv: make setup")
    tmp = tmp_path_factory.mktemp("lab")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A fresh workspace and no user settings: what a first `make lab` shows.
    args = (f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={LAB_TOKEN} "
            f"--LabApp.user_settings_dir={tmp}/settings --LabApp.workspaces_dir={tmp}/workspaces")
    if os.geteuid() == 0:
        args += " --allow-root"
    before = _git_status()
    log = open(tmp / "lab.log", "w")
    proc = subprocess.Popen(["make", "lab", f"LAB_ARGS={args}", *extra], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(360):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={LAB_TOKEN}", timeout=5)
                break
            except OSError:
                assert proc.poll() is None, (tmp / "lab.log").read_text()[-2000:]
                time.sleep(0.5)
        else:
            pytest.fail("make lab's JupyterLab did not answer within 3 minutes")
        yield base, before
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


def _git_status() -> str:
    return subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout


def test_make_lab_opens_a_chapter_as_a_notebook_with_myst_rendered(browser, make_lab):
    base, before = make_lab
    tab = Tab(browser, base)
    try:
        page = tab.page
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.goto(f"{base}/lab?token={LAB_TOKEN}")

        def item(name):
            text = page.locator(".jp-DirListing-itemText",
                                has_text=re.compile(rf"^{re.escape(name)}$"))
            return page.locator(".jp-DirListing-item").filter(has=text).first

        item("en").dblclick(timeout=120_000)
        item("01-introduction.md").dblclick(timeout=60_000)
        page.wait_for_selector(".jp-NotebookPanel", timeout=120_000)
        assert page.locator(".jp-FileEditor:visible").count() == 0  # not opened as text
        # The chapter's errata admonition, rendered by jupyterlab-myst (without it, the
        # directive shows as a code block with the language "{admonition}").
        page.evaluate("""() => [...document.querySelectorAll('.jp-MarkdownCell')]
            .find(c => c.textContent.includes('Errata'))?.scrollIntoView()""")
        admonition = page.locator(".jp-NotebookPanel aside.myst-admonition", has_text="Errata")
        admonition.first.wait_for(timeout=60_000)
        assert page.locator(".jp-NotebookPanel code[class*='{admonition}']").count() == 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "lab-en-01-introduction.png"))
        # Save it, as autosave would: the chapter must stay byte for byte as it is in git.
        page.locator(".jp-NotebookPanel").first.click(position={"x": 400, "y": 300})
        page.keyboard.press("Control+s")
        page.wait_for_timeout(3000)
        assert _git_status() == before, "reading or saving a chapter in make lab changed files"
        assert not tab.remote, f"requests that left the server: {sorted(set(tab.remote))[:10]}"
    finally:
        tab.close()
