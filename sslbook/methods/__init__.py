"""Self-supervised methods, one file each, as plain ``nn.Module``s.

Every method is built as ``Method(encoder, **paper_defaults)`` and used as::

    loss = method(views)                      # views: list of >= 2 batches, float in [0, 1]
    loss.backward()
    method.on_before_step(step, total_steps)  # e.g. SwAV freezes its prototypes
    optimizer.step()
    method.on_step_end(step, total_steps)     # e.g. MoCo / BYOL momentum update

``method.encoder`` is the network to evaluate; ``method.config`` the constructor arguments;
``Method.default_optimizer`` the paper's optimizer (learning rate per 256 images).
"""

from __future__ import annotations

import inspect

from torch import nn

from sslbook.methods.byol import BYOL
from sslbook.methods.moco import MoCo
from sslbook.methods.momentum import copy_frozen, cosine_tau, update_momentum
from sslbook.methods.simclr import SimCLR
from sslbook.methods.simsiam import SimSiam
from sslbook.methods.swav import SwAV

__all__ = [
    "BYOL",
    "METHODS",
    "MoCo",
    "SimCLR",
    "SimSiam",
    "SwAV",
    "copy_frozen",
    "cosine_tau",
    "create",
    "update_momentum",
]

METHODS: dict[str, type[nn.Module]] = {
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "simsiam": SimSiam,
    "swav": SwAV,
}


def create(name: str, encoder: nn.Module, **kwargs) -> nn.Module:
    """Build the method ``name`` (one of ``METHODS``) around ``encoder``.

    ``kwargs`` override the paper defaults; ``create(name, encoder, **method.config)``
    rebuilds a method with the same settings.
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid names: {', '.join(METHODS)}")
    cls = METHODS[key]
    valid = [p for p in inspect.signature(cls).parameters if p != "encoder"]
    bad = [k for k in kwargs if k not in valid]
    if bad:
        raise TypeError(
            f"{cls.__name__} got unexpected argument(s) {', '.join(bad)}; "
            f"valid arguments: {', '.join(valid)}"
        )
    return cls(encoder, **kwargs)
