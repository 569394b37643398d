"""sslbook: the small PyTorch library behind the book *Self-Supervised Learning for Vision*.

Modules, in the direction their imports point:
``data``, ``augment`` -> ``models`` -> ``losses`` -> ``methods`` -> ``train``, ``evaluate``
-> ``plots``. ``exercises`` holds the checkers for the chapters' exercises.
"""

from __future__ import annotations

import os

__version__ = "0.1.0"


def fast_mode() -> bool:
    """True when ``SSLBOOK_FAST`` is set to a true value (CI runs every chapter this way).

    Chapters read it once in their setup cell and shrink data subsets and step counts with it.
    """
    value = os.environ.get("SSLBOOK_FAST", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


def default_device() -> str:
    """``"cuda"`` when a GPU is visible, else ``"cpu"`` (pass it on; nothing here is global)."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
