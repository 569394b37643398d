"""Chapter 11 checkers accept the solutions and reject plausible wrong answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from sslbook.exercises.ch11 import check_simsiam_loss, check_sinkhorn, check_swapped_prediction
from sslbook.losses import sinkhorn

SOLUTIONS = Path(__file__).resolve().parents[1] / "chapters" / "solutions" / "ch11.py"


def load_solutions():
    spec = importlib.util.spec_from_file_location("solutions_ch11", SOLUTIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def D(p, z):
    return -(F.normalize(p, dim=1) * F.normalize(z, dim=1)).sum(dim=1).mean()


def test_solutions_pass():
    s = load_solutions()
    assert check_simsiam_loss(s.my_simsiam_loss, verbose=False).passed
    assert check_sinkhorn(s.my_sinkhorn, verbose=False).passed
    assert check_swapped_prediction(s.my_swapped_prediction, verbose=False).passed


def test_unfinished_stub_is_reported_not_raised():
    def stub(*args):
        raise NotImplementedError

    for check in (check_simsiam_loss, check_sinkhorn, check_swapped_prediction):
        result = check(stub, verbose=False)
        assert not result.passed and "not attempted" in result.message


def test_simsiam_loss_rejects_wrong_answers():
    def not_symmetrised(p1, p2, z1, z2):
        return D(p1, z2.detach())

    def no_stop_gradient(p1, p2, z1, z2):
        return D(p1, z2) / 2 + D(p2, z1) / 2

    def no_normalisation(p1, p2, z1, z2):
        return -((p1 * z2.detach()).sum(1).mean() + (p2 * z1.detach()).sum(1).mean()) / 2

    expected = {not_symmetrised: "not symmetrised", no_stop_gradient: "stop-gradient",
                no_normalisation: "normalised"}
    for wrong, words in expected.items():
        result = check_simsiam_loss(wrong, verbose=False)
        assert not result.passed, wrong.__name__
        assert words in result.message, (wrong.__name__, result.message)


def test_sinkhorn_rejects_wrong_answers():
    def rows_only(scores, epsilon, iterations):
        return torch.softmax(scores / epsilon, dim=1)

    def no_exp(scores, epsilon, iterations):
        B, K = scores.shape
        Q = scores.T.clamp_min(1e-12)
        Q = Q / Q.sum()
        for _ in range(iterations):
            Q = Q / Q.sum(1, keepdim=True) / K
            Q = Q / Q.sum(0, keepdim=True) / B
        return (Q * B).T

    def wrong_last_step(scores, epsilon, iterations):
        B, K = scores.shape
        Q = torch.exp(scores / epsilon).T
        Q = Q / Q.sum()
        for _ in range(iterations):
            Q = Q / Q.sum(0, keepdim=True) / B
            Q = Q / Q.sum(1, keepdim=True) / K
        return (Q * B).T

    def transposed(scores, epsilon, iterations):
        return sinkhorn(scores, epsilon, iterations).T

    expected = {rows_only: "equipartition", no_exp: "exponential",
                wrong_last_step: "does not sum to 1", transposed: "B x K"}
    for wrong, words in expected.items():
        result = check_sinkhorn(wrong, verbose=False)
        assert not result.passed, wrong.__name__
        assert words in result.message, (wrong.__name__, result.message)


def test_swapped_prediction_rejects_wrong_answers():
    def not_swapped(s1, s2, t, eps, its):
        q1, q2 = sinkhorn(s1, eps, its), sinkhorn(s2, eps, its)
        return -((q1 * F.log_softmax(s1 / t, 1)).sum(1).mean()
                 + (q2 * F.log_softmax(s2 / t, 1)).sum(1).mean()) / 2

    def no_temperature(s1, s2, t, eps, its):
        q1, q2 = sinkhorn(s1, eps, its), sinkhorn(s2, eps, its)
        return -((q2 * F.log_softmax(s1, 1)).sum(1).mean()
                 + (q1 * F.log_softmax(s2, 1)).sum(1).mean()) / 2

    def softmax_targets(s1, s2, t, eps, its):
        q1, q2 = torch.softmax(s1 / t, 1).detach(), torch.softmax(s2 / t, 1).detach()
        return -((q2 * F.log_softmax(s1 / t, 1)).sum(1).mean()
                 + (q1 * F.log_softmax(s2 / t, 1)).sum(1).mean()) / 2

    expected = {not_swapped: "not swapped", no_temperature: "temperature",
                softmax_targets: "Sinkhorn codes"}
    for wrong, words in expected.items():
        result = check_swapped_prediction(wrong, verbose=False)
        assert not result.passed, wrong.__name__
        assert words in result.message, (wrong.__name__, result.message)
