"""Checkers for Chapter 6 (unsupervised learning): a mini-batch K-means step, PCA projection,
purity.

The references (in the private :mod:`sslbook.exercises._reference`) are Sculley's mini-batch
K-means (WWW 2010, Algorithm 1), PCA by the SVD of the centred data (Bishop, PRML 2006,
Sec. 12.1) and cluster purity. Every checker takes a ``seed``: the grader's hidden checks draw
fresh inputs from it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from sslbook.exercises import CheckResult, close, run_check
from sslbook.exercises._reference.ch06 import minibatch_kmeans_step as _minibatch_kmeans_step
from sslbook.exercises._reference.ch06 import pca_project as _pca_project
from sslbook.exercises._reference.ch06 import purity as _purity

__all__ = ["check_minibatch_kmeans", "check_pca", "check_purity"]


# --------------------------------------------------------------------------- Exercise 6.1
def _sequential(X, C, counts, reassign: bool, lr_before: bool = False):
    """Sculley's loop point by point; ``reassign``: nearest centroid after each update (a slip);
    ``lr_before``: the rate 1 / v taken before the count grows (a slip, v = 0 -> skip)."""
    C, v = C.clone(), counts.clone().double()
    cached = torch.cdist(X, C).argmin(1)
    for i, x in enumerate(X):
        c = int(torch.cdist(x[None], C).argmin()) if reassign else int(cached[i])
        if lr_before:
            eta = 1.0 / v[c] if v[c] > 0 else 1.0
            v[c] += 1
        else:
            v[c] += 1
            eta = 1.0 / v[c]
        C[c] = (1 - eta) * C[c] + eta * x
    return C, v


def _kmeans_variants(X, C, counts) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Plausible wrong answers of Exercise 6.1 (centroids, counts), to name the mistake."""
    assignment = torch.cdist(X, C).argmin(1)
    n = torch.bincount(assignment, minlength=len(C))
    sums = torch.zeros_like(C).index_add_(0, assignment, X)
    lloyd = torch.where(n[:, None] > 0, sums / n.clamp_min(1)[:, None], C)
    right, right_counts = _minibatch_kmeans_step(X, C, counts)
    return {
        "each centroid became the mean of its new points only (a Lloyd step): the old centroid "
        "stands for the v points it has already seen, so weight it by its count (learning rate "
        "1 / v per point)": (lloyd, counts + n),
        "the counts were not updated: v grows by the number of points each centroid received":
            (right, counts),
        "points were re-assigned after every update: assign the whole batch first, with the "
        "centroids as given (Sculley caches the nearest centre)":
            _sequential(X, C, counts, reassign=True),
        "the rate 1 / v was taken before the count grew: increment v first, then move by "
        "1 / v": _sequential(X, C, counts, reassign=False, lr_before=True),
        "every centroid moved by the same fixed rate: the rate is 1 / v, per centroid":
            (C + 0.1 * (lloyd - C), counts + n),
    }


def check_minibatch_kmeans(fn: Callable, verbose: bool = True,
                           seed: int | None = None) -> CheckResult:
    """Check ``fn(X, centroids, counts) -> (new_centroids, new_counts)``: one mini-batch of
    Sculley's mini-batch K-means (every point assigned with the centroids as given; per point,
    ``v[c] += 1`` then ``c <- (1 - 1 / v[c]) c + x / v[c]``).

    Three batches: counts of very different sizes (0 included, where the centroid jumps onto its
    first point), a centroid far from every point (it must keep place and count), batches run
    one after the other. A Lloyd step, counts not updated, re-assignment after each update, the
    rate taken before the count grows and a fixed rate are recognised. With a ``seed`` (the
    grader's hidden checks) the sizes and values are drawn from it.
    """
    b, d, k = 30, 3, 4
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        b, d, k = (int(torch.randint(lo, hi, (1,), generator=g0))
                   for lo, hi in ((15, 50), (2, 6), (3, 7)))

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(6 if seed is None else seed + 1)
        C = torch.randn(k, d, generator=g, dtype=torch.float64)  # k x D
        C[-1] = 100.0  # far from every point: never receives one
        counts = torch.randint(0, 20, (k,), generator=g)  # k, points seen so far
        counts[0], counts[-1] = 0, 7
        ref_C, ref_counts = C.clone(), counts.clone()
        for batch in range(3):
            X = 2 * torch.randn(b, d, generator=g, dtype=torch.float64)  # B x D
            out = fn(X.clone(), ref_C.clone(), ref_counts.clone())
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return False, "return a pair (new_centroids, new_counts)"
            got_C, got_counts = (torch.as_tensor(o).detach() for o in out)
            exp_C, exp_counts = _minibatch_kmeans_step(X, ref_C, ref_counts)
            if got_C.shape != exp_C.shape or got_counts.shape != exp_counts.shape:
                return False, (f"shapes {tuple(got_C.shape)} and {tuple(got_counts.shape)}, "
                               f"expected {tuple(exp_C.shape)} (k x D) and "
                               f"{tuple(exp_counts.shape)} (k)")
            got_C, got_counts = got_C.double(), got_counts.double()
            if not torch.isfinite(got_C).all():
                return False, ("NaN or inf in the centroids: a centroid that receives no point "
                               "keeps its place and its count (do not divide by zero)")
            if close(got_C, exp_C)[0] and close(got_counts, exp_counts)[0]:
                ref_C, ref_counts = exp_C, exp_counts
                continue
            where = f"(batch {batch + 1})"
            for mistake, (wc, wv) in _kmeans_variants(X, ref_C, ref_counts).items():
                if close(got_C, wc)[0] and close(got_counts, wv.double())[0]:
                    return False, f"{where} {mistake}"
            if not close(got_C[-1], exp_C[-1])[0] or got_counts[-1] != exp_counts[-1]:
                return False, (f"{where} the far centroid received no point: it must keep its "
                               "place and its count")
            if not close(got_counts, exp_counts)[0]:
                return False, (f"{where} counts {got_counts.long().tolist()}, expected "
                               f"{exp_counts.tolist()}: v grows by the points each centroid "
                               "received")
            return False, f"{where} the centroids: {close(got_C, exp_C)[1]}"
        return True, "running means with per-centroid rate 1 / v, counts updated, empty kept"

    return run_check("Exercise 6.1 - a mini-batch K-means step", test, verbose)


