"""Checkers for Chapter 1 (Introduction): the kNN vote, a few-label sampler, cosine similarity.

Each checker runs the student's function on random inputs, compares it with the library
(:func:`sslbook.evaluate.knn_predict`, :func:`sslbook.data.few_labels`) or with the formula the
library uses, and returns a :class:`~sslbook.exercises.CheckResult`; it never raises.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.evaluate import knn_predict
from sslbook.exercises import CheckResult, close, run_check


def _reference_votes(similarities: torch.Tensor, neighbour_labels: torch.Tensor,
                     num_classes: int, temperature: float) -> torch.Tensor:
    """votes[i, c] = sum_j exp(s_ij / T) [y_ij = c] (InstDisc, arXiv:1805.01978, Sec. 3.4)."""
    weights = (similarities.double() / temperature).exp()  # M x k
    votes = torch.zeros(len(similarities), num_classes, dtype=torch.float64)  # M x C
    return votes.scatter_add_(1, neighbour_labels, weights)


def check_knn_vote(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(similarities, neighbour_labels, num_classes, temperature) -> votes``.

    ``similarities`` (M x k) are the cosine similarities of M queries to their k nearest
    training examples, ``neighbour_labels`` (M x k, int64) the labels of those neighbours; the
    answer is an M x C tensor of class votes, each neighbour voting with weight exp(s / T).
    Votes are compared up to a positive factor per row (it does not change the winner), and
    the winners are compared with :func:`sslbook.evaluate.knn_predict`.
    """

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(1)
        for temperature, k in ((0.1, 20), (0.5, 7), (0.07, 50)):
            train = torch.randn(300, 16, generator=generator)  # N x D
            test_x = torch.randn(40, 16, generator=generator)  # M x D
            labels = torch.randint(0, 5, (300,), generator=generator)  # N
            sim = F.normalize(test_x, dim=1) @ F.normalize(train, dim=1).T  # M x N
            top_sim, top_idx = sim.topk(k, dim=1)  # M x k
            votes = fn(top_sim.clone(), labels[top_idx].clone(), 5, temperature)
            votes = torch.as_tensor(votes, dtype=torch.float64)
            if tuple(votes.shape) != (40, 5):
                return False, (f"votes have shape {tuple(votes.shape)}, expected (40, 5): one row "
                               "per query, one column per class")
            if not torch.isfinite(votes).all() or (votes < 0).any():
                return False, ("votes must be finite and non-negative: each neighbour adds "
                               "exp(s / T) > 0 to its class")
            expected = _reference_votes(top_sim, labels[top_idx], 5, temperature)
            ok, hint = close(votes / votes.sum(1, keepdim=True).clamp_min(1e-300),
                             expected / expected.sum(1, keepdim=True), atol=1e-6, rtol=1e-4)
            if not ok:
                return False, (f"with T = {temperature}, k = {k} the votes (each row rescaled to "
                               f"sum 1) differ from exp(s / T) summed per class: {hint}")
            predicted = knn_predict(train, labels, test_x, k=k, temperature=temperature)
            if not torch.equal(votes.argmax(1), predicted):
                return False, (f"with T = {temperature}, k = {k} the winning classes differ from "
                               "sslbook.evaluate.knn_predict")
        return True, "weighted votes match exp(s / T) per class and knn_predict's winners"

    return run_check("Exercise 1.1 - temperature-weighted kNN vote", test, verbose)


def check_few_labels(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(labels, per_class, seed) -> indices``: a stratified sample without replacement.

    The answer must hold exactly ``per_class`` indices of every class, no index twice, no
    unlabelled example (label -1), valid positions only; the same seed must give the same subset
    and different seeds different subsets: the properties of :func:`sslbook.data.few_labels`
    (its exact draw is not required, since any seeded shuffle is a right answer).
    """

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(2)
        sizes = (12, 30, 9, 50, 15)  # imbalanced classes; class 2 has barely enough examples
        labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)]
                           + [torch.full((10,), -1)])  # 10 unlabelled examples
        labels = labels[torch.randperm(len(labels), generator=generator)]  # N
        per_class = 8
        draws = []
        for seed in range(5):
            idx = torch.as_tensor(fn(labels.clone(), per_class, seed)).flatten()
            if idx.dtype.is_floating_point or idx.dtype == torch.bool:
                return False, f"return integer indices, not a {idx.dtype} tensor"
            idx = idx.long()
            if len(idx) and (idx.min() < 0 or idx.max() >= len(labels)):
                return False, (f"index {int(idx.min() if idx.min() < 0 else idx.max())} is not a "
                               f"position in labels (0 .. {len(labels) - 1})")
            if len(torch.unique(idx)) != len(idx):
                return False, ("an index appears twice: draw without replacement (a permutation "
                               "of each class, not random integers)")
            if (labels[idx] < 0).any():
                return False, "an unlabelled example (label -1) was drawn; skip label -1"
            counts = torch.bincount(labels[idx], minlength=len(sizes))
            if not (counts == per_class).all():
                return False, (f"per-class counts are {counts.tolist()}, expected {per_class} for "
                               "each class: sample inside every class, not from all labels")
            draws.append(torch.sort(idx).values)
        again = torch.sort(torch.as_tensor(fn(labels.clone(), per_class, 0)).flatten().long())
        if not torch.equal(again.values, draws[0]):
            return False, "the same seed gave two different subsets: seed a torch.Generator"
        if all(torch.equal(d, draws[0]) for d in draws[1:]):
            return False, ("seeds 0 to 4 all gave the same subset: the choice inside each class "
                           "must be random (shuffle with the seeded generator)")
        return True, "stratified, without replacement, reproducible and random across seeds"

    return run_check("Exercise 1.2 - stratified few-label subset", test, verbose)


def check_cosine_similarity(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(a, b) -> S`` with ``S[i, j] = cos(a_i, b_j)`` for a (M x D) and b (N x D)."""

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(3)
        a = torch.randn(7, 12, generator=generator) * torch.rand(7, 1, generator=generator) * 10
        b = torch.randn(5, 12, generator=generator) * torch.rand(5, 1, generator=generator) * 10
        expected = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T  # M x N
        got = torch.as_tensor(fn(a.clone(), b.clone()))
        if tuple(got.shape) != (7, 5):
            return False, (f"shape {tuple(got.shape)}, expected (7, 5): row i holds the "
                           "similarities of a[i] to every row of b")
        ok, hint = close(got, expected, atol=1e-5, rtol=1e-4)
        if not ok:
            if got.abs().max() > 1 + 1e-4:
                hint += "; a cosine similarity lies in [-1, 1]: divide by both rows' norms"
            return False, hint
        return True, "matches F.normalize(a) @ F.normalize(b).T"

    return run_check("Exercise 1.3 - cosine-similarity matrix", test, verbose)


__all__ = ["check_cosine_similarity", "check_few_labels", "check_knn_vote"]
