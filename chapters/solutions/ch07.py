"""Solutions to the exercises of Chapter 7 (functions named as the notebook's stubs)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def my_uniformity(z, t=2.0):
    z = F.normalize(z, dim=1)  # N x D on the unit sphere
    sq_dist = torch.pdist(z, p=2).pow(2)  # N(N-1)/2 pairs i < j
    return sq_dist.mul(-t).exp().mean().log()


def my_random_masking(x, mask_ratio, noise):
    n, length, d = x.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)  # N x L, small noise first: kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # N x L, undoes the shuffle
    ids_keep = ids_shuffle[:, :len_keep]  # N x len_keep
    x_masked = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, d))
    mask = torch.ones(n, length)  # 1 = removed, in shuffled order
    mask[:, :len_keep] = 0
    mask = torch.gather(mask, 1, ids_restore)  # back to the original order
    return x_masked, mask, ids_restore


def my_effective_rank(z):
    sigma = torch.linalg.svdvals(z)  # singular values of the embeddings as they are
    p = sigma / sigma.sum() + 1e-7  # a distribution over the directions
    return torch.exp(-(p * torch.log(p)).sum())
