"""Reference answers of Chapter 10 (BYOL): the weights of the online states in the target, the
gradient of the BYOL loss with respect to the prediction, the symmetrised loss."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["byol_grad", "byol_loss", "cosine_tau_reference", "ema_weights"]


def ema_weights(taus) -> torch.Tensor:
    """The weights of the target after T EMA steps ``xi_k = tau_k xi_{k-1} + (1 - tau_k) theta_k``
    (BYOL Sec. 3.1), as ``xi_T = w_0 xi_0 + sum_k w_k theta_k``: ``w_0 = prod_j tau_j`` and
    ``w_k = (1 - tau_k) prod_{j > k} tau_j``. Returns T + 1 weights (float64), ``xi_0``'s first.

    Computed by running the EMA itself on basis vectors (``xi_0 = e_0``, ``theta_k = e_k``), so
    it is the update of Sec. 3.1 and no formula of ours."""
    taus = torch.as_tensor(taus, dtype=torch.float64).flatten()  # T
    xi = torch.zeros(len(taus) + 1, dtype=torch.float64)  # T + 1, coordinates in (xi_0, theta)
    xi[0] = 1.0
    for k, tau in enumerate(taus, start=1):
        theta = torch.zeros_like(xi)
        theta[k] = 1.0
        xi = tau * xi + (1 - tau) * theta
    return xi


def byol_grad(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Gradient with respect to ``p`` (B x D) of the batch mean of ``||p/|p| - z/|z| ||^2``
    (BYOL Eq. 2): ``-2 / (B |p_b|) (z_b/|z_b| - cos_b p_b/|p_b|)`` row by row, orthogonal to
    ``p_b`` (the loss does not depend on the norm of p)."""
    norm = p.norm(dim=1, keepdim=True)  # B x 1
    p_bar, z_bar = p / norm, F.normalize(z, dim=1)  # B x D
    cos = (p_bar * z_bar).sum(dim=1, keepdim=True)  # B x 1
    return -2.0 / (len(p) * norm) * (z_bar - cos * p_bar)  # B x D


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
