"""Checkers for Chapter 1 (Introduction): the leave-one-out kNN vote, a few-label sampler, and
standardisation with the training statistics.

Each checker runs the student's function on random inputs, compares it with the reference answer
(in the private :mod:`sslbook.exercises._reference`) or with the properties the library's
:func:`sslbook.data.few_labels` has, names the mistake when it recognises it, and returns a
:class:`~sslbook.exercises.CheckResult`; it never raises. Every checker takes a ``seed``: the
grader's hidden checks draw fresh inputs from it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.exercises import CheckResult, close, run_check
from sslbook.exercises._reference.ch01 import loo_knn_votes as _loo_knn_votes
from sslbook.exercises._reference.ch01 import standardise as _standardise

__all__ = ["check_few_labels", "check_loo_knn", "check_standardise"]


# --------------------------------------------------------------------------- Exercise 1.1
def _shares(votes: torch.Tensor) -> torch.Tensor:
    """Votes rescaled to sum 1 per row (a positive factor per row does not change the winner)."""
    votes = votes.double()
    return votes / votes.sum(1, keepdim=True).clamp_min(1e-300)


def _votes(sim: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int,
           weight: Callable) -> torch.Tensor:
    top_sim, top_idx = sim.topk(k, dim=1)  # N x k
    votes = torch.zeros(len(sim), num_classes, dtype=torch.float64)  # N x C
    return votes.scatter_add_(1, labels[top_idx], weight(top_sim))


def _loo_variants(x: torch.Tensor, labels: torch.Tensor, num_classes: int, k: int,
                  t: float) -> dict[str, torch.Tensor]:
    """Plausible wrong answers of Exercise 1.1, to name a student's mistake."""
    unit = F.normalize(x, dim=1)
    cos, dot = unit @ unit.T, x @ x.T  # N x N
    eye = torch.eye(len(x), dtype=torch.bool)
    loo, loo_dot = cos.masked_fill(eye, float("-inf")), dot.masked_fill(eye, float("-inf"))
    return {
        "each example votes for itself (its own similarity is 1, the largest): leave it out, "
        "e.g. set the diagonal of the similarity matrix to -inf before topk":
            _votes(cos, labels, num_classes, k, lambda s: (s / t).exp()),
        "every neighbour votes with weight 1: the weight is exp(s / T)":
            _votes(loo, labels, num_classes, k, torch.ones_like),
        "the similarities are dot products of unnormalised features: use cosine similarity "
        "(L2-normalise the rows first)":
            _votes(loo_dot, labels, num_classes, k, lambda s: (s / t).exp()),
        "the similarity is multiplied by T: the weight is exp(s / T)":
            _votes(loo, labels, num_classes, k, lambda s: (s * t).exp()),
        "the weight is s / T without the exponential: use exp(s / T)":
            _votes(loo, labels, num_classes, k, lambda s: s / t),
    }


