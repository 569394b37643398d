"""Solutions to the exercises of Chapter 10 (BYOL)."""

import torch
import torch.nn.functional as F


def my_ema_weights(taus):
    """T decay rates -> T + 1 weights: xi_T = w[0] xi_0 + sum_k w[k] theta_k."""
    taus = torch.as_tensor(taus, dtype=torch.float64)  # T
    weights = torch.zeros(len(taus) + 1, dtype=torch.float64)
    weights[0] = 1.0  # before any step the target is xi_0
    for k, tau in enumerate(taus, start=1):  # step k: xi <- tau xi + (1 - tau) theta_k
        weights[:k] *= tau  # everything already in the target shrinks by tau_k
        weights[k] = 1 - tau  # theta_k enters with 1 - tau_k
    return weights


def my_byol_grad(p, z):
    """d/dp of mean_b ||p_b/|p_b| - z_b/|z_b| ||^2, by hand."""
    norm = p.norm(dim=1, keepdim=True)  # B x 1
    p_bar = p / norm  # B x D
    z_bar = z / z.norm(dim=1, keepdim=True)  # B x D
    cos = (p_bar * z_bar).sum(dim=1, keepdim=True)  # B x 1
    # L_b = 2 - 2 cos_b and d cos_b / d p_b = (z_bar - cos_b p_bar) / |p_b|
    return -2 * (z_bar - cos * p_bar) / (norm * len(p))


def my_byol_loss(p1, p2, z1, z2):
    """L(p1, sg(z2)) + L(p2, sg(z1)), each the batch mean of ||p/|p| - z/|z| ||^2."""
    def mse_of_unit_vectors(p, z):
        p = F.normalize(p, dim=1)  # B x D
        z = F.normalize(z.detach(), dim=1)  # B x D, stop-gradient on the target
        return ((p - z) ** 2).sum(dim=1).mean()  # = mean of 2 - 2 cos(p, z)

    return mse_of_unit_vectors(p1, z2) + mse_of_unit_vectors(p2, z1)
