"""Reference answers of the exercises that the checkers compare with (Chapters 8 and 9).

Private on purpose: the chapters' exercise cells import their checkers from
``sslbook.exercises.chNN``, and those modules no longer hold the answers under the exercises' names.
A student can still read this file (the book is open source), so the grader of ``sslbook.teach``
flags a submission whose function calls into this module or into the library function the exercise
asks to re-write (docs/teaching.md, "Using the library's own implementation").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


# --------------------------------------------------------------------------- Chapter 8
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


# --------------------------------------------------------------------------- Chapter 9
@torch.no_grad()
def momentum_update(encoder_q: nn.Module, encoder_k: nn.Module, m: float) -> None:
    """In place: every parameter of ``encoder_k`` becomes ``m * theta_k + (1 - m) * theta_q``
    (MoCo, arXiv:1911.05722, Eq. 2). ``encoder_q`` is left unchanged."""
    for p_q, p_k in zip(encoder_q.parameters(), encoder_k.parameters(), strict=True):
        p_k.mul_(m).add_(p_q, alpha=1.0 - m)


def moco_logits(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor,
                temperature: float = 0.2) -> torch.Tensor:
    """N x (1+K) logits of MoCo's Algorithm 1: column 0 holds ``q_i . k_i / T`` (the positive),
    columns 1..K hold ``q_i . queue_j / T`` (the negatives); q, k, queue rows L2-normalised.
    ``F.cross_entropy(logits, zeros(N))`` is then Eq. 1 (:func:`sslbook.losses.info_nce_queue`).
    """
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    l_pos = (q * k).sum(dim=1, keepdim=True)  # N x 1
    l_neg = q @ queue.T  # N x K
    return torch.cat([l_pos, l_neg], dim=1) / temperature  # N x (1+K)


def enqueue(queue: torch.Tensor, ptr: int, q: torch.Tensor,
            k: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The queue after one MoCo step: the N keys ``k`` replace the N oldest entries, starting at
    row ``ptr`` and wrapping around the end (a ring buffer); returns (queue, new ptr). The
    queries ``q`` are not stored: the dictionary holds keys (arXiv:1911.05722, Sec. 3.2)."""
    size = queue.shape[0]
    queue = queue.clone()
    idx = (ptr + torch.arange(k.shape[0])) % size  # N, wraps around the end
    queue[idx] = k
    return queue, (ptr + k.shape[0]) % size