def check_loo_knn(fn: Callable, verbose: bool = True, seed: int | None = None) -> CheckResult:
    """Check ``fn(features, labels, num_classes, k, temperature) -> votes`` (N x C): the
    leave-one-out weighted kNN vote of every training example by its k most similar others.

    Rows of the features have very different norms, so dot products pick other neighbours than
    cosine similarity. Votes are compared up to a positive factor per row. A vote that counts the
    example itself, an unweighted vote, unnormalised features, exp(s * T) and s / T without the
    exponential are recognised. With a ``seed`` (the grader's hidden checks) N, D, the number of
    classes, k and T are drawn from it.
    """
    cases = [(60, 8, 4, 5, 0.1), (45, 5, 3, 12, 0.5)]
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        cases = [(int(torch.randint(30, 80, (1,), generator=g0)),
                  int(torch.randint(3, 12, (1,), generator=g0)),
                  int(torch.randint(3, 7, (1,), generator=g0)),
                  int(torch.randint(3, 15, (1,), generator=g0)), t)
                 for t in (round(0.05 + 0.15 * float(torch.rand(1, generator=g0)), 3),
                           round(0.3 + 0.5 * float(torch.rand(1, generator=g0)), 3))]

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(11 if seed is None else seed + 1)
        for n, d, c, k, t in cases:
            x = torch.randn(n, d, generator=g, dtype=torch.float64) / d ** 0.5  # N x D
            x = x * torch.exp(0.5 * torch.randn(n, 1, generator=g,
                                                dtype=torch.float64))  # norms vary
            labels = torch.randint(0, c, (n,), generator=g)  # N
            got = fn(x.clone(), labels.clone(), c, k, t)
            if not isinstance(got, torch.Tensor):
                return False, f"return a torch.Tensor of votes, got {type(got).__name__}"
            got = got.detach().double()
            if tuple(got.shape) != (n, c):
                return False, (f"votes have shape {tuple(got.shape)}, expected ({n}, {c}): one "
                               "row per example, one column per class")
            if not torch.isfinite(got).all() or (got < 0).any():
                return False, ("votes must be finite and non-negative: each neighbour adds "
                               "exp(s / T) > 0 to its class")
            expected = _loo_knn_votes(x, labels, c, k, t)
            ok, hint = close(_shares(got), _shares(expected), atol=1e-6, rtol=1e-4)
            if ok:
                continue
            where = f"(N={n}, k={k}, T={t})"
            for mistake, value in _loo_variants(x, labels, c, k, t).items():
                if close(_shares(got), _shares(value), atol=1e-6, rtol=1e-4)[0]:
                    return False, f"{where} {mistake}"
            return False, (f"{where} the votes (each row rescaled to sum 1) differ from the "
                           f"leave-one-out vote: {hint}")
        return True, "each example voted on by its k most similar others, weights exp(s / T)"

    return run_check("Exercise 1.1 - the leave-one-out kNN vote", test, verbose)


# --------------------------------------------------------------------------- Exercise 1.2
def check_few_labels(fn: Callable, verbose: bool = True,
                     seed: int | None = None) -> CheckResult:
    """Check ``fn(labels, per_class, seed) -> indices``: a stratified sample without replacement.

    The answer must hold exactly ``per_class`` indices of every class, no index twice, no
    unlabelled example (label -1), valid positions only; the same seed must give the same subset
    and different seeds different subsets: the properties of :func:`sslbook.data.few_labels`
    (its exact draw is not required, since any seeded shuffle is a right answer). With a ``seed``
    (the grader's hidden checks) the class sizes, the number of classes and ``per_class`` are
    drawn from it.
    """
    sizes, per_class = (12, 30, 9, 50, 15), 8  # imbalanced; class 2 has barely enough examples
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        per_class = int(torch.randint(3, 10, (1,), generator=g0))
        sizes = tuple(per_class + int(v) for v in
                      torch.randint(1, 40, (int(torch.randint(3, 8, (1,), generator=g0)),),
                                    generator=g0))
    draw_seeds = list(range(5)) if seed is None else \
        torch.randperm(1000, generator=g0)[:5].tolist()

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(2 if seed is None else seed + 1)
        labels = torch.cat([torch.full((n,), c) for c, n in enumerate(sizes)]
                           + [torch.full((10,), -1)])  # 10 unlabelled examples
        labels = labels[torch.randperm(len(labels), generator=generator)]  # N
        draws = []
        for s in draw_seeds:
            idx = torch.as_tensor(fn(labels.clone(), per_class, s)).flatten()
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
        again = torch.as_tensor(fn(labels.clone(), per_class, draw_seeds[0])).flatten().long()
        again = torch.sort(again)
        if not torch.equal(again.values, draws[0]):
            return False, "the same seed gave two different subsets: seed a torch.Generator"
        if all(torch.equal(d, draws[0]) for d in draws[1:]):
            return False, (f"seeds {draw_seeds} all gave the same subset: the choice inside "
                           "each class must be random (shuffle with the seeded generator)")
        return True, "stratified, without replacement, reproducible and random across seeds"

    return run_check("Exercise 1.2 - stratified few-label subset", test, verbose)


