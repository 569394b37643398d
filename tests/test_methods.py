"""Tests for sslbook.methods: training steps, momentum rules, queues, stop-gradients, SwAV.

Everything runs on a tiny convnet (width 8, 32 features) and 8 random 1 x 28 x 28 images.
"""

from __future__ import annotations

import copy
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sslbook import models
from sslbook.losses import (
    info_nce,
    info_nce_queue,
    negative_cosine,
    swav_loss,
    swav_loss_multicrop,
)
from sslbook.methods import (
    METHODS,
    SimCLR,
    SwAV,
    copy_frozen,
    cosine_tau,
    create,
    update_momentum,
)

B = 8
SMALL = {  # small heads so that every test stays fast
    "simclr": {"hidden_dim": 32, "out_dim": 16},
    "moco": {"hidden_dim": 32, "out_dim": 16, "queue_size": 64, "bn_splits": 2},
    "byol": {"hidden_dim": 32, "out_dim": 16},
    "simsiam": {"dim": 32, "pred_dim": 8},
    "swav": {"hidden_dim": 32, "out_dim": 16, "n_prototypes": 10, "freeze_prototypes_steps": 0,
             "queue_start_epochs": 0},  # a queue, when given, is used once full
}


def encoder() -> nn.Module:
    return models.create("convnet", channels=1, width=8)


def make(name: str, **kw) -> nn.Module:
    torch.manual_seed(0)
    return create(name, encoder(), **{**SMALL[name], **kw})


def views(n: int = 2, seed: int = 1, size: int = 28) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, 1, 28, 28, generator=g)
    out = []
    for _ in range(n):  # noisy copies of the same images, still in [0, 1]
        v = (x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1)
        out.append(v if size == 28 else F.interpolate(v, size=size, mode="bilinear"))
    return out


def step(method: nn.Module, opt: torch.optim.Optimizer, xs, k: int, total: int = 10):
    loss = method(xs)
    opt.zero_grad()
    loss.backward()
    method.on_before_step(k, total)
    opt.step()
    method.on_step_end(k, total)
    return loss


def sgd(method: nn.Module, **kw) -> torch.optim.Optimizer:
    return torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.05, **kw)


