"""Chapter 10 checkers accept the solutions and reject plausible wrong answers."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from sslbook.exercises._reference.ch10 import byol_loss, cosine_tau_reference, ema_update
from sslbook.exercises.ch10 import check_byol_loss, check_cosine_tau, check_ema_update
from sslbook.methods import BYOL, copy_frozen, cosine_tau, update_momentum
from sslbook.models import create

SOLUTIONS = Path(__file__).resolve().parents[1] / "chapters" / "solutions" / "ch10.py"


def load_solutions():
    spec = importlib.util.spec_from_file_location("solutions_ch10", SOLUTIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_references_agree_with_the_library():
    for k in range(11):
        assert math.isclose(cosine_tau_reference(k, 10, 0.99), cosine_tau(k, 10, 0.99))
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    target = copy_frozen(online)
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    mine = copy_frozen(target)
    ema_update(online, mine, 0.7)
    update_momentum(online, target, 0.7)
    for a, b in zip(mine.parameters(), target.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    # byol_loss equals the BYOL module's loss on the same projections
    method = BYOL(create("convnet", width=4), hidden_dim=16, out_dim=8).train()
    views = [torch.rand(6, 1, 28, 28), torch.rand(6, 1, 28, 28)]
    torch.manual_seed(1)
    library = method(views)
    torch.manual_seed(1)
    p = [method.predictor(method.projector(method.encoder(v))) for v in views]
    with torch.no_grad():
        z = [method.target_projector(method.target_encoder(v)) for v in views]
    torch.testing.assert_close(byol_loss(p[0], p[1], z[0], z[1]), library)


def test_solutions_pass():
    solutions = load_solutions()
    assert check_ema_update(solutions.my_ema_update, verbose=False).passed
    assert check_cosine_tau(solutions.my_cosine_tau, verbose=False).passed
    assert check_byol_loss(solutions.my_byol_loss, verbose=False).passed
    assert check_ema_update(update_momentum, verbose=False).passed  # the library's own
    assert check_cosine_tau(cosine_tau, verbose=False).passed


def test_unfinished_stub_is_reported_not_raised():
    def stub(*args):
        raise NotImplementedError

    for check in (check_ema_update, check_cosine_tau, check_byol_loss):
        result = check(stub, verbose=False)
        assert not result.passed and "not attempted" in result.message


def test_ema_update_rejects_wrong_answers():
    @torch.no_grad()
    def swapped(online, target, tau):
        for theta, xi in zip(online.parameters(), target.parameters()):
            xi.copy_((1 - tau) * xi + tau * theta)

    @torch.no_grad()
    def online_towards_target(online, target, tau):
        for theta, xi in zip(online.parameters(), target.parameters()):
            theta.copy_(tau * theta + (1 - tau) * xi)

    @torch.no_grad()
    def plain_copy(online, target, tau):
        for theta, xi in zip(online.parameters(), target.parameters()):
            xi.copy_(theta)

    expected = {swapped: "swapped", online_towards_target: "online network changed",
                plain_copy: "tau = 0.9"}
    for wrong, words in expected.items():
        result = check_ema_update(wrong, verbose=False)
        assert not result.passed and words in result.message, result.message


def test_cosine_tau_rejects_wrong_answers():
    def backwards(k, total, base):
        return 1 - (1 - base) * (math.cos(math.pi * (total - k) / total) + 1) / 2

    def linear(k, total, base):
        return base + (1 - base) * k / total

    def from_zero(k, total, base):
        return 1 - (math.cos(math.pi * k / total) + 1) / 2

    expected = {backwards: "backwards", linear: "linear", from_zero: "step 0"}
    for wrong, words in expected.items():
        result = check_cosine_tau(wrong, verbose=False)
        assert not result.passed and words in result.message, result.message


def test_byol_loss_rejects_wrong_answers():
    def term(p, z):
        return (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()

    def no_normalisation(p1, p2, z1, z2):
        return ((p1 - z2.detach()) ** 2).sum(1).mean() + ((p2 - z1.detach()) ** 2).sum(1).mean()

    def gradient_through_target(p1, p2, z1, z2):
        return term(p1, z2) + term(p2, z1)

    def one_term(p1, p2, z1, z2):
        return term(p1, z2.detach())

    def same_view(p1, p2, z1, z2):
        return term(p1, z1.detach()) + term(p2, z2.detach())

    expected = {no_normalisation: "normalised", gradient_through_target: "stop-gradient",
                one_term: "symmetrise", same_view: "same"}
    for wrong, words in expected.items():
        result = check_byol_loss(wrong, verbose=False)
        assert not result.passed and words in result.message, result.message


def test_references_are_not_in_the_student_facing_module():
    import sslbook.exercises.ch10 as ch10

    for name in ("ema_update", "cosine_tau_reference", "byol_loss"):
        assert not hasattr(ch10, name), name


def test_hidden_seeds_accept_the_solutions():
    solutions = load_solutions()
    for seed in (1, 12345, 2**31 - 1):
        assert check_ema_update(solutions.my_ema_update, verbose=False, seed=seed).passed
        assert check_cosine_tau(solutions.my_cosine_tau, verbose=False, seed=seed).passed
        assert check_byol_loss(solutions.my_byol_loss, verbose=False, seed=seed).passed
