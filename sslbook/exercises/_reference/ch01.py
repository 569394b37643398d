"""Reference answers of Chapter 1 (Introduction): the leave-one-out kNN vote and standardisation
with the training statistics."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["loo_knn_votes", "standardise"]


def loo_knn_votes(features: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int = 20,
                  temperature: float = 0.1) -> torch.Tensor:
    """Leave-one-out weighted kNN votes (N x C): example i is voted on by its k most similar
    *other* examples (cosine similarity s), each adding exp(s / T) to its class (the vote of
    InstDisc, arXiv:1805.01978, Sec. 3.4, with the query left out of the stored examples)."""
    z = F.normalize(features.double(), dim=1)  # N x D, unit rows
    sim = z @ z.T  # N x N
    sim.fill_diagonal_(float("-inf"))  # an example is not its own neighbour
    top_sim, top_idx = sim.topk(k, dim=1)  # N x k
    weights = (top_sim / temperature).exp()  # N x k
    votes = torch.zeros(len(z), num_classes, dtype=torch.float64)  # N x C
    return votes.scatter_add_(1, labels.long()[top_idx], weights)


def standardise(train: torch.Tensor, test: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Both sets standardised per feature with the *training* mean and (sample) std, the std
    clamped at 1e-6 so that a feature constant on the training set becomes 0, not NaN (as the
    linear probe of :func:`sslbook.evaluate.linear_probe` does)."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)  # D, D
    return (train - mean) / std, (test - mean) / std
