"""Reference answers of Chapter 11 (SwAV): Sinkhorn-Knopp in the log domain and the gradient
of the swapped prediction with respect to the scores. (Exercise 11.1's reference is the
library's ``negative_cosine``.)"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sslbook.losses import sinkhorn

__all__ = ["log_sinkhorn", "swav_grad"]


def log_sinkhorn(scores: torch.Tensor, epsilon: float = 0.05,
                 iterations: int = 3) -> torch.Tensor:
    """SwAV's Sinkhorn-Knopp codes (Caron et al. 2020, Sec. 3.1 and App. A.1) computed on
    ``log Q``: every normalisation subtracts a ``logsumexp``, so nothing under- or overflows
    for a small epsilon. Equal to :func:`sslbook.losses.sinkhorn` wherever that one is finite.
    Returns B x K codes, rows summing to 1."""
    B, K = scores.shape
    log_q = scores.T / epsilon  # K x B
    log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)  # total mass 1
    for _ in range(iterations):
        log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(K)  # rows 1/K
        log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(B)  # cols 1/B
    return torch.exp(log_q + math.log(B)).T  # B x K


def swav_grad(scores1: torch.Tensor, scores2: torch.Tensor, temperature: float = 0.1,
              epsilon: float = 0.05,
              iterations: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of :func:`sslbook.losses.swav_loss` with respect to ``scores1`` and
    ``scores2`` (B x K each): the codes are constants, so view 1's gradient is
    ``(softmax(scores1 / T) - q2) / (2 B T)`` and view 2's ``(softmax(scores2 / T) - q1) /
    (2 B T)``."""
    B = len(scores1)
    q1 = sinkhorn(scores1, epsilon, iterations)  # B x K
    q2 = sinkhorn(scores2, epsilon, iterations)  # B x K
    g1 = (F.softmax(scores1 / temperature, dim=1) - q2) / (2 * B * temperature)
    g2 = (F.softmax(scores2 / temperature, dim=1) - q1) / (2 * B * temperature)
    return g1, g2