# --------------------------------------------------------------------------- Exercise 1.3
def _standardise_variants(train: torch.Tensor, test: torch.Tensor) -> dict[str, tuple]:
    """Plausible wrong answers of Exercise 1.3, to name a student's mistake."""
    mean, std = train.mean(0), train.std(0).clamp_min(1e-6)
    both = torch.cat([train, test])
    b_mean, b_std = both.mean(0), both.std(0).clamp_min(1e-6)
    t_mean, t_std = test.mean(0), test.std(0).clamp_min(1e-6)

    def rows(x):
        return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True).clamp_min(1e-6)

    return {
        "the test set is standardised with its own mean and std: use the training statistics "
        "for both sets (the test images stand for images the model has not seen)":
            ((train - mean) / std, (test - t_mean) / t_std),
        "the statistics come from the training and the test features together: compute them "
        "on the training features only":
            ((train - b_mean) / b_std, (test - b_mean) / b_std),
        "each example (row) is standardised: standardise each feature (column) over the "
        "examples, dim=0": (rows(train), rows(test)),
        "the features are centred but not divided by the standard deviation":
            (train - mean, test - mean),
        "the features are divided by the std but not centred: subtract the training mean":
            (train / std, test / std),
    }


def check_standardise(fn: Callable, verbose: bool = True,
                      seed: int | None = None) -> CheckResult:
    """Check ``fn(train, test) -> (train_std, test_std)``: every feature standardised with the
    mean and standard deviation of the *training* features; a feature constant on the training
    set must give 0, not NaN.

    The test features are shifted and rescaled (so test statistics differ from the training
    ones) and one feature is constant, like a border pixel of Fashion-MNIST. The sample std
    (``std(0)``, as :func:`sslbook.evaluate.linear_probe`) and the population std
    (``std(0, unbiased=False)``, as scikit-learn's ``StandardScaler``) are both accepted. With a
    ``seed`` (the grader's hidden checks) the sizes and values are drawn from it.
    """
    n, m, d = 40, 25, 6
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        n, m, d = (int(v) for v in (torch.randint(20, 60, (1,), generator=g0),
                                    torch.randint(10, 40, (1,), generator=g0),
                                    torch.randint(3, 10, (1,), generator=g0)))

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(13 if seed is None else seed + 1)
        scale = torch.exp(2 * torch.randn(d, generator=g, dtype=torch.float64))  # D
        offset = 5 * torch.randn(d, generator=g, dtype=torch.float64)  # D
        train = torch.randn(n, d, generator=g, dtype=torch.float64) * scale + offset  # N x D
        test_x = (torch.randn(m, d, generator=g, dtype=torch.float64) * 1.5 + 0.8) * scale \
            + offset  # M x D, a shifted, wider distribution
        train[:, 0] = test_x[:, 0] = 0.25  # a constant feature (a border pixel)
        out = fn(train.clone(), test_x.clone())
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            return False, "return a pair (standardised train, standardised test)"
        got_train, got_test = (torch.as_tensor(o).detach().double() for o in out)
        if got_train.shape != train.shape or got_test.shape != test_x.shape:
            return False, (f"shapes {tuple(got_train.shape)} and {tuple(got_test.shape)}, "
                           f"expected {tuple(train.shape)} and {tuple(test_x.shape)}")
        if not (torch.isfinite(got_train).all() and torch.isfinite(got_test).all()):
            return False, ("NaN or inf in your output: a feature that is constant on the "
                           "training set has std 0; clamp the std (e.g. clamp_min(1e-6)) so "
                           "that the feature becomes 0")
        for unbiased in (True, False):
            ref_train, ref_test = _standardise(train, test_x)
            if not unbiased:
                factor = (n / (n - 1)) ** 0.5  # population std = sample std / factor
                ref_train, ref_test = ref_train * factor, ref_test * factor
                ref_train[:, 0] = ref_test[:, 0] = 0.0
            if close(got_train, ref_train)[0] and close(got_test, ref_test)[0]:
                return True, ("every feature standardised with the training mean and std, "
                              "constant features give 0")
        for mistake, (wrong_train, wrong_test) in _standardise_variants(train, test_x).items():
            if close(got_train, wrong_train, rtol=2e-2)[0] and \
                    close(got_test, wrong_test, rtol=2e-2)[0]:
                return False, mistake
        ref_train, ref_test = _standardise(train, test_x)
        if not close(got_train, ref_train, rtol=2e-2)[0]:
            return False, f"the training features: {close(got_train, ref_train)[1]}"
        return False, f"the test features: {close(got_test, ref_test)[1]}"

    return run_check("Exercise 1.3 - standardise with the training statistics", test, verbose)
