"""Import a chapter's exercise solutions (chapters/solutions/chNN.py) by path, for the tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

SOLUTIONS = Path(__file__).resolve().parents[1] / "chapters" / "solutions"


def load_solutions(chapter: str) -> ModuleType:
    """``load_solutions("ch03")`` -> the module chapters/solutions/ch03.py."""
    path = SOLUTIONS / f"{chapter}.py"
    spec = importlib.util.spec_from_file_location(f"solutions_{chapter}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def not_attempted(*args, **kwargs):
    """A student's stub that has not been written yet."""
    raise NotImplementedError
