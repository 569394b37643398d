"""Reference answers of Chapter 10 (BYOL): the EMA update, the cosine schedule of tau, the
symmetrised loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["byol_loss", "cosine_tau_reference", "ema_update"]


@torch.no_grad()
def ema_update(online: nn.Module, target: nn.Module, tau: float) -> None:
    """In place, for every parameter: ``xi <- tau * xi + (1 - tau) * theta`` (BYOL Sec. 3.1);
    ``online`` (theta) is left unchanged."""
    for theta, xi in zip(online.parameters(), target.parameters(), strict=True):
        xi.mul_(tau).add_(theta, alpha=1.0 - tau)


def cosine_tau_reference(step: int, total_steps: int, tau_base: float) -> float:
    """``tau = 1 - (1 - tau_base) * (cos(pi k / K) + 1) / 2`` (BYOL Sec. 3.3): tau_base at
    k = 0, rising to 1 at k = K."""
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * step / total_steps) + 1.0) / 2.0


def byol_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor,
              z2: torch.Tensor) -> torch.Tensor:
    """Symmetrised BYOL loss (Eq. 2, L + L~): online predictions ``p1, p2`` (B x D) of views 1
    and 2 against the target projections of the *other* view, ``z2, z1`` (B x D), with a
    stop-gradient on the targets; each term is the batch mean of ``2 - 2 cos``."""
    def term(p, z):
        p = F.normalize(p, dim=1)  # B x D
        z = F.normalize(z.detach(), dim=1)  # B x D, no gradient into the target
        return (2 - 2 * (p * z).sum(dim=1)).mean()

    return term(p1, z2) + term(p2, z1)