def check_pca(fn: Callable, verbose: bool = True, seed: int | None = None) -> CheckResult:
    """Exercise 6.2: ``fn(X, k)`` returns N x k coordinates in the top-k principal directions,
    compared with the reference up to the sign of each column. With a ``seed`` (the grader's
    hidden checks) N, D, k and the data are drawn from it."""
    n, d, k = 200, 8, 3
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        n = int(torch.randint(80, 300, (1,), generator=g0))
        d = int(torch.randint(5, 12, (1,), generator=g0))
        k = int(torch.randint(2, d - 1, (1,), generator=g0))

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(62 if seed is None else seed + 1)
        scales = torch.linspace(3.0, 0.3, d, dtype=torch.float64)  # distinct variances
        rotation, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
        X = (torch.randn(n, d, generator=g, dtype=torch.float64) * scales) @ rotation.T
        X = (X + 5.0).float()  # N x D, far from the origin: centring matters
        out = torch.as_tensor(fn(X.clone(), k)).double()
        ref = _pca_project(X.double(), k)  # N x k
        if out.shape != ref.shape:
            return False, (f"shape {tuple(out.shape)}, expected {tuple(ref.shape)}: one row per "
                           "point, one column per component (coordinates, not the directions)")
        signs = torch.sign((out * ref).sum(0))  # k, align each column's sign
        signs[signs == 0] = 1
        ok, message = close(out * signs, ref, atol=1e-3, rtol=1e-3)
        if ok:
            return True, "coordinates match the reference up to the sign of each column"
        smallest = _pca_project(X.double(), d).flip(1)[:, :k]
        if close((out * torch.sign((out * smallest).sum(0))), smallest, atol=1e-3,
                 rtol=1e-3)[0]:
            return False, ("these are the components of smallest variance: eigh returns "
                           "eigenvalues in ascending order, take the last k, largest first")
        if (out.mean(0).abs() > 1e-2).any():
            return False, f"subtract the mean of X before projecting ({message})"
        return False, message

    return run_check("Exercise 6.2 pca", test, verbose)


def check_purity(fn: Callable, verbose: bool = True, seed: int | None = None) -> CheckResult:
    """Exercise 6.3: ``fn(assignment, classes)`` returns the purity of a clustering. With a
    ``seed`` (the grader's hidden checks) the clusterings are drawn from it."""

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(63 if seed is None else seed + 1)
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
            expected = _purity(assignment, classes)
            ok, message = close(value, expected, atol=1e-6, rtol=0)
            if not ok:
                swapped = _purity(classes, assignment)
                hint = (" (this is the purity with clusters and classes swapped: take, for each "
                        "cluster, its most common class)" if abs(value - swapped) < 1e-6 else
                        " (weight each cluster by its size: count the correctly labelled points "
                        "of all clusters, then divide by N)")
                return False, message + hint
        return True, "matches the reference on clusterings with unequal sizes and any ids"

    return run_check("Exercise 6.3 purity", test, verbose)
