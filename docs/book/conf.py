"""Sphinx configuration of the book's website, shared by both editions (make book).

    SSLBOOK_EDITION=en sphinx-build -c docs/book chapters/en _build/book/en
    SSLBOOK_EDITION=zh sphinx-build -c docs/book chapters/zh _build/book/zh

(make book builds from _build/book-src/<edition>, the chapters with executed outputs merged in
by docs/book/outputs.py.) Nothing is fetched at build or view time: MathJax is a local copy (make
book unpacks npm's mathjax@3 into .venv-book/mathjax), the theme ships its icons and uses system
fonts. Sphinx executes nothing: the outputs come from tests/run_chapters.py's run (fast mode in
CI, reader mode for the published site), which kept the executed notebooks.
"""

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from notebooks import write_notebook  # noqa: E402
from settings import BRANCH, NOTEBOOKS_BRANCH, REPOSITORY_URL  # noqa: E402

EDITION = os.environ.get("SSLBOOK_EDITION", "en")
OTHER = {"en": "zh", "zh": "en"}[EDITION]
CHAPTERS = ROOT / "chapters" / EDITION  # the sources; Sphinx reads their staged copies

project = {"en": "Self-supervised learning for vision", "zh": "视觉自监督学习"}[EDITION]
author = "sslbook"
copyright = "sslbook authors; prose CC BY-SA 4.0, code MIT"
language = {"en": "en", "zh": "zh_CN"}[EDITION]  # zh_CN: search segments words with jieba
root_doc = "index"

extensions = ["myst_nb"]
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
nb_execution_mode = "off"  # outputs come from tests/run_chapters.py (docs/book/outputs.py)
nb_merge_streams = True
exclude_patterns = ["_build", "**.ipynb_checkpoints"]
suppress_warnings = ["myst.header",  # chapters start at "# 8. SimCLR" and keep their numbers
                     "mystnb.unknown_mime_type"]  # e.g. a widget a reader's kernel may emit

# MathJax 3 from the local copy, copied into _static/mathjax.
MATHJAX = Path(os.environ.get("SSLBOOK_MATHJAX", ROOT / ".venv-book" / "mathjax"))
if not (MATHJAX / "mathjax" / "tex-chtml.js").is_file():
    raise RuntimeError(f"no local MathJax in {MATHJAX}/mathjax (make book unpacks it there)")
html_static_path = [str(MATHJAX), str(HERE / "_static")]
mathjax_path = "mathjax/tex-chtml.js"
html_css_files = ["sslbook.css"]

html_theme = "sphinx_book_theme"
html_title = project
html_copy_source = False
html_show_sourcelink = False
templates_path = [str(HERE / "_templates")]
html_theme_options = {
    "repository_url": REPOSITORY_URL,
    "repository_branch": BRANCH,
    "path_to_docs": f"chapters/{EDITION}",
    "use_repository_button": True,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "article_header_end": ["language-switch.html", "notebook-links.html",
                           "article-header-buttons.html"],
    "extra_footer": "",
}
html_context = {"default_mode": "auto",  # without it the theme logs an error on every page
                "sslbook_edition": EDITION, "sslbook_other": OTHER,
                "sslbook_other_name": {"en": "English", "zh": "中文"}[OTHER],
                "sslbook_colab": "https://colab.research.google.com/github/"
                + REPOSITORY_URL.split("github.com/", 1)[-1]
                + f"/blob/{NOTEBOOKS_BRANCH}/{EDITION}/"}
html_last_updated_fmt = None


def _page_context(app, pagename, templatename, context, doctree):
    # Every page has its twin in the other edition, at the same path.
    up = "../" * (pagename.count("/") + 1)
    context["sslbook_other_url"] = f"{up}{OTHER}/{pagename}.html"
    source = CHAPTERS / f"{pagename}.md"
    is_notebook = source.is_file() and "```{code-cell}" in source.read_text(encoding="utf-8")
    context["sslbook_notebook"] = f"{pagename}.ipynb" if is_notebook else None
    # Which run the outputs on this page come from (docs/book/outputs.py), said on the page
    # unless it is the reader mode that the prose describes.
    executed = Path(app.srcdir) / f"{pagename}.ipynb"
    mode = None
    if is_notebook and executed.is_file():
        mode = json.loads(executed.read_text(encoding="utf-8"))["metadata"].get(
            "sslbook", {}).get("mode")
    context["sslbook_outputs_mode"] = mode if mode != "reader" else None


def _notebooks(app, exception):
    # "Download notebook": the chapter as .ipynb next to its page, with the install cell.
    if exception is None and app.builder.format == "html":
        for md in sorted(CHAPTERS.glob("*.md")):
            if "```{code-cell}" in md.read_text(encoding="utf-8"):
                write_notebook(md, Path(app.outdir) / "_notebooks", EDITION)


def setup(app):
    app.connect("html-page-context", _page_context)
    app.connect("build-finished", _notebooks)
    if EDITION == "zh":
        # Sphinx 9.0's Chinese search ships the English stemmer but calls it ChineseStemmer in
        # language_data.js, so the search page stops at "searching" (found with headless
        # Chromium): name the stemmer after what it is.
        from sphinx.search.zh import SearchChinese

        if SearchChinese.js_stemmer_rawcode == "english-stemmer.js":
            app.add_search_language(type("SearchChinese", (SearchChinese,),
                                         {"language_name": "English"}))
