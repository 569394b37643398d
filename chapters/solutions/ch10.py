"""Solutions to the exercises of Chapter 10 (BYOL)."""

import math

import torch
import torch.nn.functional as F


@torch.no_grad()
def my_ema_update(online, target, tau):
    """In place: every target parameter xi <- tau * xi + (1 - tau) * theta."""
    for theta, xi in zip(online.parameters(), target.parameters(), strict=True):
        xi.mul_(tau).add_((1 - tau) * theta)


def my_cosine_tau(step, total_steps, tau_base):
    """tau = 1 - (1 - tau_base) * (cos(pi k / K) + 1) / 2."""
    return 1 - (1 - tau_base) * (math.cos(math.pi * step / total_steps) + 1) / 2


def my_byol_loss(p1, p2, z1, z2):
    """L(p1, sg(z2)) + L(p2, sg(z1)), each the batch mean of ||p/|p| - z/|z| ||^2."""
    def mse_of_unit_vectors(p, z):
        p = F.normalize(p, dim=1)  # B x D
        z = F.normalize(z.detach(), dim=1)  # B x D, stop-gradient on the target
        return ((p - z) ** 2).sum(dim=1).mean()  # = mean of 2 - 2 cos(p, z)

    return mse_of_unit_vectors(p1, z2) + mse_of_unit_vectors(p2, z1)
