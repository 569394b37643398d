"""Chapter 1 checkers: the solution and an equivalent rewrite pass, a bank of plausible wrong
answers (mutants) is rejected with a hint naming the mistake, hidden seeds change the inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from solutions_loader import load_solutions, not_attempted

from sslbook.data import few_labels
from sslbook.evaluate import knn_predict
from sslbook.exercises._reference import loo_knn_votes, standardise
from sslbook.exercises.ch01 import check_few_labels, check_loo_knn, check_standardise

solutions = load_solutions("ch01")
SEEDS = (None, 1, 12345, 2**31 - 1)


# --------------------------------------------------------------------------- Exercise 1.1
def test_loo_reference_agrees_with_the_library():
    """Leaving example i out and asking knn_predict about it gives the reference's winner."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(30, 6, generator=g), torch.randint(0, 3, (30,), generator=g)
    votes = loo_knn_votes(x, y, 3, k=5, temperature=0.1)
    for i in range(30):
        keep = torch.arange(30) != i
        assert knn_predict(x[keep], y[keep], x[i:i + 1], k=5, temperature=0.1) == \
            votes[i].argmax()


def loo_topk_plus_one(features, labels, num_classes, k=20, temperature=0.1):
    """Equivalent rewrite: k + 1 neighbours with the example itself, then drop the first."""
    z = F.normalize(features, dim=1)
    top_sim, top_idx = (z @ z.T).topk(k + 1, dim=1)
    weights = (top_sim[:, 1:] / temperature).softmax(dim=1)  # a per-row factor: still right
    return torch.zeros(len(z), num_classes, dtype=z.dtype).scatter_add_(
        1, labels[top_idx[:, 1:]], weights)


def loo_with_self(features, labels, num_classes, k=20, temperature=0.1):
    z = F.normalize(features, dim=1)
    top_sim, top_idx = (z @ z.T).topk(k, dim=1)
    return torch.zeros(len(z), num_classes, dtype=z.dtype).scatter_add_(
        1, labels[top_idx], (top_sim / temperature).exp())


def loo_unweighted(features, labels, num_classes, k=20, temperature=0.1):
    z = F.normalize(features, dim=1)
    sim = (z @ z.T).fill_diagonal_(float("-inf"))
    top_sim, top_idx = sim.topk(k, dim=1)
    return torch.zeros(len(z), num_classes, dtype=z.dtype).scatter_add_(
        1, labels[top_idx], torch.ones_like(top_sim))


def loo_dot_product(features, labels, num_classes, k=20, temperature=0.1):
    sim = (features @ features.T).fill_diagonal_(float("-inf"))
    top_sim, top_idx = sim.topk(k, dim=1)
    return torch.zeros(len(sim), num_classes, dtype=sim.dtype).scatter_add_(
        1, labels[top_idx], (top_sim / temperature).exp())


def loo_times_t(features, labels, num_classes, k=20, temperature=0.1):
    z = F.normalize(features, dim=1)
    sim = (z @ z.T).fill_diagonal_(float("-inf"))
    top_sim, top_idx = sim.topk(k, dim=1)
    return torch.zeros(len(z), num_classes, dtype=z.dtype).scatter_add_(
        1, labels[top_idx], (top_sim * temperature).exp())


@pytest.mark.parametrize("seed", SEEDS)
def test_loo_accepts_solution_and_rewrite(seed):
    assert check_loo_knn(solutions.loo_knn_votes, verbose=False, seed=seed).passed
    assert check_loo_knn(loo_topk_plus_one, verbose=False, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(loo_with_self, "votes for itself"),
                                          (loo_unweighted, "weight 1"),
                                          (loo_dot_product, "dot products"),
                                          (loo_times_t, "multiplied by T")])
