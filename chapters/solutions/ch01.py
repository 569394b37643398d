"""Solutions to the exercises of Chapter 1 (functions named as the notebook's stubs)."""

from __future__ import annotations

import torch


def knn_vote(similarities: torch.Tensor, neighbour_labels: torch.Tensor, num_classes: int,
             temperature: float = 0.1) -> torch.Tensor:
    """Class votes M x C: each of the k neighbours adds exp(s / T) to its own class."""
    weights = (similarities / temperature).exp()  # M x k
    votes = torch.zeros(len(similarities), num_classes, dtype=weights.dtype)  # M x C
    return votes.scatter_add_(1, neighbour_labels, weights)


def stratified_subset(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of `per_class` examples of every class (label -1 never drawn)."""
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels[labels >= 0]).tolist():
        idx = torch.nonzero(labels == c).flatten()  # positions of class c
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


def cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """S[i, j] = <a_i, b_j> / (|a_i| |b_j|) for a (M x D) and b (N x D)."""
    a = a / a.norm(dim=1, keepdim=True)  # M x D, unit rows
    b = b / b.norm(dim=1, keepdim=True)  # N x D, unit rows
    return a @ b.T  # M x N
