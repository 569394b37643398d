"""Tests of sslbook.losses: each loss against a plain loop written from its paper's pseudocode,
plus closed-form cases worked by hand, invariances, gradients, autocast and bad shapes."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from sslbook.losses import (
    info_nce,
    info_nce_queue,
    negative_cosine,
    sinkhorn,
    swav_loss,
    swav_loss_multicrop,
)

DOUBLE = torch.float64


def randn(*shape, seed=0, dtype=DOUBLE, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_(requires_grad)


def close(a, b, tol=1e-10):
    torch.testing.assert_close(
        torch.as_tensor(a, dtype=DOUBLE), torch.as_tensor(b, dtype=DOUBLE), rtol=tol, atol=tol
    )


# ------------------------------------------------------------ plain loops from the papers


def cos(a, b):
    return float(a @ b / (a.norm() * b.norm()))


def nt_xent_loop(z1, z2, t):
    """SimCLR Algorithm 1: l(i, j) = -log exp(s_ij/t) / sum_{k != i} exp(s_ik/t), over 2N."""
    z = list(z1) + list(z2)
    n = len(z1)
    total = 0.0
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        denom = sum(math.exp(cos(z[i], z[k]) / t) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(cos(z[i], z[j]) / t) / denom)
    return total / (2 * n)


def moco_loop(q, k, queue, t):
    """MoCo Eq. 1, one query at a time; queue is K x D."""
    total = 0.0
    for i in range(len(q)):
        pos = math.exp(cos(q[i], k[i]) / t)
        neg = sum(math.exp(cos(q[i], key) / t) for key in queue)
        total += -math.log(pos / (pos + neg))
    return total / len(q)


def sinkhorn_official(out, epsilon, iterations):
    """facebookresearch/swav distributed_sinkhorn, one process (no max subtraction)."""
    Q = torch.exp(out / epsilon).t()
    B = Q.shape[1]
    K = Q.shape[0]
    Q = Q / torch.sum(Q)
    for _ in range(iterations):
        Q = Q / torch.sum(Q, dim=1, keepdim=True)
        Q = Q / K
        Q = Q / torch.sum(Q, dim=0, keepdim=True)
        Q = Q / B
    Q = Q * B
    return Q.t()


def swav_multicrop_official(output, n_crops, crops_for_assign, t, eps, iters):
    """main_swav.py training loop, on a list of per-crop score tensors."""
    loss = 0
    for crop_id in crops_for_assign:
        q = sinkhorn_official(output[crop_id].detach(), eps, iters)
        subloss = 0
        for v in range(n_crops):
            if v == crop_id:
                continue
            x = output[v] / t
            subloss -= torch.mean(torch.sum(q * F.log_softmax(x, dim=1), dim=1))
        loss += subloss / (n_crops - 1)
    return loss / len(crops_for_assign)


# ------------------------------------------------------------ info_nce (SimCLR)


@pytest.mark.parametrize("t", [0.1, 0.5, 1.0])
def test_info_nce_matches_loop(t):
    z1, z2 = randn(5, 7, seed=1), randn(5, 7, seed=2)
    close(info_nce(z1, z2, temperature=t), nt_xent_loop(z1, z2, t))


def test_info_nce_identical_embeddings_is_log_2n_minus_1():
    n = 4
    z = torch.ones(n, 3, dtype=DOUBLE)
    close(info_nce(z, z.clone()), math.log(2 * n - 1))


def test_info_nce_symmetric_and_scale_invariant():
    z1, z2 = randn(6, 8, seed=3), randn(6, 8, seed=4)
    close(info_nce(z1, z2), info_nce(z2, z1))
    close(info_nce(z1, z2), info_nce(3.0 * z1, 0.25 * z2))


def test_info_nce_gradients_reach_both_views():
    z1, z2 = randn(4, 5, seed=5, requires_grad=True), randn(4, 5, seed=6, requires_grad=True)
    info_nce(z1, z2).backward()
    for z in (z1, z2):
        assert z.grad is not None and torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def well_separated(n=6, d=8, noise=0.05, seed=7):
    """n orthogonal directions (rows of an identity) and slightly perturbed copies."""
    z1 = torch.eye(n, d, dtype=DOUBLE)
    return z1, z1 + noise * randn(n, d, seed=seed)


def test_info_nce_lower_temperature_sharpens():
    z1, z2 = well_separated()
    losses = [float(info_nce(z1, z2, temperature=t)) for t in (1.0, 0.5, 0.2, 0.1)]
    assert losses == sorted(losses, reverse=True) and losses[-1] < 0.01


def test_info_nce_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        info_nce(torch.randn(4, 8), torch.randn(4, 7))
    with pytest.raises(ValueError, match="2-D"):
        info_nce(torch.randn(4, 8, 1), torch.randn(4, 8, 1))
    with pytest.raises(ValueError, match="temperature"):
        info_nce(torch.randn(4, 8), torch.randn(4, 8), temperature=0.0)


# ------------------------------------------------------------ info_nce_queue (MoCo)


@pytest.mark.parametrize("t", [0.07, 0.2])
def test_info_nce_queue_matches_loop(t):
    q, k, queue = randn(4, 6, seed=8), randn(4, 6, seed=9), randn(10, 6, seed=10)
    close(info_nce_queue(q, k, queue, temperature=t), moco_loop(q, k, queue, t))


def test_info_nce_queue_all_keys_equal_is_log_k_plus_1():
    # one query: the queue holds K copies of its positive key, so all 1 + K logits are equal
    q, k = randn(1, 5, seed=11), randn(1, 5, seed=12)
    queue = k.repeat(9, 1)  # 9 x 5
    close(info_nce_queue(q, k, queue), math.log(9 + 1))


def test_info_nce_queue_scale_invariant_and_grads():
    q = randn(4, 6, seed=13, requires_grad=True)
    k = randn(4, 6, seed=14, requires_grad=True)
    queue = randn(12, 6, seed=15)
    loss = info_nce_queue(q, k, queue)
    close(loss, info_nce_queue(2 * q, 0.5 * k, 7 * queue))  # queue rows normalised inside
    close(loss, info_nce_queue(q, k, F.normalize(queue, dim=1)))  # normalising twice: same
    loss.backward()
    for x in (q, k):  # no hidden detach of k: the method decides
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_info_nce_queue_lower_temperature_sharpens():
    q, k = well_separated(n=4, d=8)
    queue = torch.eye(8, dtype=DOUBLE)[4:]  # 4 x 8, orthogonal to every query
    losses = [float(info_nce_queue(q, k, queue, temperature=t)) for t in (1.0, 0.5, 0.2, 0.07)]
    assert losses == sorted(losses, reverse=True)


def test_info_nce_queue_bad_shapes():
    q, k = torch.randn(4, 8), torch.randn(4, 8)
    with pytest.raises(ValueError, match="K x D"):
        info_nce_queue(q, k, torch.randn(16, 7))
    with pytest.raises(ValueError, match="transposed"):
        info_nce_queue(q, k, torch.randn(8, 16))
    with pytest.raises(ValueError, match="same shape"):
        info_nce_queue(q, torch.randn(3, 8), torch.randn(16, 8))


# ------------------------------------------------------------ negative_cosine (SimSiam, BYOL)


def test_negative_cosine_closed_forms_and_loop():
    x = randn(5, 4, seed=16)
    close(negative_cosine(x, x), -1.0)
    close(negative_cosine(x, -x), 1.0)
    close(negative_cosine(x, 3 * x), -1.0)  # scale invariant
    p, z = randn(5, 4, seed=17), randn(5, 4, seed=18)
    loop = sum(-cos(p[i], z[i]) for i in range(5)) / 5
    close(negative_cosine(p, z), loop)
    byol = (F.normalize(p, dim=1) - F.normalize(z, dim=1)).pow(2).sum(dim=1).mean()  # BYOL Eq. 2
    close(byol, 2 + 2 * negative_cosine(p, z))


def test_negative_cosine_gradients_reach_both_inputs():
    p, z = randn(3, 4, seed=19, requires_grad=True), randn(3, 4, seed=20, requires_grad=True)
    negative_cosine(p, z).backward()
    for x in (p, z):
        assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_negative_cosine_bad_shapes():
    with pytest.raises(ValueError, match="same shape"):
        negative_cosine(torch.randn(4, 8), torch.randn(4, 6))


# ------------------------------------------------------------ sinkhorn (SwAV)


@pytest.mark.parametrize("iterations", [1, 3, 10])
def test_sinkhorn_matches_official_loop(iterations):
    scores = F.normalize(randn(8, 5, seed=21), dim=1)  # cosine-like scores in [-1, 1]
    close(sinkhorn(scores, 0.05, iterations), sinkhorn_official(scores, 0.05, iterations))


def test_sinkhorn_constant_scores_give_uniform_codes():
    close(sinkhorn(torch.full((6, 4), 0.3, dtype=DOUBLE)), torch.full((6, 4), 1 / 4))


def test_sinkhorn_marginals():
    B, K = 12, 4
    scores = F.normalize(randn(B, K, seed=22), dim=1)
    Q = sinkhorn(scores, epsilon=0.05, iterations=3)
    assert Q.shape == (B, K) and (Q >= 0).all()
    close(Q.sum(dim=1), torch.ones(B))  # ends with columns: rows exact after any iterations
    Q = sinkhorn(scores, epsilon=0.5, iterations=200)
    close(Q.sum(dim=0), torch.full((K,), B / K), tol=1e-6)  # equipartition after convergence


def test_sinkhorn_is_shift_invariant_and_stable_for_large_scores():
    scores = F.normalize(randn(8, 5, seed=23), dim=1)
    Q = sinkhorn(scores + 1000.0)  # exp(20000) would overflow without the max subtraction
    assert torch.isfinite(Q).all()
    close(Q, sinkhorn(scores))


def test_sinkhorn_gives_targets_without_gradient():
    scores = randn(8, 5, seed=24, requires_grad=True)
    assert not sinkhorn(scores).requires_grad


def test_sinkhorn_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        sinkhorn(torch.randn(8))
    with pytest.raises(ValueError, match="iterations"):
        sinkhorn(torch.randn(8, 3), iterations=0)


# ------------------------------------------------------------ swav_loss


def swav_loop(s1, s2, t, eps, iters):
    """Eq. 1-2, sample by sample: -1/2 [ sum_k q2 log p1 + sum_k q1 log p2 ], averaged."""
    q1, q2 = sinkhorn_official(s1, eps, iters), sinkhorn_official(s2, eps, iters)
    total = 0.0
    for b in range(s1.shape[0]):
        z1 = sum(math.exp(float(s) / t) for s in s1[b])
        z2 = sum(math.exp(float(s) / t) for s in s2[b])
        for k in range(s1.shape[1]):
            total += float(q2[b, k]) * math.log(math.exp(float(s1[b, k]) / t) / z1)
            total += float(q1[b, k]) * math.log(math.exp(float(s2[b, k]) / t) / z2)
    return -total / (2 * s1.shape[0])


def test_swav_loss_matches_loop():
    s1 = F.normalize(randn(6, 4, seed=25), dim=1)
    s2 = F.normalize(randn(6, 4, seed=26), dim=1)
    close(swav_loss(s1, s2), swav_loop(s1, s2, 0.1, 0.05, 3))


def test_swav_loss_constant_scores_is_log_k():
    K = 7
    s = torch.zeros(5, K, dtype=DOUBLE)
    close(swav_loss(s, s.clone()), math.log(K))


def test_swav_loss_gradients_reach_both_views():
    s1 = randn(6, 4, seed=27, requires_grad=True)
    s2 = randn(6, 4, seed=28, requires_grad=True)
    swav_loss(s1, s2).backward()
    for s in (s1, s2):
        assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_swav_multicrop_matches_official_and_two_crop_case():
    crops = [F.normalize(randn(6, 4, seed=30 + i), dim=1) for i in range(5)]
    close(swav_loss_multicrop(crops[:2]), swav_loss(crops[0], crops[1]))
    close(
        swav_loss_multicrop(crops, n_large=2),
        swav_multicrop_official(crops, 5, [0, 1], 0.1, 0.05, 3),
    )
    close(
        swav_loss_multicrop(crops, n_large=1), swav_multicrop_official(crops, 5, [0], 0.1, 0.05, 3)
    )


def test_swav_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        swav_loss(torch.randn(6, 4), torch.randn(6, 5))
    with pytest.raises(ValueError, match="n_large"):
        swav_loss_multicrop([torch.randn(6, 4)] * 3, n_large=4)
    with pytest.raises(ValueError, match="at least 2"):
        swav_loss_multicrop([torch.randn(6, 4)])
    with pytest.raises(ValueError, match="same shape"):
        swav_loss_multicrop([torch.randn(6, 4), torch.randn(6, 4), torch.randn(5, 4)])


# ------------------------------------------------------------ mixed precision


def _all_losses(x1, x2, queue):
    return {
        "info_nce": info_nce(x1, x2, temperature=0.1),
        "info_nce_queue": info_nce_queue(x1, x2, queue, temperature=0.07),
        "negative_cosine": negative_cosine(x1, x2),
        "swav_loss": swav_loss(F.normalize(x1, dim=1), F.normalize(x2, dim=1)),
    }


def test_losses_stable_under_bf16_autocast():
    x1, x2, queue = randn(16, 8, seed=40), randn(16, 8, seed=41), randn(32, 8, seed=42)
    x1, x2, queue = x1.float(), x2.float(), queue.float()
    reference = _all_losses(x1, x2, queue)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = _all_losses(x1, x2, queue)
    bf16_inputs = _all_losses(x1.bfloat16(), x2.bfloat16(), queue.bfloat16())
    for name, ref in reference.items():
        for value in (under_autocast[name], bf16_inputs[name]):
            assert value.dtype == torch.float32 and torch.isfinite(value), name
        # autocast is switched off inside: same float32 computation
        torch.testing.assert_close(under_autocast[name], ref, rtol=1e-5, atol=1e-5)
        # bf16 inputs: only the rounding of the inputs (8-bit mantissa) remains
        torch.testing.assert_close(bf16_inputs[name], ref, rtol=2e-2, atol=2e-2)


def test_bf16_gradients_are_finite():
    z1 = randn(8, 8, seed=43, dtype=torch.bfloat16, requires_grad=True)
    z2 = randn(8, 8, seed=44, dtype=torch.bfloat16, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = info_nce(z1, z2, temperature=0.1) + negative_cosine(z1, z2)
    loss.backward()
    for z in (z1, z2):
        assert z.grad.dtype == torch.bfloat16 and torch.isfinite(z.grad).all()
