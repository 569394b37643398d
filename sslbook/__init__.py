"""sslbook: the small PyTorch library behind the book *Self-Supervised Learning for Vision*.

Modules, in the direction their imports point:
``data``, ``augment`` -> ``models`` -> ``losses`` -> ``methods`` -> ``train``, ``evaluate``,
``downstream``
-> ``plots``. ``exercises`` holds the checkers for the chapters' exercises.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"
# Where the book lives, named in this one place: the website's GitHub and Colab links
# (docs/book/settings.py), the notebooks' first cell, the Pages workflow's `notebooks` branch
# and the pinned download URL of the trained networks (sslbook.pretrained.URL) derive from it.
REPOSITORY = "https://github.com/sslbook/sslbook"


MODES = ("fast", "reader", "train", "record")


def mode() -> str:
    """The chapters' mode, from ``SSLBOOK_MODE`` (default ``"reader"``):

    - ``fast``: CI; small subsets and short from-scratch runs, under 90 s a chapter;
    - ``reader``: loads the trained networks (:mod:`sslbook.pretrained`) and recorded runs and
      shows trained results; at most 2 minutes a chapter on 2 cores;
    - ``train``: trains everything from scratch at full size; writes nothing;
    - ``record``: as ``train``, and writes ``results/`` (the only mode that writes).

    ``SSLBOOK_FAST=1``, the older switch, still means ``fast``. Chapters read the mode once in
    their setup cell; in JupyterLab, run ``%env SSLBOOK_MODE=train`` before that cell.
    """
    value = os.environ.get("SSLBOOK_MODE", "").strip().lower()
    if value:
        if value not in MODES:
            raise ValueError(f"SSLBOOK_MODE={value!r} is not a mode; use one of "
                             f"{', '.join(MODES)} (or unset it for reader)")
        return value
    legacy = os.environ.get("SSLBOOK_FAST", "").strip().lower()
    return "fast" if legacy not in ("", "0", "false", "no", "off") else "reader"


def fast_mode() -> bool:
    """True in ``fast`` mode (see :func:`mode`)."""
    return mode() == "fast"


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"`` (pass it on; nothing here is global)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
