"""Checkers for Chapter 6 (unsupervised learning): one Lloyd step, PCA projection, purity.

The references below are the definitions the chapter uses: Lloyd's K-means step (Lloyd 1982;
Bishop, PRML 2006, Sec. 9.1), PCA by the SVD of the centred data (Bishop 2006, Sec. 12.1) and
cluster purity.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sslbook.exercises import CheckResult, close, run_check


# --------------------------------------------------------------------------- references
def kmeans_step(X: torch.Tensor, centroids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One Lloyd iteration: nearest-centroid assignment (N), then centroid update (k x D).

    A centroid that receives no point stays where it was.
    """
    assignment = torch.cdist(X, centroids).argmin(1)  # N
    counts = torch.bincount(assignment, minlength=len(centroids))  # k
    sums = torch.zeros_like(centroids).index_add_(0, assignment, X)  # k x D
    new = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
    return assignment, new  # N, k x D


def pca_project(X: torch.Tensor, k: int) -> torch.Tensor:
    """Coordinates (N x k) of the rows of X in the top-k principal directions (SVD)."""
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


# --------------------------------------------------------------------------- checkers
def check_kmeans_step(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 6.1: ``fn(X, centroids) -> (assignment, new_centroids)`` is one Lloyd step."""

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(6)
        for trial in range(3):
            n, d, k = 60 + 20 * trial, 2 + trial, 4
            X = torch.randn(n, d, generator=g)  # N x D
            C = torch.randn(k, d, generator=g)  # k x D
            if trial == 2:
                C[-1] = 100.0  # far from every point: this cluster stays empty
            out = fn(X.clone(), C.clone())
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return False, "return a pair (assignment, new_centroids)"
            assignment, new = torch.as_tensor(out[0]), torch.as_tensor(out[1])
            ref_assignment, ref_new = kmeans_step(X, C)
            if assignment.shape != ref_assignment.shape:
                return False, (f"assignment has shape {tuple(assignment.shape)}, expected "
                               f"{tuple(ref_assignment.shape)} (one centroid index per point)")
            wrong = (assignment.long() != ref_assignment).sum().item()
            if wrong:
                return False, (f"{wrong} of {n} points are not assigned to their nearest "
                               "centroid (hint: the index of the smallest distance, argmin)")
            new = new.double()
            if new.shape == ref_new.shape and not torch.isfinite(new).all():
                return False, ("new centroids contain NaN or inf: a centroid with no points "
                               "must stay where it was (do not divide by a count of zero)")
            ok, message = close(new, ref_new)
            if not ok:
                if trial == 2 and close(new[:-1], ref_new[:-1])[0]:
                    return False, ("a centroid with no points must stay exactly where it was "
                                   f"(not NaN, not zero): {message}")
                return False, ("each new centroid is the mean of the points assigned to it, "
                               f"not of all points: {message}")
        return True, "assignment and update match the reference, empty cluster included"

    return run_check("Exercise 6.1 kmeans_step", test, verbose)


def check_pca(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 6.2: ``fn(X, k)`` returns N x k coordinates in the top-k principal directions,
    compared with the reference up to the sign of each column."""

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(62)
        n, d, k = 200, 8, 3
        scales = torch.linspace(3.0, 0.3, d, dtype=torch.float64)  # distinct variances
        rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        X = (torch.randn(n, d, generator=g, dtype=torch.float64) * scales) @ rotation.T
        X = (X + 5.0).float()  # N x D, far from the origin: centring matters
        out = torch.as_tensor(fn(X.clone(), k)).double()
        ref = pca_project(X.double(), k)  # N x k
        if out.shape != ref.shape:
            return False, (f"shape {tuple(out.shape)}, expected {tuple(ref.shape)}: one row per "
                           "point, one column per component (coordinates, not the directions)")
        signs = torch.sign((out * ref).sum(0))  # k, align each column's sign
        signs[signs == 0] = 1
        ok, message = close(out * signs, ref, atol=1e-3, rtol=1e-3)
        if ok:
            return True, "coordinates match the reference up to the sign of each column"
        smallest = pca_project(X.double(), d).flip(1)[:, :k]
        if close((out * torch.sign((out * smallest).sum(0))), smallest, atol=1e-3,
                 rtol=1e-3)[0]:
            return False, ("these are the components of smallest variance: eigh returns "
                           "eigenvalues in ascending order, take the last k, largest first")
        if (out.mean(0).abs() > 1e-2).any():
            return False, f"subtract the mean of X before projecting ({message})"
        return False, message

    return run_check("Exercise 6.2 pca", test, verbose)


def check_purity(fn: Callable, verbose: bool = True) -> CheckResult:
    """Exercise 6.3: ``fn(assignment, classes)`` returns the purity of a clustering."""

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(63)
        for trial in range(3):
            n = 300
            classes = torch.randint(0, 5, (n,), generator=g)  # N
            ids = torch.tensor([-1, 0, 3, 7, 12, 40])  # cluster ids need not be 0..k-1
            follow = torch.rand(n, generator=g) < 0.4 + 0.2 * trial  # clusters partly follow
            assignment = torch.where(follow, ids[classes],  # N
                                     ids[torch.randint(0, len(ids), (n,), generator=g)])
            if trial == 2:  # one big mixed cluster and small pure ones: unequal sizes
                assignment[:120] = 40
            value = fn(assignment.clone(), classes.clone())
            value = float(value.item() if isinstance(value, torch.Tensor) else value)
            expected = purity(assignment, classes)
            ok, message = close(value, expected, atol=1e-6, rtol=0)
            if not ok:
                swapped = purity(classes, assignment)
                hint = (" (this is the purity with clusters and classes swapped: take, for each "
                        "cluster, its most common class)" if abs(value - swapped) < 1e-6 else
                        " (weight each cluster by its size: count the correctly labelled points "
                        "of all clusters, then divide by N)")
                return False, message + hint
        return True, "matches the reference on clusterings with unequal sizes and any ids"

    return run_check("Exercise 6.3 purity", test, verbose)


__all__ = ["check_kmeans_step", "check_pca", "check_purity", "kmeans_step", "pca_project",
           "purity"]
