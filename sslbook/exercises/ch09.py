"""Checkers for Chapter 9 (MoCo): the momentum update of the key encoder, the logits of the
queue-based InfoNCE loss, and the queue as a ring buffer.

MoCo (He et al., CVPR 2020, arXiv:1911.05722) keeps a key encoder whose weights follow the query
encoder as ``theta_k <- m theta_k + (1 - m) theta_q`` (Eq. 2), scores each query against its own key
and the K keys of a queue (Eq. 1, Algorithm 1: logits N x (1+K), positive in column 0), and after
each step replaces the oldest keys of the queue by the new ones. The references (in the private
:mod:`sslbook.exercises._reference`) agree with :mod:`sslbook.methods.moco` and
:func:`sslbook.losses.info_nce_queue`; the checkers feed random inputs on which the classic mistakes
give different answers, name the mistake when they recognise it, return a
:class:`~sslbook.exercises.CheckResult` and never raise.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sslbook.exercises import CheckResult, close, run_check
from sslbook.exercises._reference import enqueue as _enqueue
from sslbook.exercises._reference import moco_logits as _moco_logits
from sslbook.losses import info_nce_queue

__all__ = ["check_enqueue", "check_moco_logits", "check_momentum_update"]


# --------------------------------------------------------------------------- Exercise 9.1
def _pair(seed: int) -> tuple[nn.Module, nn.Module]:
    """A small query network and a key network with different weights."""
    torch.manual_seed(seed)
    net_q = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    net_k = copy.deepcopy(net_q)
    with torch.no_grad():
        for p in net_k.parameters():
            p.add_(torch.randn_like(p))
    for p in net_k.parameters():
        p.requires_grad_(False)
    return net_q, net_k


def _flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in net.parameters()])


def check_momentum_update(fn: Callable, verbose: bool = True,
                          seed: int | None = None) -> CheckResult:
    """Check ``fn(encoder_q, encoder_k, m) -> None`` updating ``encoder_k`` in place (Eq. 2).

    Two momenta (0.9, 0.7) on two pairs of networks, so swapping m and 1 - m, updating the query
    encoder instead of the key encoder, and returning new weights without writing them into
    ``encoder_k`` are all recognised. With a ``seed`` (the grader's hidden checks) the networks
    and the two momenta (one in [0.5, 0.8), one in [0.85, 0.99)) are drawn from it.
    """
    cases = ((0, 0.9), (1, 0.7))
    if seed is not None:
        g = torch.Generator().manual_seed(seed)
        cases = ((seed + 2, round(0.85 + 0.14 * float(torch.rand(1, generator=g)), 4)),
                 (seed + 3, round(0.5 + 0.3 * float(torch.rand(1, generator=g)), 4)))

    def test() -> tuple[bool, str]:
        for net_seed, m in cases:
            net_q, net_k = _pair(net_seed)
            q0, k0 = _flat(net_q), _flat(net_k)
            fn(net_q, net_k, m)
            q1, k1 = _flat(net_q), _flat(net_k)
            expected = m * k0 + (1 - m) * q0
            if not torch.allclose(q1, q0):
                if torch.allclose(q1, m * q0 + (1 - m) * k0) or torch.allclose(q1, expected):
                    return False, ("you updated the query encoder; Eq. 2 moves the *key* "
                                   "encoder towards the query encoder, and the query encoder "
                                   "only changes through back-propagation")
                return False, "encoder_q changed; only encoder_k may change"
            if torch.allclose(k1, k0):
                return False, ("encoder_k did not change: write the new values into its "
                               "parameters in place (e.g. p_k.mul_(m).add_(p_q, alpha=1 - m))")
            if torch.allclose(k1, (1 - m) * k0 + m * q0):
                return False, ("m and 1 - m are swapped: the key encoder keeps the fraction m "
                               "of its own weights, theta_k <- m theta_k + (1 - m) theta_q")
            if torch.allclose(k1, q0):
                return False, "you copied the query encoder (that is m = 0, not Eq. 2)"
            ok, message = close(k1, expected)
            if not ok:
                return False, f"(m = {m}) {message}"
        return True, "theta_k <- m theta_k + (1 - m) theta_q, query encoder untouched"

    return run_check("Exercise 9.1 - the momentum update", test, verbose)


# --------------------------------------------------------------------------- Exercise 9.2
def check_moco_logits(fn: Callable, verbose: bool = True,
                      seed: int | None = None) -> CheckResult:
    """Check ``fn(q, k, queue, temperature) -> N x (1+K)`` logits, positive in column 0.

    Inputs are not normalised and T = 0.2, so a positive in the last column, a missing
    temperature, missing normalisation and a transposed queue give different answers. With a
    ``seed`` (the grader's hidden checks) the inputs, N, K and T are drawn from it.
    """
    n, k_size, d, t = 6, 10, 8, 0.2
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        n, k_size = (int(v) for v in torch.randint(3, 16, (2,), generator=g0))
        t = round(0.05 + 0.3 * float(torch.rand(1, generator=g0)), 3)

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(0 if seed is None else seed + 1)
        q = 3 * torch.randn(n, d, generator=g)  # N x D, not normalised
        k = q + 2 * torch.randn(n, d, generator=g)  # N x D
        queue = 2 * torch.randn(k_size, d, generator=g)  # K x D
        got = fn(q.clone(), k.clone(), queue.clone(), t)
        if not isinstance(got, torch.Tensor):
            return False, f"return a torch.Tensor, got {type(got).__name__}"
        got = got.detach().double()
        expected = _moco_logits(q, k, queue, t).double()
        if got.shape != expected.shape:
            return False, (f"logits must be N x (1+K) = {tuple(expected.shape)}, got "
                           f"{tuple(got.shape)}: one positive column, then one per queue key")
        if torch.allclose(got, expected, atol=1e-5):
            labels = torch.zeros(n, dtype=torch.long)
            ok, message = close(F.cross_entropy(got, labels), info_nce_queue(q, k, queue, t))
            return ok, ("positive in column 0, K negatives, cosine / T; cross-entropy with "
                        "label 0 equals sslbook.losses.info_nce_queue" if ok else message)
        hints = {
            "positive last": (torch.cat([expected[:, 1:], expected[:, :1]], dim=1),
                              "the positive must be in column 0 (Algorithm 1 uses labels = "
                              "zeros(N)); you put it after the negatives"),
            "no temperature": (expected * t, "divide the logits by the temperature T"),
            "no normalisation": (moco_logits_unnormalised(q, k, queue, t),
                                 "L2-normalise q, k and the queue keys first: the logits "
                                 "are cosine similarities divided by T"),
            "multiplied by T": (expected * t * t, "divide by T, do not multiply"),
        }
        for wrong, hint in hints.values():
            if torch.allclose(got, wrong.double(), atol=1e-5):
                return False, hint
        return close(got, expected)

    return run_check("Exercise 9.2 - MoCo's logits", test, verbose)


def moco_logits_unnormalised(q: torch.Tensor, k: torch.Tensor, queue: torch.Tensor,
                             temperature: float) -> torch.Tensor:
    """The classic slip of Exercise 9.2: dot products without L2 normalisation."""
    return torch.cat([(q * k).sum(dim=1, keepdim=True), q @ queue.T], dim=1) / temperature


# --------------------------------------------------------------------------- Exercise 9.3
def check_enqueue(fn: Callable, verbose: bool = True,
                  seed: int | None = None) -> CheckResult:
    """Check ``fn(queue, ptr, q, k) -> (queue, ptr)``: the ring-buffer update after one step.

    A queue of 10 keys and batches of 4 (so the third batch wraps around the end) over five
    steps; storing the queries, forgetting to wrap, not advancing the pointer and overwriting the
    newest keys are recognised. With a ``seed`` (the grader's hidden checks) the inputs, K in
    [7, 14] and N in [2, 5] (one batch straddles the end of the queue) are drawn from it.
    """
    size, n, d = 10, 4, 3
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        size = int(torch.randint(7, 14, (1,), generator=g0))
        n = int(torch.randint(2, 6, (1,), generator=g0))
        if size % n == 0:  # a batch must straddle the end of the queue at least once
            size += 1
    steps = max(5, size // n + 2)

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(0 if seed is None else seed + 1)
        queue = F.normalize(torch.randn(size, d, generator=g), dim=1)  # K x D
        ref_queue, ref_ptr, ptr = queue.clone(), 0, 0
        for step in range(steps):
            q = F.normalize(torch.randn(n, d, generator=g), dim=1)  # N x D queries
            k = F.normalize(torch.randn(n, d, generator=g), dim=1)  # N x D keys
            out = fn(queue.clone(), ptr, q.clone(), k.clone())
            if not (isinstance(out, tuple) and len(out) == 2):
                return False, "return a pair (queue, ptr)"
            got_queue, got_ptr = out
            got_ptr = int(got_ptr)
            expected_queue, expected_ptr = _enqueue(ref_queue, ref_ptr, q, k)
            if not isinstance(got_queue, torch.Tensor) or got_queue.shape != (size, d):
                return False, f"the queue must stay a {size} x {d} tensor (K x D)"
            got_queue = got_queue.detach()
            if torch.allclose(got_queue, _enqueue(ref_queue, ref_ptr, k, q)[0]):
                return False, ("you stored the queries; the queue is a dictionary of *keys* "
                               "from the momentum encoder (Sec. 3.2): enqueue k, not q")
            if not torch.allclose(got_queue, expected_queue):
                if torch.equal(got_queue, ref_queue):
                    return False, f"(step {step}) the queue did not change"
                if ref_ptr + n > size:
                    return False, (f"(step {step}, ptr {ref_ptr}) the batch runs past the end "
                                   f"of the queue: rows {ref_ptr}..{size - 1} and then 0.. "
                                   "must be written (wrap around with % K)")
                return False, (f"(step {step}, ptr {ref_ptr}) wrong rows replaced: the new "
                               f"keys go to rows ptr, ptr+1, ... (mod K), the oldest entries")
            if got_ptr != expected_ptr:
                if got_ptr == ref_ptr:
                    return False, "advance the pointer by the number of keys enqueued"
                if got_ptr == ref_ptr + n:
                    return False, (f"the pointer must wrap around: (ptr + N) % K = "
                                   f"{expected_ptr}, got {got_ptr}")
                return False, f"(step {step}) new ptr should be {expected_ptr}, got {got_ptr}"
            queue, ptr, ref_queue, ref_ptr = got_queue, got_ptr, expected_queue, expected_ptr
        return True, "keys enqueued as a ring buffer, oldest replaced, pointer wraps"

    return run_check("Exercise 9.3 - the queue as a ring buffer", test, verbose)
