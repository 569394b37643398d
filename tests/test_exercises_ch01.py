"""Chapter 1 checkers accept the solutions and reject plausible wrong answers."""

from __future__ import annotations

import pytest
import torch
from solutions_loader import load_solutions, not_attempted

from sslbook.data import few_labels
from sslbook.exercises.ch01 import check_cosine_similarity, check_few_labels, check_knn_vote

solutions = load_solutions("ch01")



# --------------------------------------------------------------------------- Exercise 1.1
def vote_unweighted(sim, labels, num_classes, temperature=0.1):
    votes = torch.zeros(len(sim), num_classes)
    return votes.scatter_add_(1, labels, torch.ones_like(sim))


def vote_without_exp(sim, labels, num_classes, temperature=0.1):
    votes = torch.zeros(len(sim), num_classes)
    return votes.scatter_add_(1, labels, sim / temperature)


def vote_times_temperature(sim, labels, num_classes, temperature=0.1):
    votes = torch.zeros(len(sim), num_classes)
    return votes.scatter_add_(1, labels, (sim * temperature).exp())


def vote_softmax_normalised(sim, labels, num_classes, temperature=0.1):
    """Right up to a per-row factor: must be accepted."""
    votes = torch.zeros(len(sim), num_classes)
    return votes.scatter_add_(1, labels, (sim / temperature).softmax(dim=1))


def test_knn_vote_accepts_solution_and_rescaled_votes():
    assert check_knn_vote(solutions.knn_vote, verbose=False).passed
    assert check_knn_vote(vote_softmax_normalised, verbose=False).passed


@pytest.mark.parametrize("wrong", [vote_unweighted, vote_without_exp, vote_times_temperature])
def test_knn_vote_rejects_wrong_answers(wrong):
    result = check_knn_vote(wrong, verbose=False)
    assert not result.passed
    assert "votes" in result.message or "differ" in result.message


# --------------------------------------------------------------------------- Exercise 1.2
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


def test_few_labels_accepts_solution_and_library():
    assert check_few_labels(solutions.stratified_subset, verbose=False).passed
    assert check_few_labels(few_labels, verbose=False).passed


@pytest.mark.parametrize("wrong, word", [(subset_ignoring_classes, "count"),
                                         (subset_with_replacement, "twice"),
                                         (subset_first_of_each_class, "random"),
                                         (subset_keeping_unlabelled, "unlabelled"),
                                         (subset_unseeded, "same seed")])
def test_few_labels_rejects_wrong_answers(wrong, word):
    result = check_few_labels(wrong, verbose=False)
    assert not result.passed
    assert word in result.message


# --------------------------------------------------------------------------- Exercise 1.3
def cosine_dot_only(a, b):
    return a @ b.T


def cosine_wrong_dim(a, b):
    return (a / a.norm(dim=0, keepdim=True)) @ (b / b.norm(dim=0, keepdim=True)).T


def cosine_one_side(a, b):
    return (a / a.norm(dim=1, keepdim=True)) @ b.T


def cosine_transposed(a, b):
    return solutions.cosine_similarity_matrix(b, a)


def test_cosine_accepts_solution():
    assert check_cosine_similarity(solutions.cosine_similarity_matrix, verbose=False).passed


@pytest.mark.parametrize("wrong", [cosine_dot_only, cosine_wrong_dim, cosine_one_side,
                                   cosine_transposed])
def test_cosine_rejects_wrong_answers(wrong):
    assert not check_cosine_similarity(wrong, verbose=False).passed


# --------------------------------------------------------------------------- all checkers
@pytest.mark.parametrize("checker", [check_knn_vote, check_few_labels, check_cosine_similarity])
def test_unfinished_stub_is_reported_not_raised(checker, capsys):
    result = checker(not_attempted)
    assert not result.passed and "not attempted" in result.message
    assert "FAIL" in capsys.readouterr().out
    crashing = checker(lambda *args: 1 / 0, verbose=False)
    assert not crashing.passed and "ZeroDivisionError" in crashing.message
