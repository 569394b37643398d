"""Chapter 11 checkers: the solution and an equivalent rewrite pass, a bank of plausible wrong
answers (mutants) is rejected with a hint naming the mistake, on the default and hidden seeds."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sslbook.exercises._reference.ch11 import log_sinkhorn, swav_grad
from sslbook.exercises.ch11 import check_log_sinkhorn, check_simsiam_loss, check_swav_grad
from sslbook.losses import sinkhorn, swav_loss

SOLUTIONS = Path(__file__).resolve().parents[1] / "chapters" / "solutions" / "ch11.py"
SEEDS = (None, 1, 12345, 2**31 - 1)


def load_solutions():
    spec = importlib.util.spec_from_file_location("solutions_ch11", SOLUTIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


S = load_solutions()


def D(p, z):
    return -(F.normalize(p, dim=1) * F.normalize(z, dim=1)).sum(dim=1).mean()


# --------------------------------------------------------------------------- references
def test_log_sinkhorn_equals_the_library_and_stays_finite_where_it_does_not():
    g = torch.Generator().manual_seed(0)
    for B, K, eps, its in [(16, 5, 0.05, 3), (64, 10, 0.03, 1), (32, 100, 0.1, 5)]:
        s = F.normalize(torch.randn(B, 8, generator=g, dtype=torch.float64), dim=1) @ \
            F.normalize(torch.randn(K, 8, generator=g, dtype=torch.float64), dim=1).T
        torch.testing.assert_close(log_sinkhorn(s, eps, its), sinkhorn(s, eps, its))
    s = torch.rand(8, 4, generator=g, dtype=torch.float64)
    s[:, 0] = -1.0  # a prototype that no sample likes
    assert torch.isnan(sinkhorn(s, 0.001, 3)).any()  # the exp version breaks down ...
    codes = log_sinkhorn(s, 0.001, 3)  # ... the log-domain one does not
    assert torch.isfinite(codes).all()
    torch.testing.assert_close(codes.sum(1), torch.ones(8, dtype=torch.float64))
    assert codes[:, 0].sum() > 1.0  # the unliked prototype still receives about B / K = 2


def test_swav_grad_is_autograd():
    g = torch.Generator().manual_seed(1)
    s1, s2 = (torch.randn(6, 4, generator=g, dtype=torch.float64) for _ in range(2))
    a, b = s1.clone().requires_grad_(), s2.clone().requires_grad_()
    swav_loss(a, b, 0.2, 0.05, 3).backward()
    g1, g2 = swav_grad(s1, s2, 0.2, 0.05, 3)
    torch.testing.assert_close(g1, a.grad)
    torch.testing.assert_close(g2, b.grad)


# --------------------------------------------------------------------------- solutions pass
def simsiam_cosine(p1, p2, z1, z2):
    return -(F.cosine_similarity(p1, z2.detach(), dim=1).mean()
             + F.cosine_similarity(p2, z1.detach(), dim=1).mean()) / 2


def log_sinkhorn_rewrite(scores, epsilon=0.05, iterations=3):
    """Equivalent rewrite: scaling vectors u, v kept as logs (Q = diag(u) exp(S/eps) diag(v))."""
    B, K = scores.shape
    log_kernel = scores.T / epsilon  # K x B
    log_u = torch.zeros(K, 1, dtype=scores.dtype)
    log_v = torch.zeros(1, B, dtype=scores.dtype)
    for _ in range(iterations):
        log_u = -math.log(K) - torch.logsumexp(log_kernel + log_v, dim=1, keepdim=True)
        log_v = -math.log(B) - torch.logsumexp(log_kernel + log_u, dim=0, keepdim=True)
    return (B * torch.exp(log_u + log_kernel + log_v)).T


def swav_grad_via_one_hot_sum(scores1, scores2, temperature=0.1, epsilon=0.05, iterations=3):
    """Equivalent rewrite: softmax written out, codes from the chapter's library function."""
    B = len(scores1)
    out = []
    for mine, other in ((scores1, scores2), (scores2, scores1)):
        e = torch.exp((mine - mine.max(dim=1, keepdim=True).values) / temperature)
        out.append(0.5 / B / temperature * (e / e.sum(1, keepdim=True)
                                            - sinkhorn(other, epsilon, iterations)))
    return tuple(out)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("check, fns", [
    (check_simsiam_loss, (S.my_simsiam_loss, simsiam_cosine)),
    (check_log_sinkhorn, (S.my_log_sinkhorn, log_sinkhorn_rewrite)),
    (check_swav_grad, (S.my_swav_grad, swav_grad_via_one_hot_sum)),
])
def test_solution_and_rewrite_pass(check, fns, seed):
    for fn in fns:
        result = check(fn, verbose=False, seed=seed)
        assert result.passed, (fn.__name__, seed, result.message)


