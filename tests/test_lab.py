"""Reading the book in JupyterLab as `make lab` starts it: chapters open as notebooks on a
double-click, and opening and saving a chapter (what autosave does) leaves it byte for byte as
it is in git."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAB = Path(sys.prefix) / "bin" / "jupyter-lab"
OVERRIDES = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
TOKEN = "sslbook-test"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _request(url: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Authorization": f"token {TOKEN}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def test_make_lab_passes_allow_root_to_root_and_installs_the_viewer_setting():
    out = subprocess.run(["make", "-n", "lab"], cwd=ROOT, capture_output=True, text=True).stdout
    assert "jupytext.TextFileContentsManager" in out
    assert ("--allow-root" in out) == (os.getuid() == 0)
    out = subprocess.run(["make", "-n", "lab", "LAB_ARGS=--port=9999"], cwd=ROOT,
                         capture_output=True, text=True).stdout
    assert "--port=9999" in out and "--allow-root" not in out


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not LAB.exists() or not OVERRIDES.exists():
        pytest.skip("JupyterLab or the viewer setting is not installed (run make setup)")
    root = tmp_path_factory.mktemp("lab") / "chapters"
    shutil.copytree(ROOT / "chapters", root)
    port = _free_port()
    cmd = [str(LAB), "--no-browser", f"--port={port}", "--ip=127.0.0.1",
           f"--notebook-dir={root}", f"--IdentityProvider.token={TOKEN}",
           "--ServerApp.contents_manager_class=jupytext.TextFileContentsManager"]
    if os.getuid() == 0:
        cmd.append("--allow-root")
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                _request(base + "/api/status")
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield base, root
    finally:
        server.terminate()
        server.wait(timeout=30)


def _labextensions() -> str:
    out = subprocess.run([sys.executable, "-m", "jupyterlab.labextensions", "list"],
                         capture_output=True, text=True, timeout=120)
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)


@pytest.mark.skipif(not LAB.exists(), reason="JupyterLab is not installed (run make setup)")
def test_jupyterlab_myst_is_installed_and_enabled():
    # jupyterlab-myst renders the chapters' admonitions, math and roles in notebooks. With
    # JupyterLab 4.6 the list marks 2.7 "X" (built on @jupyter/ydoc 3), yet Lab loads it and
    # renders MyST: tests/test_browser.py opens a chapter and finds a rendered admonition.
    listing = _labextensions()
    lines = [line for line in listing.splitlines() if re.match(r"\s+jupyterlab-myst v", line)]
    assert lines and all(re.search(r"\benabled\b", line) for line in lines), listing
    assert not re.search(r"jupyterlab-myst.*\bdisabled\b", listing), listing


def test_lab_serves_jupyterlab_myst(lab):
    base, _ = lab
    req = urllib.request.Request(f"{base}/lab", headers={"Authorization": f"token {TOKEN}"})
    with urllib.request.urlopen(req, timeout=30) as response:
        page = response.read().decode()
    config = json.loads(re.search(r'<script id="jupyter-config-data" type="application/json">'
                                  r"(.*?)</script>", page, re.S).group(1))
    names = {e["name"] for e in config["federated_extensions"]}
    assert {"jupyterlab-myst", "jupyterlab-jupytext"} <= names, names
    disabled = config.get("disabledExtensions", [])
    assert not [d for d in disabled if d.split(":")[0] == "jupyterlab-myst"], disabled


def test_double_click_opens_chapters_as_notebooks(lab):
    base, _ = lab
    setting = _request(base + "/lab/api/settings/@jupyterlab/docmanager-extension:plugin")
    # overrides.json changes the schema's defaults, which a user's own settings could still change
    viewers = {**setting["schema"]["properties"]["defaultViewers"]["default"],
               **setting["settings"].get("defaultViewers", {})}
    assert viewers["markdown"] == "Jupytext Notebook" and viewers["myst"] == "Jupytext Notebook"


CHAPTERS = sorted(f"{p.parent.name}/{p.name}" for p in (ROOT / "chapters").glob("*/*.md"))


@pytest.mark.parametrize("path", CHAPTERS)
def test_opening_and_saving_a_chapter_changes_nothing(lab, path):
    base, root = lab
    before = (root / path).read_bytes()
    model = _request(f"{base}/api/contents/{path}?type=notebook&content=1")
    assert model["type"] == "notebook" and model["content"]["cells"]
    notebook = model["content"]  # as the front end holds it once a kernel has started
    notebook["metadata"]["kernelspec"] = {"display_name": "Python 3 (ipykernel)",
                                          "language": "python", "name": "python3"}
    notebook["metadata"]["language_info"] = {"name": "python", "version": sys.version.split()[0]}
    _request(f"{base}/api/contents/{path}", "PUT",
             {"type": "notebook", "format": "json", "content": notebook})
    assert (root / path).read_bytes() == before, f"saving {path} rewrote it"
