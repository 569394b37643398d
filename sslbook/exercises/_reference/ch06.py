"""Reference answers of Chapter 6 (unsupervised learning): a mini-batch K-means step, PCA
coordinates and cluster purity."""

from __future__ import annotations

import torch

__all__ = ["minibatch_kmeans_step", "pca_project", "purity"]


def minibatch_kmeans_step(X: torch.Tensor, centroids: torch.Tensor,
                          counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One mini-batch of Sculley's mini-batch K-means (Web-scale k-means clustering, WWW 2010,
    Algorithm 1): every point of the batch X (B x D) is assigned to its nearest centroid as given;
    then, point by point, the count v of its centroid grows by one and the centroid moves by
    1 / v towards it. Point by point this is a running mean, so all at once
    ``c <- (v c + sum of its new points) / (v + n)``, ``v <- v + n``. A centroid with no point of
    the batch keeps its place and its count. Returns (centroids k x D, counts k)."""
    assignment = torch.cdist(X, centroids).argmin(1)  # B, with the centroids as given
    n = torch.bincount(assignment, minlength=len(centroids))  # k, new points per centroid
    sums = torch.zeros_like(centroids).index_add_(0, assignment, X)  # k x D
    v = counts.to(centroids.dtype)  # k, points seen before
    total = (v + n)[:, None]  # k x 1
    new = torch.where(total > 0, (v[:, None] * centroids + sums) / total.clamp_min(1),
                      centroids)  # k x D
    return new, counts + n.to(counts.dtype)


def pca_project(X: torch.Tensor, k: int) -> torch.Tensor:
    """Coordinates (N x k) of the rows of X in the top-k principal directions (SVD of the centred
    data; Bishop, PRML 2006, Sec. 12.1)."""
    centred = X - X.mean(0)  # N x D
    _, _, Vh = torch.linalg.svd(centred, full_matrices=False)  # r x D
    return centred @ Vh[:k].T  # N x k


def purity(assignment: torch.Tensor, classes: torch.Tensor) -> float:
    """Fraction of points whose cluster's most common class is their own class."""
    assignment, classes = torch.as_tensor(assignment).long(), torch.as_tensor(classes).long()
    if assignment.shape != classes.shape:
        raise ValueError(f"assignment has shape {tuple(assignment.shape)} but classes has "
                         f"{tuple(classes.shape)}; give one cluster id per point")
    offset = classes - classes.min()  # non-negative for bincount
    correct = sum(torch.bincount(offset[assignment == c]).max().item()
                  for c in assignment.unique())
    return correct / len(classes)
