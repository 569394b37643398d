"""Momentum (EMA) encoders: MoCo's key encoder and BYOL's target network.

Both papers keep a slow copy of the online network, updated after each optimizer step as
``xi <- tau * xi + (1 - tau) * theta`` (MoCo, arXiv:1911.05722, Eq. 2 with ``m = tau``;
BYOL, arXiv:2006.07733, Sec. 3.1). No gradient ever reaches the copy.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def copy_frozen(module: nn.Module) -> nn.Module:
    """Return a deep copy of ``module`` whose parameters have ``requires_grad=False``."""
    target = copy.deepcopy(module)
    for param in target.parameters():
        param.requires_grad_(False)
    return target


@torch.no_grad()
def update_momentum(online: nn.Module, target: nn.Module, tau: float) -> None:
    """In place: ``target = tau * target + (1 - tau) * online`` for every parameter.

    Buffers (BatchNorm running statistics) are copied from ``online``. ``tau = 0`` makes
    ``target`` an exact copy of ``online``; ``tau = 1`` leaves it unchanged.
    """
    if not 0.0 <= tau <= 1.0:
        raise ValueError(f"tau must lie in [0, 1], got {tau}")
    online_params = list(online.parameters())
    target_params = list(target.parameters())
    online_buffers = list(online.buffers())
    target_buffers = list(target.buffers())
    if len(online_params) != len(target_params) or len(online_buffers) != len(target_buffers):
        raise ValueError(
            "online and target have different structures; build target with copy_frozen(online)"
        )
    if online_params:
        torch._foreach_mul_(target_params, tau)  # xi <- tau * xi
        torch._foreach_add_(target_params, online_params, alpha=1.0 - tau)  # + (1 - tau) theta
    for target_buffer, online_buffer in zip(target_buffers, online_buffers, strict=True):
        target_buffer.copy_(online_buffer)


def cosine_tau(step: int, total_steps: int, tau_base: float) -> float:
    """BYOL's EMA schedule ``tau = 1 - (1 - tau_base) * (cos(pi k / K) + 1) / 2``.

    Rises from ``tau_base`` at step ``k = 0`` to 1 at ``k = K`` (BYOL, arXiv:2006.07733,
    Sec. 3.3, "Optimization"). Steps beyond ``K`` keep ``tau = 1``.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    k = min(max(step, 0), total_steps)
    return 1.0 - (1.0 - tau_base) * (math.cos(math.pi * k / total_steps) + 1.0) / 2.0