def test_loo_rejects_mutants_with_a_hint(wrong, words, seed):
    result = check_loo_knn(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


# --------------------------------------------------------------------------- Exercise 1.2
def subset_boolean_mask(labels, per_class, seed=0):
    """Equivalent rewrite: a random key per example, the per_class smallest keys of each class."""
    g = torch.Generator().manual_seed(seed)
    keys = torch.rand(len(labels), generator=g)
    picked = torch.zeros(len(labels), dtype=torch.bool)
    for c in labels[labels >= 0].unique():
        members = torch.nonzero(labels == c).flatten()
        picked[members[keys[members].argsort()[:per_class]]] = True
    return torch.nonzero(picked).flatten()


def subset_ignoring_classes(labels, per_class, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labelled = torch.nonzero(labels >= 0).flatten()
    num_classes = len(torch.unique(labels[labelled]))
    return labelled[torch.randperm(len(labelled), generator=generator)[:per_class * num_classes]]


def subset_with_replacement(labels, per_class, seed=0):
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels[labels >= 0]).tolist():
        idx = torch.nonzero(labels == c).flatten()
        chosen.append(idx[torch.randint(len(idx), (per_class,), generator=generator)])
    return torch.cat(chosen)


def subset_first_of_each_class(labels, per_class, seed=0):
    return torch.cat([torch.nonzero(labels == c).flatten()[:per_class]
                      for c in torch.unique(labels[labels >= 0]).tolist()])


def subset_keeping_unlabelled(labels, per_class, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.cat([torch.nonzero(labels == c).flatten()[
        torch.randperm(int((labels == c).sum()), generator=generator)[:per_class]]
        for c in torch.unique(labels).tolist()])


def subset_unseeded(labels, per_class, seed=0):
    return solutions.stratified_subset(labels, per_class, seed=int(torch.randint(10**6, ())))


@pytest.mark.parametrize("seed", SEEDS)
def test_few_labels_accepts_solution_rewrite_and_library(seed):
    for fn in (solutions.stratified_subset, subset_boolean_mask, few_labels):
        assert check_few_labels(fn, verbose=False, seed=seed).passed, fn


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, word", [(subset_ignoring_classes, "count"),
                                         (subset_with_replacement, "twice"),
                                         (subset_first_of_each_class, "random"),
                                         (subset_keeping_unlabelled, "unlabelled"),
                                         (subset_unseeded, "same seed")])
def test_few_labels_rejects_mutants_with_a_hint(wrong, word, seed):
    result = check_few_labels(wrong, verbose=False, seed=seed)
    assert not result.passed and word in result.message, result.message


# --------------------------------------------------------------------------- Exercise 1.3
def test_standardise_reference_is_the_linear_probes():
    g = torch.Generator().manual_seed(0)
    train, test = torch.randn(20, 4, generator=g) * 3 + 1, torch.randn(7, 4, generator=g)
    train[:, 2] = test[:, 2] = 0.5
    a, b = standardise(train, test)
    torch.testing.assert_close(a.mean(0), torch.zeros(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(a.std(0)[[0, 1, 3]], torch.ones(3))
    assert (a[:, 2] == 0).all() and (b[:, 2] == 0).all()


def standardise_population_std(train, test):
    """Equivalent rewrite (StandardScaler's population std; std 0 replaced by 1)."""
    mean = train.mean(0)
    std = train.std(0, unbiased=False)
    std = torch.where(std > 0, std, torch.ones_like(std))
    return (train - mean) / std, (test - mean) / std


def standardise_test_own_stats(train, test):
    return solutions.standardise(train, train)[0], solutions.standardise(test, test)[0]


def standardise_pooled(train, test):
    both = torch.cat([train, test])
    out = solutions.standardise(both, both)[0]
    return out[:len(train)], out[len(train):]


def standardise_rows(train, test):
    def rows(x):
        return (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)

    return rows(train), rows(test)


def standardise_nan(train, test):
    mean, std = train.mean(0), train.std(0)
    return (train - mean) / std, (test - mean) / std


def standardise_centre_only(train, test):
    mean = train.mean(0)
    return train - mean, test - mean


@pytest.mark.parametrize("seed", SEEDS)
def test_standardise_accepts_solution_and_rewrite(seed):
    assert check_standardise(solutions.standardise, verbose=False, seed=seed).passed
    assert check_standardise(standardise_population_std, verbose=False, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(standardise_test_own_stats, "its own mean"),
                                          (standardise_pooled, "together"),
                                          (standardise_rows, "each example"),
                                          (standardise_nan, "NaN"),
                                          (standardise_centre_only, "not divided")])
def test_standardise_rejects_mutants_with_a_hint(wrong, words, seed):
    result = check_standardise(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


# --------------------------------------------------------------------------- all checkers
def test_references_are_not_in_the_student_facing_module():
    import sslbook.exercises.ch01 as ch01

    for name in ("loo_knn_votes", "standardise"):
        assert not hasattr(ch01, name), name
    with pytest.raises(ImportError):
        exec("from sslbook.exercises.ch01 import loo_knn_votes", {})


@pytest.mark.parametrize("checker", [check_loo_knn, check_few_labels, check_standardise])
def test_unfinished_stub_is_reported_not_raised(checker, capsys):
    result = checker(not_attempted)
    assert not result.passed and "not attempted" in result.message
    assert "FAIL" in capsys.readouterr().out
    crashing = checker(lambda *args: 1 / 0, verbose=False)
    assert not crashing.passed and "ZeroDivisionError" in crashing.message
