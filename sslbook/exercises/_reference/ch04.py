"""Reference answer of Chapter 4: the learning rates of SGDR's warm restarts (the optimiser
steps are checked against torch.optim itself)."""

from __future__ import annotations

import torch

__all__ = ["sgdr_lrs"]


def sgdr_lrs(base_lr: float, T_0: int, T_mult: int, eta_min: float, steps: int) -> list[float]:
    """The learning rate ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts`` sets before
    each of ``steps`` scheduler steps (SGDR, Loshchilov & Hutter, ICLR 2017, Eq. 5: cycle i
    lasts T_0 * T_mult**i steps)."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(
        optimizer, T_0=T_0, T_mult=T_mult, eta_min=eta_min)
    lrs = []
    for _ in range(steps):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()  # no gradient: nothing moves, but the scheduler expects this order
        scheduler.step()
    return lrs
