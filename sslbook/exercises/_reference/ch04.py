"""Reference answer of Chapter 4: the learning rates of warm-up then cosine (the optimiser
steps are checked against torch.optim itself)."""

from __future__ import annotations

import torch

from sslbook.optim import warmup_cosine

__all__ = ["reference_lrs"]


def reference_lrs(base_lr: float, warmup_steps: int, total_steps: int,
                  final_lr_fraction: float, num_steps: int) -> list[float]:
    """The learning rates :func:`sslbook.optim.warmup_cosine` gives at steps 0 .. num_steps-1."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=base_lr)
    scheduler = warmup_cosine(optimizer, warmup_steps, total_steps, final_lr_fraction)
    lrs = []
    for _ in range(num_steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: nothing moves, but the scheduler expects this order
        scheduler.step()
    return lrs