def test_unfinished_stub_is_reported_not_raised():
    def stub(*args):
        raise NotImplementedError

    for check in (check_simsiam_loss, check_log_sinkhorn, check_swav_grad):
        result = check(stub, verbose=False)
        assert not result.passed and "not attempted" in result.message


def test_references_are_not_in_the_student_facing_module():
    import sslbook.exercises.ch11 as ch11

    for name in ("log_sinkhorn", "swav_grad"):
        assert not hasattr(ch11, name), name


# --------------------------------------------------------------------------- wrong answers
def ss_not_symmetrised(p1, p2, z1, z2):
    return D(p1, z2.detach())


def ss_no_stop_gradient(p1, p2, z1, z2):
    return D(p1, z2) / 2 + D(p2, z1) / 2


def ss_no_normalisation(p1, p2, z1, z2):
    return -((p1 * z2.detach()).sum(1).mean() + (p2 * z1.detach()).sum(1).mean()) / 2


def ss_same_view(p1, p2, z1, z2):
    return D(p1, z1.detach()) / 2 + D(p2, z2.detach()) / 2


def ss_not_halved(p1, p2, z1, z2):
    return D(p1, z2.detach()) + D(p2, z1.detach())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, hint", [
    (ss_not_symmetrised, "not symmetrised"),
    (ss_no_stop_gradient, "stop-gradient"),
    (ss_no_normalisation, "not L2-normalised"),
    (ss_same_view, "same view"),
    (ss_not_halved, "not halved"),
])
def test_simsiam_loss_rejects(wrong, hint, seed):
    result = check_simsiam_loss(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert hint in result.message, result.message


def ls_exp_version(scores, epsilon=0.05, iterations=3):  # the chapter's my_sinkhorn
    B, K = scores.shape
    Q = torch.exp(scores / epsilon).T
    Q = Q / Q.sum()
    for _ in range(iterations):
        Q = Q / Q.sum(dim=1, keepdim=True) / K
        Q = Q / Q.sum(dim=0, keepdim=True) / B
    return (Q * B).T


def ls_library(scores, epsilon=0.05, iterations=3):  # max subtracted: still underflows
    return sinkhorn(scores, epsilon, iterations)


def ls_log_of_sum_exp(scores, epsilon=0.05, iterations=3):
    B, K = scores.shape
    log_q = scores.T / epsilon
    for _ in range(iterations):
        log_q = log_q - log_q.exp().sum(1, keepdim=True).log() - math.log(K)
        log_q = log_q - log_q.exp().sum(0, keepdim=True).log() - math.log(B)
    return torch.exp(log_q + math.log(B)).T


def ls_log_codes(scores, epsilon=0.05, iterations=3):
    return S.my_log_sinkhorn(scores, epsilon, iterations).log()


def ls_rows_only(scores, epsilon=0.05, iterations=3):
    return torch.softmax(scores / epsilon, dim=1)


def ls_no_epsilon(scores, epsilon=0.05, iterations=3):
    return S.my_log_sinkhorn(scores, 1.0, iterations)


def ls_end_with_prototypes(scores, epsilon=0.05, iterations=3):
    B, K = scores.shape
    log_q = scores.T / epsilon
    log_q = log_q - torch.logsumexp(log_q.flatten(), 0)
    for _ in range(iterations):
        log_q = log_q - torch.logsumexp(log_q, 0, keepdim=True) - math.log(B)
        log_q = log_q - torch.logsumexp(log_q, 1, keepdim=True) - math.log(K)
    return torch.exp(log_q + math.log(B)).T


def ls_no_times_b(scores, epsilon=0.05, iterations=3):
    return S.my_log_sinkhorn(scores, epsilon, iterations) / scores.shape[0]


def ls_transposed(scores, epsilon=0.05, iterations=3):
    return S.my_log_sinkhorn(scores, epsilon, iterations).T


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, hint", [
    (ls_exp_version, "logsumexp"),
    (ls_library, "logsumexp"),
    (ls_log_of_sum_exp, "logsumexp"),
    (ls_log_codes, "log-codes"),
    (ls_rows_only, "equipartition"),
    (ls_no_epsilon, "epsilon is ignored"),
    (ls_end_with_prototypes, "end each iteration with the samples"),
    (ls_no_times_b, "not multiplied by B"),
    (ls_transposed, "B x K"),
])
def test_log_sinkhorn_rejects(wrong, hint, seed):
    result = check_log_sinkhorn(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert hint in result.message, result.message


def sg_sign(*args):
    g1, g2 = S.my_swav_grad(*args)
    return -g1, -g2


def sg_not_swapped(s1, s2, t, eps, its):
    B = len(s1)
    return ((F.softmax(s1 / t, 1) - sinkhorn(s1, eps, its)) / (2 * B * t),
            (F.softmax(s2 / t, 1) - sinkhorn(s2, eps, its)) / (2 * B * t))


def sg_no_temperature_factor(s1, s2, t, eps, its):
    g1, g2 = S.my_swav_grad(s1, s2, t, eps, its)
    return g1 * t, g2 * t


def sg_no_half(*args):
    g1, g2 = S.my_swav_grad(*args)
    return 2 * g1, 2 * g2


def sg_no_batch_mean(s1, s2, t, eps, its):
    g1, g2 = S.my_swav_grad(s1, s2, t, eps, its)
    return len(s1) * g1, len(s1) * g2


def sg_softmax_without_t(s1, s2, t, eps, its):
    B = len(s1)
    return ((F.softmax(s1, 1) - sinkhorn(s2, eps, its)) / (2 * B * t),
            (F.softmax(s2, 1) - sinkhorn(s1, eps, its)) / (2 * B * t))


def sg_softmax_targets(s1, s2, t, eps, its):
    B = len(s1)
    p1, p2 = F.softmax(s1 / t, 1), F.softmax(s2 / t, 1)
    return (p1 - p2) / (2 * B * t), (p2 - p1) / (2 * B * t)


def sg_autograd(s1, s2, t, eps, its):
    a, b = s1.clone().requires_grad_(), s2.clone().requires_grad_()
    swav_loss(a, b, t, eps, its).backward()
    return a.grad, b.grad


def sg_one_view(s1, s2, t, eps, its):
    return S.my_swav_grad(s1, s2, t, eps, its)[0]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, hint", [
    (sg_sign, "sign is wrong"),
    (sg_not_swapped, "not swapped"),
    (sg_no_temperature_factor, "1 / temperature"),
    (sg_no_half, "1 / 2 is missing"),
    (sg_no_batch_mean, "divide by B"),
    (sg_softmax_without_t, "not softmax(scores)"),
    (sg_softmax_targets, "targets are Sinkhorn codes"),
    (sg_autograd, "by hand"),
    (sg_one_view, "return a pair"),
])
def test_swav_grad_rejects(wrong, hint, seed):
    result = check_swav_grad(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert hint in result.message, result.message
