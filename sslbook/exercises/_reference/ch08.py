"""Reference answers of Chapter 8 (SimCLR): the positive-pair mask and NT-Xent from it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["nt_xent_from_mask", "positive_mask"]


def positive_mask(n: int) -> torch.Tensor:
    """The 2N x 2N boolean mask of positive pairs for the embeddings ``z = cat([z1, z2])``:
    ``mask[i, j]`` is True when rows i and j are the two views of the same image, i.e.
    ``j = i + N`` for i < N and ``j = i - N`` for i >= N (SimCLR, arXiv:2002.05709, Eq. 1)."""
    if n < 1:
        raise ValueError(f"n must be >= 1 images, got {n}")
    idx = torch.arange(2 * n)  # 2N
    partner = (idx + n) % (2 * n)  # 2N, the other view of the same image
    return partner.unsqueeze(0) == idx.unsqueeze(1)  # 2N x 2N, mask[i, j] = (j == partner[i])


def nt_xent_from_mask(z: torch.Tensor, pos_mask: torch.Tensor,
                      temperature: float = 0.5) -> torch.Tensor:
    """NT-Xent (SimCLR, arXiv:2002.05709, Eq. 1) of 2N embeddings ``z`` (rows in any order) whose
    positive pairs are given by ``pos_mask`` (2N x 2N bool, one True per row, symmetric): the mean
    over all 2N anchors of -log(exp(s_pos / T) / sum_{k != anchor} exp(s_k / T)), with cosine
    similarities s."""
    z = F.normalize(z, dim=1)  # 2N x D
    logits = z @ z.T / temperature  # 2N x 2N
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)  # 2N x 2N
    logits = logits.masked_fill(self_mask, float("-inf"))  # the anchor is not its own candidate
    labels = pos_mask.to(torch.bool).float().argmax(dim=1)  # 2N, column of each positive
    return F.cross_entropy(logits, labels)
