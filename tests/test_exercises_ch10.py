"""Chapter 10 checkers: the solution and an equivalent rewrite pass, a bank of plausible wrong
answers (mutants) is rejected with a hint naming the mistake, on the default and hidden seeds."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sslbook.exercises import AutogradForbidden, no_autograd
from sslbook.exercises._reference.ch10 import (
    byol_grad,
    byol_loss,
    cosine_tau_reference,
    ema_weights,
)
from sslbook.exercises.ch10 import check_byol_grad, check_byol_loss, check_ema_weights
from sslbook.methods import BYOL, copy_frozen, cosine_tau, update_momentum
from sslbook.models import create

SOLUTIONS = Path(__file__).resolve().parents[1] / "chapters" / "solutions" / "ch10.py"
SEEDS = (None, 1, 12345, 2**31 - 1)


def load_solutions():
    spec = importlib.util.spec_from_file_location("solutions_ch10", SOLUTIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


S = load_solutions()


# --------------------------------------------------------------------------- references
def test_ema_weights_is_what_the_library_update_does():
    """Run sslbook.methods.update_momentum on one-parameter 'networks' whose weights are basis
    vectors: the target ends as sum_k w_k theta_k with the reference's weights."""
    taus = [cosine_tau(k, 6, 0.8) for k in range(6)]
    target = nn.Linear(7, 1, bias=False)
    with torch.no_grad():
        target.weight.copy_(torch.eye(7)[0])  # xi_0 = e_0
    target = copy_frozen(target)
    for k, tau in enumerate(taus, start=1):
        online = nn.Linear(7, 1, bias=False)
        with torch.no_grad():
            online.weight.copy_(torch.eye(7)[k])  # theta_k = e_k
        update_momentum(online, target, tau)
    torch.testing.assert_close(target.weight.detach().double().flatten(), ema_weights(taus),
                               atol=1e-6, rtol=1e-6)
    assert math.isclose(ema_weights(taus).sum().item(), 1.0)


def test_byol_grad_is_autograd_and_orthogonal_to_p():
    g = torch.Generator().manual_seed(0)
    p = torch.randn(5, 4, generator=g, dtype=torch.float64) * 3
    z = torch.randn(5, 4, generator=g, dtype=torch.float64)
    leaf = p.clone().requires_grad_()
    ((F.normalize(leaf, dim=1) - F.normalize(z, dim=1)) ** 2).sum(1).mean().backward()
    torch.testing.assert_close(byol_grad(p, z), leaf.grad)
    torch.testing.assert_close((byol_grad(p, z) * p).sum(1), torch.zeros(5, dtype=torch.float64))


def test_references_agree_with_the_library():
    for k in range(11):
        assert math.isclose(cosine_tau_reference(k, 10, 0.99), cosine_tau(k, 10, 0.99))
    method = BYOL(create("convnet", width=4), hidden_dim=16, out_dim=8).train()
    views = [torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)]
    torch.manual_seed(1)
    library = method(views)
    torch.manual_seed(1)
    p = [method.predictor(method.projector(method.encoder(v))) for v in views]
    with torch.no_grad():
        z = [method.target_projector(method.target_encoder(v)) for v in views]
    torch.testing.assert_close(byol_loss(p[0], p[1], z[0], z[1]), library)


def test_no_autograd_blocks_backward_and_restores_it():
    x = torch.ones(2, requires_grad=True)
    with no_autograd(), pytest.raises(AutogradForbidden, match="by hand"):
        (x * x).sum().backward()
    with no_autograd(), pytest.raises(AutogradForbidden):
        torch.autograd.grad((x * x).sum(), x)
    (x * x).sum().backward()  # restored after the block
    assert x.grad.tolist() == [2.0, 2.0]


# --------------------------------------------------------------------------- solutions pass
def ema_weights_closed_form(taus):
    """Equivalent rewrite: w_0 = prod tau, w_k = (1 - tau_k) prod_{j > k} tau_j with cumprod."""
    taus = torch.as_tensor(taus, dtype=torch.float64)
    later = torch.cat([taus.flip(0).cumprod(0).flip(0)[1:], torch.ones(1, dtype=taus.dtype)])
    return torch.cat([taus.prod().reshape(1), (1 - taus) * later])


def byol_grad_projector(p, z):
    """Equivalent rewrite: the Jacobian of p/|p| is (I - p_bar p_bar^T) / |p|."""
    B, D = p.shape
    grads = []
    for p_b, z_b in zip(p, z, strict=True):
        p_bar, z_bar = p_b / p_b.norm(), z_b / z_b.norm()
        jacobian = (torch.eye(D, dtype=p.dtype) - torch.outer(p_bar, p_bar)) / p_b.norm()
        grads.append(jacobian @ (2 * (p_bar - z_bar)) / B)  # chain rule through p_bar
    return torch.stack(grads)


def byol_loss_cosine(p1, p2, z1, z2):
    return ((2 - 2 * F.cosine_similarity(p1, z2.detach(), dim=1)).mean()
            + (2 - 2 * F.cosine_similarity(p2, z1.detach(), dim=1)).mean())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("check, fns", [
    (check_ema_weights, (S.my_ema_weights, ema_weights_closed_form)),
    (check_byol_grad, (S.my_byol_grad, byol_grad_projector)),
    (check_byol_loss, (S.my_byol_loss, byol_loss_cosine)),
])
def test_solution_and_rewrite_pass(check, fns, seed):
    for fn in fns:
        result = check(fn, verbose=False, seed=seed)
        assert result.passed, (fn.__name__, seed, result.message)


