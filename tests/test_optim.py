"""Optimisers and schedules: param groups, LARS against SGD and a hand computation, schedule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from sslbook import optim


def small_model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(2, 3),
                         nn.LayerNorm(3))


def test_param_groups_decay_matrices_only():
    model = small_model()
    decay, no_decay = optim.param_groups(model, weight_decay=1e-4)
    assert decay["weight_decay"] == 1e-4 and no_decay["weight_decay"] == 0.0
    assert no_decay["lars_exclude"] is True and "lars_exclude" not in decay
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(decay["params"]) == ids([model[0].weight, model[3].weight])
    assert ids(no_decay["params"]) == ids([model[0].bias, model[1].weight, model[1].bias,
                                           model[3].bias, model[4].weight, model[4].bias])


def test_param_groups_skip_frozen_and_keep_group_keys():
    model = small_model()
    model[3].requires_grad_(False)  # e.g. a momentum encoder
    groups = optim.param_groups([{"params": model[:2].parameters(), "fix_lr": False},
                                 {"params": model[3:].parameters(), "fix_lr": True}], 0.1)
    assert [len(g["params"]) for g in groups] == [1, 3, 0, 2]
    assert [g["fix_lr"] for g in groups] == [False, False, True, True]


@pytest.mark.parametrize("flag", [True, None])
def test_lars_equals_sgd_with_momentum_on_excluded_parameters(flag):
    torch.manual_seed(0)
    p_lars = nn.Parameter(torch.randn(5))
    p_sgd = nn.Parameter(p_lars.detach().clone())
    group = {"params": [p_lars], "weight_decay": 0.01}  # applies as given, like SGD's
    if flag is not None:
        group["lars_exclude"] = flag
    lars = optim.LARS([group], lr=0.1, momentum=0.9)
    sgd = torch.optim.SGD([p_sgd], lr=0.1, momentum=0.9, weight_decay=0.01)
    for step in range(5):
        g = torch.randn(5)
        p_lars.grad, p_sgd.grad = g.clone(), g.clone()
        for opt in (lars, sgd):
            opt.param_groups[0]["lr"] = 0.1 / (step + 1)  # a schedule acts the same way
            opt.step()
        torch.testing.assert_close(p_lars, p_sgd, rtol=0, atol=1e-7)


def test_lars_matches_a_hand_computed_update():
    w0 = torch.tensor([[3.0, 0.0], [0.0, 4.0]])  # ||w|| = 5
    grads = [torch.tensor([[1.0, 2.0], [2.0, 0.0]]), torch.tensor([[0.0, -1.0], [1.0, 1.0]])]
    lr, momentum, wd, eta = 0.5, 0.9, 0.1, 0.001
    w = nn.Parameter(w0.clone())
    opt = optim.LARS([w], lr=lr, momentum=momentum, weight_decay=wd, eta=eta)
    expected, v = w0.clone(), torch.zeros(2, 2)
    for grad in grads:  # the update rule written out with plain arithmetic
        g = grad + wd * expected
        trust = eta * math.sqrt((expected ** 2).sum()) / math.sqrt((g ** 2).sum())
        v = momentum * v + trust * g
        expected = expected - lr * v
        w.grad = grad.clone()
        opt.step()
        torch.testing.assert_close(w.detach(), expected)
    # first step by hand: g = [[1.3, 2], [2, 0.4]], ||g|| = 3.1496, trust = 0.005 / 3.1496
    step1 = w0 - lr * (eta * 5 / math.sqrt(1.3**2 + 4 + 4 + 0.4**2)) * (grads[0] + wd * w0)
    w1 = nn.Parameter(w0.clone())
    w1.grad = grads[0].clone()
    optim.LARS([w1], lr=lr, momentum=momentum, weight_decay=wd, eta=eta).step()
    torch.testing.assert_close(w1.detach(), step1)


def test_lars_trust_ratio_is_one_when_a_norm_is_zero():
    w = nn.Parameter(torch.zeros(3, 3))  # ||w|| = 0: eta ||w|| / ||g|| would freeze it
    w.grad = torch.ones(3, 3)
    optim.LARS([w], lr=0.1).step()
    torch.testing.assert_close(w.detach(), torch.full((3, 3), -0.1))
    w = nn.Parameter(torch.ones(3, 3))  # ||g|| = 0: no 0 / 0
    w.grad = torch.zeros(3, 3)
    optim.LARS([w], lr=0.1).step()
    torch.testing.assert_close(w.detach(), torch.ones(3, 3))


def test_lars_reduces_a_regression_loss():
    torch.manual_seed(0)
    x, model = torch.randn(64, 8), nn.Linear(8, 1)
    y = x @ torch.randn(8, 1) + 0.5
    # weights move by about lr * eta of their norm per step; the bias by plain SGD
    opt = optim.create_optimizer("lars", model, lr=0.5, weight_decay=1e-6, eta=0.02)
    loss0 = nn.functional.mse_loss(model(x), y).item()
    for _ in range(100):
        opt.zero_grad()
        nn.functional.mse_loss(model(x), y).backward()
        opt.step()
    assert nn.functional.mse_loss(model(x), y).item() < 1e-3 * loss0


def lrs(scheduler: torch.optim.lr_scheduler.LambdaLR, steps: int) -> list[float]:
    out = []
    for _ in range(steps):
        out.append(scheduler.optimizer.param_groups[0]["lr"])
        scheduler.optimizer.step()
        scheduler.step()
    return out


def test_warmup_cosine_end_points_and_shape():
    p = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=2.0)
    lr = lrs(optim.warmup_cosine(opt, warmup_steps=10, total_steps=100, final_lr_fraction=0.1),
             120)
    assert 0 < lr[0] < 0.2  # 2 / 11
    assert all(a < b for a, b in zip(lr[:10], lr[1:11]))  # linear warm-up
    assert lr[10] == pytest.approx(2.0)
    assert all(a >= b for a, b in zip(lr[10:], lr[11:]))  # cosine decay, then flat
    assert lr[55] == pytest.approx(0.2 + 1.8 * 0.5)  # half way: the mean of lr and final lr
    assert lr[100] == pytest.approx(0.2) and lr[119] == pytest.approx(0.2)
    no_warmup = lrs(optim.warmup_cosine(torch.optim.SGD([p], lr=1.0), 0, 10), 11)
    assert no_warmup[0] == 1.0 and no_warmup[10] == pytest.approx(0.0)


def test_warmup_cosine_keeps_fixed_lr_groups_and_checks_arguments():
    a, b = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "fix_lr": True}], lr=1.0)
    scheduler = optim.warmup_cosine(opt, 2, 10)
    for _ in range(5):
        opt.step()
        scheduler.step()
    assert opt.param_groups[0]["lr"] < 1.0 and opt.param_groups[1]["lr"] == 1.0
    with pytest.raises(ValueError, match="warmup_steps"):
        optim.warmup_cosine(opt, 20, 10)
    with pytest.raises(ValueError, match="final_lr_fraction"):
        optim.warmup_cosine(opt, 2, 10, final_lr_fraction=2.0)


def test_scaled_lr_is_the_linear_scaling_rule():
    assert optim.scaled_lr(0.3, 256) == pytest.approx(0.3)
    assert optim.scaled_lr(0.3, 4096) == pytest.approx(4.8)
    assert optim.scaled_lr(0.05, 512) == pytest.approx(0.1)


def test_create_optimizer_names_and_groups():
    model = small_model()
    for name, cls in [("sgd", torch.optim.SGD), ("lars", optim.LARS),
                      ("adamw", torch.optim.AdamW)]:
        opt = optim.create_optimizer(name, model, lr=0.1, weight_decay=1e-4)
        assert isinstance(opt, cls)
        assert [g["weight_decay"] for g in opt.param_groups] == [1e-4, 0.0]
    assert optim.create_optimizer("sgd", model, lr=0.1).param_groups[0]["momentum"] == 0.9
    with pytest.raises(ValueError, match="'sgd', 'lars', 'adamw'"):
        optim.create_optimizer("adam", model, lr=0.1)


def test_lars_adapts_vectors_when_not_excluded():
    b = nn.Parameter(torch.tensor([3.0, 4.0]))  # ||b|| = 5
    b.grad = torch.tensor([0.0, 2.0])  # ||g|| = 2
    optim.LARS([b], lr=1.0, eta=0.1, exclude_bias_and_norm=False).step()
    torch.testing.assert_close(b.detach(), torch.tensor([3.0, 4.0 - 0.1 * 5 / 2 * 2]))