def clone_params(module: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


# ----------------------------------------------------------------------------- all methods


@pytest.mark.parametrize("name", list(METHODS))
def test_two_steps_finite_loss_and_encoder_learns(name):
    method = make(name)
    opt = sgd(method, momentum=0.9)
    before = clone_params(method.encoder)
    losses = [step(method, opt, views(seed=k), k) for k in range(2)]
    assert all(torch.isfinite(loss) and loss.dim() == 0 for loss in losses)
    after = list(method.encoder.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert isinstance(method.projector, nn.Module)


@pytest.mark.parametrize("name", list(METHODS))
def test_config_is_plain_and_rebuilds_the_method(name):
    method = make(name)
    text = json.dumps(method.config)  # plain values only
    rebuilt = create(name, encoder(), **json.loads(text))
    assert rebuilt.config == method.config
    assert type(rebuilt) is type(method)
    opt = type(method).default_optimizer
    assert opt["name"] in ("sgd", "lars", "adamw")
    assert {"lr", "momentum", "weight_decay"} <= set(opt) and "arXiv" in opt["source"]


@pytest.mark.parametrize("name", list(METHODS))
def test_bf16_autocast_step(name):
    kw = {"queue_length": B} if name == "swav" else {}
    method = make(name, **kw)
    opt = sgd(method)
    for k in range(2):  # SwAV's queue is full and used at the second step
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = method(views(seed=k))
        opt.zero_grad()
        loss.backward()
        method.on_before_step(k, 10)
        opt.step()
        method.on_step_end(k, 10)
        assert torch.isfinite(loss) and loss.dtype == torch.float32
    assert all(b.dtype != torch.bfloat16 for b in method.buffers())


@pytest.mark.parametrize("name", list(METHODS))
def test_one_view_is_refused(name):
    with pytest.raises(ValueError, match="2 views|views"):
        make(name)(views(1))


def test_create_errors_name_the_valid_choices():
    with pytest.raises(ValueError) as err:
        create("dino", encoder())
    assert all(name in str(err.value) for name in METHODS)
    with pytest.raises(TypeError) as err:
        create("byol", encoder(), tau=0.9)
    msg = str(err.value)
    assert "tau" in msg and "tau_base" in msg and "use_predictor" in msg
    assert isinstance(create("SimCLR", encoder(), out_dim=8), SimCLR)


# ----------------------------------------------------------------------------- momentum


def test_copy_frozen_and_update_momentum_follow_the_ema_rule():
    torch.manual_seed(0)
    online = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    target = copy_frozen(online)
    assert all(not p.requires_grad for p in target.parameters())
    assert all(p.requires_grad for p in online.parameters())
    online(torch.randn(5, 4))  # changes the running statistics of online only
    with torch.no_grad():
        for p in online.parameters():
            p.add_(torch.randn_like(p))
    old = clone_params(target)
    update_momentum(online, target, 0.7)
    for t, t0, o in zip(target.parameters(), old, online.parameters()):
        torch.testing.assert_close(t, 0.7 * t0 + 0.3 * o)
    for tb, ob in zip(target.buffers(), online.buffers()):
        assert torch.equal(tb, ob)  # BN running stats copied
    update_momentum(online, target, 0.0)
    assert all(torch.equal(t, o) for t, o in zip(target.parameters(), online.parameters()))
    with pytest.raises(ValueError, match="tau"):
        update_momentum(online, target, 1.5)
    with pytest.raises(ValueError, match="copy_frozen"):
        update_momentum(online, nn.Linear(4, 3), 0.5)


def test_cosine_tau_schedule():
    assert cosine_tau(0, 100, 0.99) == pytest.approx(0.99)
    assert cosine_tau(50, 100, 0.99) == pytest.approx(0.995)
    assert cosine_tau(100, 100, 0.99) == pytest.approx(1.0)
    assert cosine_tau(25, 100, 0.9) == pytest.approx(1 - 0.1 * (2**-0.5 + 1) / 2)


@pytest.mark.parametrize(
    ("name", "online", "target"),
    [
        ("byol", ("encoder", "projector"), ("target_encoder", "target_projector")),
        ("moco", ("encoder", "projector"), ("encoder_k", "projector_k")),
    ],
)
def test_target_moves_by_the_ema_rule(name, online, target):
    method = make(name)
    opt = sgd(method)
    targets = [getattr(method, t) for t in target]
    assert all(not p.requires_grad for t in targets for p in t.parameters())
    old = [clone_params(t) for t in targets]
    loss = method(views())
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is None for t in targets for p in t.parameters())
    method.on_before_step(3, 10)
    opt.step()
    method.on_step_end(3, 10)
    tau = cosine_tau(3, 10, 0.99) if name == "byol" else 0.99  # scheduled tau / MoCo's m
    for t_mod, o_name, t_old in zip(targets, online, old):
        o_mod = getattr(method, o_name)
        for t, t0, o in zip(t_mod.parameters(), t_old, o_mod.parameters()):
            torch.testing.assert_close(t, tau * t0 + (1 - tau) * o, rtol=0, atol=1e-6)
        assert any(not torch.equal(t, t0) for t, t0 in zip(t_mod.parameters(), t_old))  # moved
    if name == "byol":
        assert method.tau == pytest.approx(tau)


@pytest.mark.parametrize(
    ("name", "kw"),
    [("byol", {"tau_base": 0.0, "tau_schedule": "constant"}), ("moco", {"momentum": 0.0})],
)
def test_zero_momentum_makes_target_a_copy_of_online(name, kw):
    method = make(name, **kw)
    opt = sgd(method, momentum=0.9)
    for k in range(2):
        step(method, opt, views(seed=k), k)
    pairs = (
        [("encoder", "target_encoder"), ("projector", "target_projector")]
        if name == "byol"
        else [("encoder", "encoder_k"), ("projector", "projector_k")]
    )
    for o, t in pairs:
        o_state, t_state = getattr(method, o).state_dict(), getattr(method, t).state_dict()
        assert all(torch.equal(o_state[key], t_state[key]) for key in o_state)


# ----------------------------------------------------------------------------- SimCLR


def test_simclr_loss_is_info_nce_and_averages_pairs():
    method = make("simclr").eval()  # eval: BN per sample, so encoding views apart is the same
    xs = views(3)
    z = [method.projector(method.encoder(x)) for x in xs]
    with torch.no_grad():
        torch.testing.assert_close(method(xs[:2]), info_nce(z[0], z[1], temperature=0.5))
        pairs = [info_nce(z[i], z[j], temperature=0.5) for i, j in [(0, 1), (0, 2), (1, 2)]]
        torch.testing.assert_close(method(xs), sum(pairs) / 3)


# ----------------------------------------------------------------------------- MoCo


def test_moco_eval_loss_matches_reference_and_leaves_queue_alone():
    method = make("moco", symmetric=False).eval()
    xs = views()
    queue = method.queue.clone()
    with torch.no_grad():
        q = method.projector(method.encoder(xs[0]))
        k = method.projector_k(method.encoder_k(xs[1]))
        expected = info_nce_queue(q, k, queue, temperature=0.2)
        torch.testing.assert_close(method(xs), expected)
    assert torch.equal(method.queue, queue) and int(method.queue_ptr) == 0


@pytest.mark.parametrize("symmetric", [True, False])
def test_moco_queue_holds_normalised_keys_and_pointer_advances(symmetric):
    method = make("moco", symmetric=symmetric, shuffle_bn=False, bn_splits=1)
    assert method.queue.shape == (64, 16) and "queue" in dict(method.named_buffers())
    torch.testing.assert_close(method.queue.norm(dim=1), torch.ones(64))
    xs = views()
    with torch.no_grad():  # train mode: BN uses the batch statistics of the key batch
        keys = [F.normalize(method.projector_k(method.encoder_k(x)), dim=1) for x in xs]
    loss = method(xs)
    assert torch.isfinite(loss)
    n_keys = 2 * B if symmetric else B
    assert int(method.queue_ptr) == n_keys
    torch.testing.assert_close(method.queue[:B], keys[1])  # k from view 2 first
    if symmetric:
        torch.testing.assert_close(method.queue[B : 2 * B], keys[0])
    torch.testing.assert_close(method.queue.norm(dim=1), torch.ones(64))
    for _ in range(64 // n_keys - 1):
        method(xs)
    assert int(method.queue_ptr) == 0  # wrapped around


def test_moco_shuffle_bn_unshuffles_keys():
    method = make("moco", bn_splits=2)
    x = views()[0]
    method.eval()  # no batch statistics: shuffling must not change any key
    plain = copy.deepcopy(method)
    plain.shuffle_bn = False
    torch.testing.assert_close(method._key(x), plain._key(x))
    method.train()  # batch statistics: key i is computed inside its shuffled group
    torch.manual_seed(5)
    k = method._key(x)
    torch.manual_seed(5)
    perm = torch.randperm(B)
    with torch.no_grad():
        groups = [method.projector_k(method.encoder_k(c)) for c in x[perm].chunk(2)]
    expected = F.normalize(torch.cat(groups), dim=1)[torch.argsort(perm)]
    torch.testing.assert_close(k, expected)
    with pytest.raises(ValueError, match="bn_splits"):
        make("moco", bn_splits=8)(views())  # 8 images cannot make 8 BN groups of >= 2
    with pytest.raises(ValueError, match="exactly 2 views"):
        make("moco")(views(3))


def test_moco_v1_has_a_linear_head_and_temperature_007():
    method = make("moco", version=1)
    assert isinstance(method.projector, nn.Linear) and method.config["temperature"] == 0.07


def test_moco_head_batch_norm_is_an_option_of_the_mlp_head():
    def norms(module):
        return sum(isinstance(m, nn.BatchNorm1d) for m in module.modules())

    plain, with_bn = make("moco"), make("moco", head_batch_norm=True)
    assert norms(plain.projector) == 0 and norms(with_bn.projector) == 1
    assert norms(with_bn.projector_k) == 1  # the key head is a copy, BN included
    assert torch.isfinite(with_bn(views())) and with_bn.config["head_batch_norm"]
    with pytest.raises(ValueError, match="head_batch_norm"):
        make("moco", version=1, head_batch_norm=True)


# ----------------------------------------------------------------------------- BYOL


def test_byol_loss_matches_the_paper_formula():
    method = make("byol").eval()
    x1, x2 = views()
    with torch.no_grad():
        p1, p2 = (method.predictor(method.projector(method.encoder(x))) for x in (x1, x2))
        z1, z2 = (method.target_projector(method.target_encoder(x)) for x in (x1, x2))

        def mse(p, z):  # ||p/|p| - z/|z| ||^2, Eq. 2
            return (F.normalize(p, dim=1) - F.normalize(z, dim=1)).pow(2).sum(1).mean()

        torch.testing.assert_close(method([x1, x2]), mse(p1, z2) + mse(p2, z1))


def test_byol_without_predictor_compares_online_and_target_directly():
    method = make("byol", use_predictor=False)
    assert isinstance(method.predictor, nn.Identity)
    assert not any(n.startswith("predictor") for n, _ in method.named_parameters())
    x = views()[0]
    with torch.no_grad():
        assert method.eval()([x, x]).abs() < 1e-5  # target == online at start: zero loss
    loss = method.train()(views())
    loss.backward()
    assert method.encoder.backbone[0].weight.grad is not None
    assert all(p.grad is None for p in method.target_encoder.parameters())


# ----------------------------------------------------------------------------- SimSiam


def _simsiam_grads(stop_gradient: bool, manual: bool) -> list[torch.Tensor]:
    method = make("simsiam", stop_gradient=stop_gradient)
    x1, x2 = views()
    if manual:  # the paper's pseudocode (Algorithm 1)
        z1, z2 = (method.projector(method.encoder(x)) for x in (x1, x2))
        p1, p2 = method.predictor(z1), method.predictor(z2)
        if stop_gradient:
            z1, z2 = z1.detach(), z2.detach()
        loss = negative_cosine(p1, z2) / 2 + negative_cosine(p2, z1) / 2
    else:
        loss = method([x1, x2])
    loss.backward()
    return [p.grad.clone() for p in method.encoder.parameters()]


def test_simsiam_stop_gradient_changes_gradient_flow():
    with_sg = _simsiam_grads(True, manual=False)
    without_sg = _simsiam_grads(False, manual=False)
    for got, want in zip(with_sg, _simsiam_grads(True, manual=True)):
        torch.testing.assert_close(got, want)
    for got, want in zip(without_sg, _simsiam_grads(False, manual=True)):
        torch.testing.assert_close(got, want)
    assert any(not torch.allclose(a, b) for a, b in zip(with_sg, without_sg))


def test_simsiam_heads_and_param_groups():
    method = make("simsiam")
    last = method.projector[-1]
    assert isinstance(last, nn.BatchNorm1d) and not last.affine  # last BN without affine
    groups = method.param_groups()
    assert [g["fix_lr"] for g in groups] == [False, True]
    n_params = sum(len(g["params"]) for g in groups)
    assert n_params == len(list(method.parameters()))
    assert -1 <= make("simsiam").eval()(views()).item() <= 1


# ----------------------------------------------------------------------------- SwAV


def test_swav_prototypes_frozen_then_trained_and_unit_norm():
    method = make("swav", freeze_prototypes_steps=2)
    opt = sgd(method, momentum=0.9, weight_decay=1e-2)
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(10))
    start = method.prototypes.weight.detach().clone()
    encoder_start = clone_params(method.encoder)
    for k in range(2):
        step(method, opt, views(seed=k), k)
    torch.testing.assert_close(method.prototypes.weight, start, rtol=0, atol=1e-6)  # frozen
    assert any(not torch.equal(a, b) for a, b in zip(method.encoder.parameters(), encoder_start))
    loss = method(views(seed=3))
    opt.zero_grad()
    loss.backward()
    method.on_before_step(2, 10)  # no longer frozen
    opt.step()
    norms = method.prototypes.weight.norm(dim=1)
    assert not torch.allclose(norms, torch.ones(10))  # the SGD step left the sphere ...
    method.on_step_end(2, 10)
    torch.testing.assert_close(method.prototypes.weight.norm(dim=1), torch.ones(10))  # ... back
    assert not torch.allclose(method.prototypes.weight, start)


def _swav_scores(method: SwAV, xs: list[torch.Tensor]) -> list[torch.Tensor]:
    z = [F.normalize(method.projector(method.encoder(x)), dim=1) for x in xs]
    return [method.prototypes(zi) for zi in z]


def test_swav_loss_matches_the_losses_module_with_and_without_multicrop():
    method = make("swav").eval()
    with torch.no_grad():
        xs = views(2)
        torch.testing.assert_close(method(xs), swav_loss(*_swav_scores(method, xs)))
        crops = views(2) + views(4, seed=2, size=16)  # 2 large 28 x 28 + 4 small 16 x 16
        expected = swav_loss_multicrop(_swav_scores(method, crops), n_large=2)
        torch.testing.assert_close(method(crops), expected)
    loss = method.train()(crops)  # trains with multi-crop too
    loss.backward()
    assert torch.isfinite(loss) and method.prototypes.weight.grad is not None


def test_swav_queue_fills_with_projections_and_is_used_once_full():
    method = make("swav", queue_length=2 * B)
    assert method.queue.shape == (2, 2 * B, 16)
    other, xs = views(seed=7), views(seed=1)  # the queue holds other images than the batch
    with torch.no_grad():
        method(other)
        assert int(method.queue_count) == B  # not full: not used yet
        h = method.encoder(torch.cat(other))  # train mode: both views share BN statistics
        z = F.normalize(method.projector(h), dim=1).chunk(2)
        method(other)
        assert int(method.queue_count) == 2 * B
        torch.testing.assert_close(method.queue.norm(dim=2), torch.ones(2, 2 * B))
        torch.testing.assert_close(method.queue[0, :B], z[0], rtol=0, atol=1e-5)  # newest first
        torch.testing.assert_close(method.queue[1, :B], z[1], rtol=0, atol=1e-5)
        with_queue = method(xs)
        without_queue = make("swav")(xs)  # same weights, no queue
    assert torch.isfinite(with_queue) and not torch.allclose(with_queue, without_queue)