def test_unfinished_stub_is_reported_not_raised():
    def stub(*args):
        raise NotImplementedError

    for check in (check_ema_weights, check_byol_grad, check_byol_loss):
        result = check(stub, verbose=False)
        assert not result.passed and "not attempted" in result.message


def test_references_are_not_in_the_student_facing_module():
    import sslbook.exercises.ch10 as ch10

    for name in ("ema_weights", "byol_grad", "byol_loss", "ema_update", "cosine_tau_reference"):
        assert not hasattr(ch10, name), name


# --------------------------------------------------------------------------- wrong answers
def w_swapped(taus):
    taus = torch.as_tensor(taus, dtype=torch.float64)
    return S.my_ema_weights(1 - taus)


def w_own_tau(taus):
    taus = torch.as_tensor(taus, dtype=torch.float64)
    w = torch.zeros(len(taus) + 1, dtype=torch.float64)
    w[0] = 1.0
    for k, tau in enumerate(taus, start=1):
        w[k] = 1 - tau
        w[:k + 1] *= tau  # slip: theta_k also shrinks by its own tau_k
    return w


def w_earlier(taus):
    taus = torch.as_tensor(taus, dtype=torch.float64)
    before = torch.cat([torch.ones(1, dtype=taus.dtype), taus.cumprod(0)[:-1]])
    return torch.cat([taus.prod().reshape(1), (1 - taus) * before])


def w_reversed(taus):
    w = S.my_ema_weights(taus)
    return torch.cat([w[:1], w[1:].flip(0)])


def w_one_tau(taus):
    tau, T = float(taus[0]), len(taus)
    return torch.tensor([tau ** T] + [(1 - tau) * tau ** (T - k) for k in range(1, T + 1)])


def w_no_xi0(taus):
    return S.my_ema_weights(taus)[1:]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, hint", [
    (w_swapped, "swapped"),
    (w_own_tau, "not by its own tau_k"),
    (w_earlier, "earlier steps"),
    (w_reversed, "reverse order"),
    (w_one_tau, "its own tau_k: the weights cannot be written with one tau"),
    (w_no_xi0, "initial target xi_0"),
])
def test_ema_weights_rejects(wrong, hint, seed):
    result = check_ema_weights(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert hint in result.message, result.message


def g_sign(p, z):
    return -S.my_byol_grad(p, z)


def g_no_batch_mean(p, z):
    return S.my_byol_grad(p, z) * len(p)


def g_no_norm_factor(p, z):
    return S.my_byol_grad(p, z) * p.norm(dim=1, keepdim=True)


def g_no_projection(p, z):
    return -2 * F.normalize(z, dim=1) / (p.norm(dim=1, keepdim=True) * len(p))


def g_z_raw(p, z):
    norm = p.norm(dim=1, keepdim=True)
    p_bar = p / norm
    return -2 * (z - (p_bar * z).sum(1, keepdim=True) * p_bar) / (norm * len(p))


def g_unnormalised(p, z):
    return 2 * (p - z) / len(p)


def g_wrt_p_bar(p, z):
    return 2 * (F.normalize(p, dim=1) - F.normalize(z, dim=1)) / len(p)


def g_autograd(p, z):
    p = p.clone().requires_grad_()
    ((F.normalize(p, dim=1) - F.normalize(z, dim=1)) ** 2).sum(1).mean().backward()
    return p.grad


def g_autograd_grad(p, z):
    p = p.clone().requires_grad_()
    loss = ((F.normalize(p, dim=1) - F.normalize(z, dim=1)) ** 2).sum(1).mean()
    return torch.autograd.grad(loss, p)[0]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, hint", [
    (g_sign, "sign is wrong"),
    (g_no_batch_mean, "divide by B"),
    (g_no_norm_factor, "1 / |p_b| is missing"),
    (g_no_projection, "part along p is missing"),
    (g_z_raw, "z must be normalised"),
    (g_unnormalised, "without normalisation"),
    (g_wrt_p_bar, "with respect to p/|p|"),
    (g_autograd, "by hand"),
    (g_autograd_grad, "by hand"),
])
def test_byol_grad_rejects(wrong, hint, seed):
    result = check_byol_grad(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert hint in result.message, result.message


def term(p, z):
    return (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()


def l_no_normalisation(p1, p2, z1, z2):
    return ((p1 - z2.detach()) ** 2).sum(1).mean() + ((p2 - z1.detach()) ** 2).sum(1).mean()


def l_gradient_through_target(p1, p2, z1, z2):
    return term(p1, z2) + term(p2, z1)


def l_one_term(p1, p2, z1, z2):
    return term(p1, z2.detach())


def l_same_view(p1, p2, z1, z2):
    return term(p1, z1.detach()) + term(p2, z2.detach())


def l_summed(p1, p2, z1, z2):
    return (2 - 2 * F.cosine_similarity(p1, z2.detach(), dim=1)).sum() + \
        (2 - 2 * F.cosine_similarity(p2, z1.detach(), dim=1)).sum()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, hint", [
    (l_no_normalisation, "not L2-normalised"),
    (l_gradient_through_target, "stop-gradient"),
    (l_one_term, "symmetrise"),
    (l_same_view, "*same* view"),
    (l_summed, "summed, not averaged"),
])
def test_byol_loss_rejects(wrong, hint, seed):
    result = check_byol_loss(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert hint in result.message, result.message
