"""Reference answers of Chapter 7 (self-supervised learning): uniformity on the hypersphere,
MAE's random masking and the effective rank (RankMe) of a batch of embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["effective_rank", "random_masking", "uniformity"]


def uniformity(z: torch.Tensor, t: float = 2.0) -> torch.Tensor:
    """``log mean_{i<j} exp(-t ||z_i - z_j||^2)`` of the L2-normalised rows of z (N x D): the
    uniformity loss of Wang and Isola (ICML 2020, arXiv:2005.10242, Sec. 4.1; the official
    code's ``torch.pdist(x, p=2).pow(2).mul(-t).exp().mean().log()``)."""
    z = F.normalize(z, dim=1)  # N x D on the unit sphere
    return torch.pdist(z, p=2).pow(2).mul(-t).exp().mean().log()  # pairs i < j


def random_masking(x: torch.Tensor, mask_ratio: float,
                   noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MAE's per-sample random masking (He et al., CVPR 2022, arXiv:2111.06377, Sec. 3, and the
    official ``models_mae.py`` ``random_masking``), with the uniform ``noise`` (N x L) given:
    keep the ``int(L * (1 - mask_ratio))`` patches of smallest noise, in increasing order of
    noise. Returns (kept tokens N x len_keep x D, mask N x L with 0 = kept, 1 = removed, in the
    original patch order, ids_restore N x L, the permutation that undoes the shuffle)."""
    n, length, d = x.shape
    len_keep = int(length * (1 - mask_ratio))
    ids_shuffle = torch.argsort(noise, dim=1)  # N x L, ascending: small noise is kept
    ids_restore = torch.argsort(ids_shuffle, dim=1)  # N x L, the inverse permutation
    ids_keep = ids_shuffle[:, :len_keep]  # N x len_keep
    x_masked = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))  # N x len_keep x D
    mask = torch.ones(n, length, dtype=x.dtype, device=x.device)  # N x L, shuffled order
    mask[:, :len_keep] = 0
    return x_masked, torch.gather(mask, 1, ids_restore), ids_restore


def effective_rank(z: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """RankMe (Garrido et al., ICML 2023, arXiv:2210.02885, Sec. 3): ``exp(-sum_k p_k log p_k)``
    with ``p_k = sigma_k / ||sigma||_1 + eps``, sigma the singular values of the embeddings
    z (N x D), taken as they are (not centred)."""
    sigma = torch.linalg.svdvals(z.double())  # min(N, D)
    p = sigma / sigma.sum() + eps
    return torch.exp(-(p * p.log()).sum())

