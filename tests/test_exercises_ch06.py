"""Chapter 6 checkers: the solution and an equivalent rewrite pass, a bank of plausible wrong
answers (mutants) is rejected with a hint naming the mistake, hidden seeds change the inputs."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from sslbook.exercises._reference.ch06 import minibatch_kmeans_step, pca_project, purity
from sslbook.exercises.ch06 import check_minibatch_kmeans, check_pca, check_purity

ROOT = Path(__file__).resolve().parents[1]


def load_solutions():
    spec = importlib.util.spec_from_file_location("ch06_solutions",
                                                  ROOT / "chapters" / "solutions" / "ch06.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SOLUTIONS = load_solutions()


# --------------------------------------------------------------------------- references
def test_minibatch_reference_on_a_hand_example():
    X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 2.0]])
    C = torch.tensor([[1.0, 0.0], [9.0, 0.0], [100.0, 100.0]])
    counts = torch.tensor([2, 0, 5])
    new, v = minibatch_kmeans_step(X, C, counts)
    # centroid 0 had seen 2 points at (1, 0): (2 * (1, 0) + (0, 0) + (0, 1)) / 4
    torch.testing.assert_close(new, torch.tensor([[0.5, 0.25], [10.0, 1.0], [100.0, 100.0]]))
    assert v.tolist() == [4, 2, 5]


def test_minibatch_reference_is_sculleys_loop():
    """The vectorised running mean equals Algorithm 1's point-by-point loop (the solution)."""
    g = torch.Generator().manual_seed(3)
    X, C = torch.randn(40, 3, generator=g, dtype=torch.float64), torch.randn(5, 3, generator=g,
                                                                            dtype=torch.float64)
    counts = torch.randint(0, 9, (5,), generator=g)
    ours, v = minibatch_kmeans_step(X, C, counts)
    loop, v_loop = SOLUTIONS.my_minibatch_kmeans(X, C, counts)
    torch.testing.assert_close(ours, loop)
    assert torch.equal(v, v_loop)


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
SEEDS = (None, 1, 12345, 2**31 - 1)


def minibatch_vectorised(X, centroids, counts):
    """Equivalent rewrite: move each centroid by n / (v + n) towards the mean of its n points."""
    assignment = torch.cdist(X, centroids).argmin(1)
    n = torch.bincount(assignment, minlength=len(centroids))
    total = counts + n
    new = centroids.clone()
    for c in torch.nonzero(n).flatten():
        batch_mean = X[assignment == c].mean(0)
        new[c] = centroids[c] + (n[c] / total[c]) * (batch_mean - centroids[c])
    return new, total


def pca_svd(X, k):
    centred = X - X.mean(0)
    return centred @ torch.linalg.svd(centred, full_matrices=False)[2][:k].T


def purity_one_hot(assignment, classes):
    ids, cluster = assignment.unique(return_inverse=True)
    _, cls = classes.unique(return_inverse=True)
    table = torch.zeros(len(ids), int(cls.max()) + 1).index_put_(
        (cluster, cls), torch.ones(len(cls)), accumulate=True)
    return (table.max(1).values.sum() / len(classes)).item()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("check, fns", [
    (check_minibatch_kmeans, (SOLUTIONS.my_minibatch_kmeans, minibatch_vectorised)),
    (check_pca, (SOLUTIONS.my_pca, pca_svd)),
    (check_purity, (SOLUTIONS.my_purity, purity_one_hot)),
])
def test_solution_and_rewrite_pass(check, fns, seed):
    for fn in fns:
        result = check(fn, verbose=False, seed=seed)
        assert result.passed, (fn.__name__, result.message)


def test_unfinished_stub_is_reported_not_raised():
    def stub(*args):
        raise NotImplementedError

    for check in (check_minibatch_kmeans, check_pca, check_purity):
        result = check(stub, verbose=False)
        assert not result.passed and "not attempted" in result.message


def test_references_are_not_in_the_student_facing_module():
    import sslbook.exercises.ch06 as ch06

    for name in ("minibatch_kmeans_step", "kmeans_step", "pca_project", "purity"):
        assert not hasattr(ch06, name), name


# --------------------------------------------------------------------------- wrong answers
def mb_lloyd(X, C, counts):
    assignment = torch.cdist(X, C).argmin(1)
    n = torch.bincount(assignment, minlength=len(C))
    sums = torch.zeros_like(C).index_add_(0, assignment, X)
    return torch.where(n[:, None] > 0, sums / n.clamp_min(1)[:, None], C), counts + n


def mb_counts_stuck(X, C, counts):
    return SOLUTIONS.my_minibatch_kmeans(X, C, counts)[0], counts


def mb_reassign(X, C, counts):
    C, v = C.clone(), counts.clone()
    for x in X:
        c = torch.cdist(x[None], C).argmin()
        v[c] += 1
        C[c] += (x - C[c]) / v[c]
    return C, v


def mb_rate_before(X, C, counts):
    C, v = C.clone(), counts.clone().double()
    assignment = torch.cdist(X, C).argmin(1)
    for i, x in enumerate(X):
        c = assignment[i]
        eta = 1.0 / v[c] if v[c] > 0 else 1.0
        v[c] += 1
        C[c] = (1 - eta) * C[c] + eta * x
    return C, v


def mb_empty_nan(X, C, counts):
    assignment = torch.cdist(X, C).argmin(1)
    n = torch.bincount(assignment, minlength=len(C))
    sums = torch.zeros_like(C).index_add_(0, assignment, X)
    return (counts[:, None] * C + sums) / (counts + n)[:, None] * (n[:, None] > 0) + \
        sums / n[:, None] * (n[:, None] == 0), counts + n


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, hint", [
    (mb_lloyd, "Lloyd step"),
    (mb_counts_stuck, "counts were not updated"),
    (mb_reassign, "re-assigned"),
    (mb_rate_before, "before the count grew"),
    (mb_empty_nan, "NaN"),
])
def test_minibatch_kmeans_rejects(wrong, hint, seed):
    result = check_minibatch_kmeans(wrong, verbose=False, seed=seed)
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
@pytest.mark.parametrize("seed", SEEDS)
def test_pca_rejects(wrong, hint, seed):
    result = check_pca(wrong, verbose=False, seed=seed)
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
@pytest.mark.parametrize("seed", SEEDS)
def test_purity_rejects(wrong, hint, seed):
    result = check_purity(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert hint in result.message, result.message
