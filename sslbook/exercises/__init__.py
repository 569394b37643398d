"""Checkers for the chapters' exercises.

Each ``check_*`` function takes a student's function (or value), compares it with the library's
reference on random inputs, prints one clear line (pass, or fail with a hint) and returns a
:class:`CheckResult` that an autograder can read (``result.passed``, ``result.to_dict()``).
A checker never raises on a wrong or unfinished answer: it reports it.

One module per chapter (``ch01``, ``ch02`` ...); every checker is re-exported here, so
``from sslbook.exercises import check_knn_vote`` works.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import torch


@dataclass
class CheckResult:
    """The outcome of one exercise check."""

    exercise: str
    passed: bool
    message: str

    def to_dict(self) -> dict:
        return asdict(self)

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"[{'PASS' if self.passed else 'FAIL'}] {self.exercise}: {self.message}"


def report(exercise: str, passed: bool, message: str, verbose: bool = True) -> CheckResult:
    result = CheckResult(exercise, bool(passed), message)
    if verbose:
        print(result)
    return result


def run_check(exercise: str, test: Callable[[], tuple[bool, str]],
              verbose: bool = True) -> CheckResult:
    """Run ``test() -> (passed, message)``; an exception in the student's code is a failure
    whose message names the exception (NotImplementedError means 'not attempted yet')."""
    try:
        passed, message = test()
    except NotImplementedError:
        passed, message = False, "not attempted yet: replace `raise NotImplementedError`"
    except Exception as err:  # the student's code raised: report, do not crash the notebook
        frame = traceback.extract_tb(err.__traceback__)[-1]
        passed, message = False, (f"your code raised {type(err).__name__}: {err} "
                                  f"(line {frame.lineno}: {frame.line})")
    return report(exercise, passed, message, verbose)


def close(actual, expected, atol: float = 1e-5, rtol: float = 1e-4) -> tuple[bool, str]:
    """(equal within tolerance?, a hint saying how far off and where)."""
    actual = torch.as_tensor(actual, dtype=torch.float64)
    expected = torch.as_tensor(expected, dtype=torch.float64)
    if actual.shape != expected.shape:
        return False, f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    if torch.allclose(actual, expected, atol=atol, rtol=rtol):
        return True, "matches the reference"
    if not torch.isfinite(actual).all():
        bad = int((~torch.isfinite(actual)).sum())
        return False, f"{bad} value(s) are NaN or infinite; expected finite values"
    err = (actual - expected).abs()
    where = tuple(int(i) for i in torch.nonzero(err == err.max())[0]) if err.ndim else ()
    return False, (f"largest difference {err.max().item():.3g} at index {where}: got "
                   f"{actual[where].item():.6g}, expected {expected[where].item():.6g}")


class AutogradForbidden(RuntimeError):
    """Raised when an answer that must compute a gradient by hand calls autograd."""


@contextmanager
def no_autograd():
    """Inside the block, ``Tensor.backward``, ``torch.autograd.grad`` and ``torch.func``'s
    transforms raise :class:`AutogradForbidden`: for the exercises that ask for a gradient
    written by hand (the checkers compare it with autograd outside the block)."""
    import torch.func

    def refuse(*args, **kwargs):
        raise AutogradForbidden("this exercise asks for the gradient by hand: do not call "
                                "backward(), torch.autograd.grad or torch.func")

    patched = [(torch.autograd, "backward"), (torch.autograd, "grad")] + [
        (torch.func, name) for name in ("grad", "grad_and_value", "vjp", "jacrev", "jacfwd")]
    saved = [(module, name, getattr(module, name)) for module, name in patched]
    for module, name in patched:
        setattr(module, name, refuse)
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


def _collect_checkers() -> dict[str, Callable]:
    """Every ``check_*`` of the chapter modules ``ch01``, ``ch02`` ..., by name."""
    import importlib
    import pkgutil

    checkers: dict[str, Callable] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("ch"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for name in dir(module):
            if name.startswith("check_") and callable(getattr(module, name)):
                if name in checkers and checkers[name] is not getattr(module, name):
                    raise ImportError(f"two chapters define {name}; rename one of them")
                checkers[name] = getattr(module, name)
    return checkers


CHECKERS = _collect_checkers()
globals().update(CHECKERS)
__all__ = ["CHECKERS", "AutogradForbidden", "CheckResult", "close", "no_autograd", "report",
           "run_check", *CHECKERS]
