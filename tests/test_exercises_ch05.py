"""The Chapter 5 checkers accept the solutions and equivalent rewrites and reject plausible wrong
answers with a hint, on the default inputs and on hidden seeds."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sslbook.exercises.ch05 import check_confusion_matrix, check_cross_entropy, check_pair_noise

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("ch05_solutions",
                                               ROOT / "chapters" / "solutions" / "ch05.py")
solutions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(solutions)
SEEDS = (None, 1, 12345, 2**31 - 1)


def stub(*args, **kwargs):
    raise NotImplementedError


# --------------------------------------------------------------------------- 5.1
def _log_p(logits):
    return logits - torch.logsumexp(logits, dim=1, keepdim=True)


def ce_sum(logits, targets, smoothing):
    return F.cross_entropy(logits, targets, label_smoothing=smoothing, reduction="sum")


def ce_no_minus(logits, targets, smoothing):
    return -F.cross_entropy(logits, targets, label_smoothing=smoothing)


def ce_probabilities(logits, targets, smoothing):
    p = logits.softmax(dim=1)
    return -((1 - smoothing) * p[torch.arange(len(targets)), targets]
             + smoothing * p.mean(dim=1)).mean()


def ce_smooth_others_only(logits, targets, smoothing):
    num_classes = logits.shape[1]
    one_hot = F.one_hot(targets, num_classes).float()
    target = (1 - smoothing) * one_hot + smoothing / (num_classes - 1) * (1 - one_hot)
    return -(target * _log_p(logits)).sum(dim=1).mean()


def ce_naive_exp(logits, targets, smoothing):
    p = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
    num_classes = logits.shape[1]
    target = torch.full_like(p, smoothing / num_classes)
    target[torch.arange(len(targets)), targets] += 1 - smoothing
    return -(target * p.log()).sum(dim=1).mean()


def ce_ignores_smoothing(logits, targets, smoothing):
    return F.cross_entropy(logits, targets)


def ce_log_softmax(logits, targets, smoothing):
    """Equivalent rewrite: (1 - eps) NLL + eps * the mean of -log p over the classes."""
    log_p = F.log_softmax(logits, dim=1)
    nll = -log_p.gather(1, targets[:, None]).squeeze(1)
    return ((1 - smoothing) * nll - smoothing * log_p.mean(dim=1)).mean()


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_accepts_solution(seed):
    assert check_cross_entropy(solutions.my_cross_entropy, verbose=False, seed=seed).passed
    assert check_cross_entropy(ce_log_softmax, verbose=False, seed=seed).passed
    assert check_cross_entropy(
        lambda z, y, eps: F.cross_entropy(z, y, label_smoothing=eps), verbose=False,
        seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
def test_cross_entropy_rejects_wrong_answers(seed):
    hints = {ce_sum: "summed", ce_no_minus: "sign", ce_probabilities: "probabilities",
             ce_smooth_others_only: "ALL classes", ce_naive_exp: "maximum",
             ce_ignores_smoothing: ""}
    for wrong, hint in hints.items():
        result = check_cross_entropy(wrong, verbose=False, seed=seed)
        assert not result.passed, wrong.__name__
        assert hint in result.message, (wrong.__name__, result.message)


def test_cross_entropy_stub_is_not_attempted():
    result = check_cross_entropy(stub, verbose=False)
    assert not result.passed and "not attempted" in result.message


# --------------------------------------------------------------------------- 5.2
def noise_coin_flip(labels, fraction, pairs, generator=None):
    flip = torch.rand(len(labels), generator=generator) < fraction
    return torch.where(flip, pairs[labels], labels)


def noise_global_count(labels, fraction, pairs, generator=None):
    noisy = labels.clone()
    chosen = torch.randperm(len(labels), generator=generator)[:round(fraction * len(labels))]
    noisy[chosen] = pairs[labels[chosen]]
    return noisy


def noise_symmetric(labels, fraction, pairs, generator=None):
    noisy = labels.clone()
    num_classes = len(pairs)
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).flatten()
        chosen = members[torch.randperm(len(members), generator=generator)
                         [:round(fraction * len(members))]]
        offset = torch.randint(1, num_classes, (len(chosen),), generator=generator)
        noisy[chosen] = (labels[chosen] + offset) % num_classes
    return noisy


def noise_first_k(labels, fraction, pairs, generator=None):
    noisy = labels.clone()
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).flatten()
        noisy[members[:round(fraction * len(members))]] = pairs[c]
    return noisy


def noise_in_place(labels, fraction, pairs, generator=None):
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).flatten()
        chosen = members[torch.randperm(len(members), generator=generator)
                         [:round(fraction * len(members))]]
        labels[chosen] = pairs[c]
    return labels


def noise_sorted_keys(labels, fraction, pairs, generator=None):
    """Equivalent rewrite: a random key per example, the smallest round(fraction n_c) keys of
    each class change."""
    keys = torch.rand(len(labels), generator=generator)
    noisy = labels.clone()
    for c in range(len(pairs)):
        members = torch.nonzero(labels == c).flatten()
        chosen = members[keys[members].argsort()[:round(fraction * len(members))]]
        noisy[chosen] = pairs[c]
    return noisy


@pytest.mark.parametrize("seed", SEEDS)
def test_pair_noise_accepts_solution(seed):
    assert check_pair_noise(solutions.my_pair_noise, verbose=False, seed=seed).passed
    assert check_pair_noise(noise_sorted_keys, verbose=False, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
def test_pair_noise_rejects_wrong_answers(seed):
    hints = {noise_coin_flip: "exact", noise_global_count: "exact",
             noise_symmetric: "pairs[its class]", noise_first_k: "at random",
             noise_in_place: "in place"}
    for wrong, hint in hints.items():
        result = check_pair_noise(wrong, verbose=False, seed=seed)
        assert not result.passed, wrong.__name__
        assert hint in result.message, (wrong.__name__, result.message)


def test_pair_noise_stub_is_not_attempted():
    assert "not attempted" in check_pair_noise(stub, verbose=False).message


# --------------------------------------------------------------------------- 5.3
def confusion_transposed(predicted, labels, num_classes):
    return solutions.my_confusion_matrix(predicted, labels, num_classes).T


def confusion_sized_from_data(predicted, labels, num_classes):
    size = int(max(predicted.max(), labels.max())) + 1
    return solutions.my_confusion_matrix(predicted, labels, size)


def confusion_rates(predicted, labels, num_classes):
    counts = solutions.my_confusion_matrix(predicted, labels, num_classes).double()
    return counts / counts.sum(dim=1, keepdim=True).clamp_min(1)


def confusion_diagonal_only(predicted, labels, num_classes):
    counts = solutions.my_confusion_matrix(predicted, labels, num_classes)
    return torch.diag(torch.diag(counts))


def confusion_bincount(predicted, labels, num_classes):
    """Equivalent rewrite: one bincount of true * C + predicted."""
    return torch.bincount(labels * num_classes + predicted,
                          minlength=num_classes**2).view(num_classes, num_classes)


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_accepts_solution(seed):
    assert check_confusion_matrix(solutions.my_confusion_matrix, verbose=False, seed=seed).passed
    assert check_confusion_matrix(confusion_bincount, verbose=False, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_matrix_rejects_wrong_answers(seed):
    hints = {confusion_transposed: "swapped", confusion_sized_from_data: "num_classes",
             confusion_rates: "counts", confusion_diagonal_only: "difference"}
    for wrong, hint in hints.items():
        result = check_confusion_matrix(wrong, verbose=False, seed=seed)
        assert not result.passed, wrong.__name__
        assert hint in result.message, (wrong.__name__, result.message)


def test_checkers_never_raise_on_crashing_code():
    def crash(*args):
        return 1 / 0

    for check in (check_cross_entropy, check_pair_noise, check_confusion_matrix):
        result = check(crash, verbose=False)
        assert not result.passed and "ZeroDivisionError" in result.message
