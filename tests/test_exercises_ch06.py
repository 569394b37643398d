"""Chapter 6 exercise checkers accept the solutions and reject plausible wrong answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from sslbook.exercises.ch06 import (
    check_kmeans_step,
    check_pca,
    check_purity,
    kmeans_step,
    pca_project,
    purity,
)

ROOT = Path(__file__).resolve().parents[1]


def load_solutions():
    spec = importlib.util.spec_from_file_location("ch06_solutions",
                                                  ROOT / "chapters" / "solutions" / "ch06.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOLUTIONS = load_solutions()


# --------------------------------------------------------------------------- references
def test_kmeans_step_reference_on_a_hand_example():
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 2.0]])
    C = torch.tensor([[1.0, 0.0], [9.0, 0.0], [100.0, 100.0]])
    assignment, new = kmeans_step(X, C)
    assert assignment.tolist() == [0, 0, 1, 1]
    torch.testing.assert_close(new, torch.tensor([[0.0, 0.5], [10.0, 1.0], [100.0, 100.0]]))


def test_pca_reference_matches_sklearn_up_to_sign():
    from sklearn.decomposition import PCA

    X = torch.randn(50, 6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    X = X * torch.linspace(2, 0.5, 6, dtype=torch.float64) + 3
    ours = pca_project(X, 2)
    theirs = torch.from_numpy(PCA(2).fit_transform(X.numpy()))
    signs = torch.sign((ours * theirs).sum(0))
    torch.testing.assert_close(ours * signs, theirs)


def test_purity_reference_on_a_hand_example():
    assignment = torch.tensor([5, 5, 5, -1, -1, 2])
    classes = torch.tensor([0, 0, 1, 1, 1, 0])
    assert purity(assignment, classes) == pytest.approx(5 / 6)  # 2 + 2 + 1 correct
    with pytest.raises(ValueError, match="one cluster id per point"):
        purity(assignment[:3], classes)


# --------------------------------------------------------------------------- solutions pass
@pytest.mark.parametrize("check, fn", [
    (check_kmeans_step, SOLUTIONS.my_kmeans_step),
    (check_pca, SOLUTIONS.my_pca),
    (check_purity, SOLUTIONS.my_purity),
])
def test_solutions_pass(check, fn):
    result = check(fn, verbose=False)
    assert result.passed, result.message


def test_unfinished_stub_is_reported_not_raised():
    def stub(*args):
        raise NotImplementedError

    for check in (check_kmeans_step, check_pca, check_purity):
        result = check(stub, verbose=False)
        assert not result.passed and "not attempted" in result.message


# --------------------------------------------------------------------------- wrong answers
def _update(X, C, assignment):
    counts = torch.bincount(assignment, minlength=len(C))
    sums = torch.zeros_like(C).index_add_(0, assignment, X)
    return counts, sums


def kmeans_argmax(X, C):
    assignment = torch.cdist(X, C).argmax(1)
    counts, sums = _update(X, C, assignment)
    return assignment, torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], C)


def kmeans_global_mean(X, C):
    assignment = torch.cdist(X, C).argmin(1)
    return assignment, X.mean(0).expand_as(C).clone()


def kmeans_empty_nan(X, C):
    assignment = torch.cdist(X, C).argmin(1)
    counts, sums = _update(X, C, assignment)
    return assignment, sums / counts[:, None]


def kmeans_empty_zero(X, C):
    assignment = torch.cdist(X, C).argmin(1)
    counts, sums = _update(X, C, assignment)
    return assignment, sums / counts.clamp_min(1)[:, None]


@pytest.mark.parametrize("wrong, hint", [
    (kmeans_argmax, "nearest"),
    (kmeans_global_mean, "mean of the points assigned"),
    (kmeans_empty_nan, "NaN"),
    (kmeans_empty_zero, "stay exactly where it was"),
])
def test_kmeans_step_rejects(wrong, hint):
    result = check_kmeans_step(wrong, verbose=False)
    assert not result.passed
    assert hint in result.message, result.message


def pca_uncentred(X, k):
    _, _, Vh = torch.linalg.svd(X, full_matrices=False)
    return X @ Vh[:k].T


def pca_smallest(X, k):
    centred = X - X.mean(0)
    eigenvalues, eigenvectors = torch.linalg.eigh(centred.T @ centred)
    return centred @ eigenvectors[:, :k]


def pca_directions(X, k):
    centred = X - X.mean(0)
    return torch.linalg.svd(centred, full_matrices=False)[2][:k]


def pca_whitened(X, k):  # U columns: right directions, wrong scale
    return torch.linalg.svd(X - X.mean(0), full_matrices=False)[0][:, :k]


@pytest.mark.parametrize("wrong, hint", [
    (pca_uncentred, "subtract the mean"),
    (pca_smallest, "smallest variance"),
    (pca_directions, "shape"),
    (pca_whitened, "difference"),
])
def test_pca_rejects(wrong, hint):
    result = check_pca(wrong, verbose=False)
    assert not result.passed
    assert hint in result.message, result.message


def purity_swapped(assignment, classes):
    return purity(classes, assignment)


def purity_unweighted(assignment, classes):
    values = [torch.bincount(classes[assignment == c]).max().item() / (assignment == c).sum()
              for c in assignment.unique()]
    return float(sum(values) / len(values))


def purity_as_accuracy(assignment, classes):
    return (assignment == classes).float().mean().item()


@pytest.mark.parametrize("wrong, hint", [
    (purity_swapped, "swapped"),
    (purity_unweighted, "weight each cluster"),
    (purity_as_accuracy, "weight each cluster"),
])
def test_purity_rejects(wrong, hint):
    result = check_purity(wrong, verbose=False)
    assert not result.passed
    assert hint in result.message, result.message
