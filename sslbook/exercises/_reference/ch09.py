"""Reference answers of Chapter 9 (MoCo): momentum update, queue logits, ring buffer."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["enqueue", "moco_logits", "momentum_update"]


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
