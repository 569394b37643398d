"""Numbers that the prose quotes from a recorded run are bound to their record.

A number in a chapter (either edition) or README is followed by an invisible marker, an HTML
comment naming the record and the key as a JSON pointer (RFC 6901)::

    SimCLR reaches 0.874<!-- rec: checkpoints/simclr.json#/evaluation/simclr/linear -->.

JupyterLab, the website and Colab do not render HTML comments. Options after the pointer:
``x100`` (the prose shows a percentage or points of a fraction), ``min`` (seconds shown as
minutes). The number shown must equal the record's value rounded to the digits shown.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!--\s*rec:\s*(?P<file>[^#\s]+)#(?P<pointer>[^>]*?)"
                    r"(?P<opts>(?:\s+(?:x100|min))*)\s*-->")
NUMBER = re.compile(r"(?P<num>[-−]?\d[\d,]*(?:\.\d+)?)\s*(?:%|×|x|min|s|秒|分钟|个百分点|points?)?"
                    r"\**\s*$")
FILES = sorted([*ROOT.glob("chapters/*/*.md"), ROOT / "README.md"])


def resolve(record: dict | list, pointer: str):
    value = record
    for token in pointer.lstrip("/").split("/") if pointer.strip("/") else []:
        token = token.replace("~1", "/").replace("~0", "~")
        value = value[int(token)] if isinstance(value, list) else value[token]
    return value


def check(text: str, root: Path = ROOT) -> list[str]:
    """Every marker in ``text`` with the number before it; returns the problems found."""
    problems = []
    for match in MARKER.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        where = f"line {line}: {match.group(0)}"
        shown = NUMBER.search(text[max(0, match.start() - 40):match.start()])
        if not shown:
            problems.append(f"{where}: no number right before the marker")
            continue
        path = root / match.group("file")
        if not path.is_file():
            problems.append(f"{where}: no record {match.group('file')}")
            continue
        try:
            value = resolve(json.loads(path.read_text(encoding="utf-8")), match.group("pointer"))
        except (KeyError, IndexError, ValueError, TypeError):
            problems.append(f"{where}: {match.group('pointer')} is not in {match.group('file')}")
            continue
        opts = match.group("opts").split()
        value = float(value) * (100 if "x100" in opts else 1) / (60 if "min" in opts else 1)
        text_num = shown.group("num").replace(",", "").replace("−", "-")
        digits = len(text_num.split(".")[1]) if "." in text_num else 0
        if round(value, digits) != float(text_num):
            problems.append(f"{where}: the text says {text_num}, the record "
                            f"{value:.{digits + 2}f} (rounded: {round(value, digits)})")
    return problems


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_quoted_numbers_match_their_records(path):
    problems = check(path.read_text(encoding="utf-8"))
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_the_check_catches_drift_and_bad_markers(tmp_path):
    (tmp_path / "r.json").write_text(json.dumps({"a": {"b c": [0.87349, 123.0]}, "s": 390}))
    good = ("linear 0.873<!-- rec: r.json#/a/b c/0 --> or 87.3%<!-- rec: r.json#/a/b c/0 x100 -->"
            ", 6.5 min<!-- rec: r.json#/s min -->, 123<!-- rec: r.json#/a/b c/1 -->")
    assert check(good, tmp_path) == []
    assert "the text says 0.874" in check("0.874<!-- rec: r.json#/a/b c/0 -->", tmp_path)[0]
    assert "is not in" in check("0.87<!-- rec: r.json#/a/x -->", tmp_path)[0]
    assert "no record" in check("0.87<!-- rec: q.json#/a -->", tmp_path)[0]
    assert "no number" in check("high<!-- rec: r.json#/a/b c/0 -->", tmp_path)[0]
