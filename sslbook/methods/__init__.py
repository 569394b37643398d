"""Self-supervised methods, one file each, as small ``nn.Module``s on one base class.

Every method is built as ``Method(encoder, **paper_defaults)`` and used as::

    method.set_progress(step, total_steps, steps_per_epoch)  # knobs counted in epochs
    loss = method(views)                      # views: list of >= 2 batches, float in [0, 1]
    loss.backward()
    method.on_before_step(step, total_steps)  # e.g. SwAV freezes its prototypes
    optimizer.step()
    method.on_step_end(step, total_steps)     # e.g. MoCo / BYOL momentum update

``method.encoder`` is the network to evaluate; ``method.config`` the constructor arguments;
``Method.default_optimizer`` the paper's optimizer (learning rate per 256 images) and warm-up
epochs. The contract is :class:`sslbook.methods.base.Method`.
"""

from __future__ import annotations

import inspect

from torch import nn

from sslbook.methods.base import Method, encode_views
from sslbook.methods.byol import BYOL
from sslbook.methods.moco import MoCo
from sslbook.methods.momentum import copy_frozen, cosine_tau, update_momentum
from sslbook.methods.rotation import RotNet, rotation_batch
from sslbook.methods.simclr import SimCLR
from sslbook.methods.simsiam import SimSiam
from sslbook.methods.supervised import Supervised
from sslbook.methods.swav import SwAV

__all__ = [
    "BYOL",
    "METHODS",
    "Method",
    "REFERENCES",
    "MoCo",
    "RotNet",
    "SimCLR",
    "SimSiam",
    "Supervised",
    "SwAV",
    "copy_frozen",
    "cosine_tau",
    "create",
    "encode_views",
    "rotation_batch",
    "update_momentum",
]

METHODS: dict[str, type[nn.Module]] = {
    "simclr": SimCLR,
    "moco": MoCo,
    "byol": BYOL,
    "simsiam": SimSiam,
    "swav": SwAV,
}
# The book's reference encoders, trained by the same loop (sslbook.train.pretrain): a pretext
# task from before the contrastive methods (Chapter 7) and supervised training (Chapter 5).
REFERENCES: dict[str, type[nn.Module]] = {"rotation": RotNet, "supervised": Supervised}


def create(name: str, encoder: nn.Module, **kwargs) -> nn.Module:
    """Build the method ``name`` (one of ``METHODS`` or ``REFERENCES``) around ``encoder``.

    ``kwargs`` override the paper defaults; ``create(name, encoder, **method.config)``
    rebuilds a method with the same settings.
    """
    key = name.lower() if isinstance(name, str) else name
    registry = {**METHODS, **REFERENCES}
    if key not in registry:
        raise ValueError(f"unknown method {name!r}; valid names: {', '.join(registry)}")
    cls = registry[key]
    valid = [p for p in inspect.signature(cls).parameters if p != "encoder"]
    bad = [k for k in kwargs if k not in valid]
    if bad:
        raise TypeError(
            f"{cls.__name__} got unexpected argument(s) {', '.join(bad)}; "
            f"valid arguments: {', '.join(valid)}"
        )
    return cls(encoder, **kwargs)
