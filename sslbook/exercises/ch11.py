"""Checkers for the exercises of Chapter 11 (SimSiam and SwAV).

SimSiam (Chen and He, CVPR 2021, arXiv:2011.10566, Eq. 4) minimises
``D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2`` with ``D`` the negative cosine similarity; SwAV
(Caron et al., NeurIPS 2020, arXiv:2006.09882, Sec. 3.1) computes codes with Sinkhorn-Knopp
and trains each view to predict the code of the other. Exercise 11.2 asks for Sinkhorn-Knopp in
the log domain (finite for an epsilon at which the chapter's exp version gives NaN), Exercise
11.3 for the gradient of the swapped prediction with respect to the scores, by hand. The checkers
compare a student's function with :mod:`sslbook.losses`, autograd or the private references
(:mod:`sslbook.exercises._reference`) on random inputs chosen so that the classic mistakes give
different answers, name the mistake when they recognise it, return a
:class:`~sslbook.exercises.CheckResult` and never raise. Every checker takes a ``seed``: the
grader's hidden checks draw fresh inputs from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.exercises import CheckResult, close, no_autograd, run_check
from sslbook.exercises._reference.ch11 import log_sinkhorn as _log_sinkhorn
from sslbook.exercises._reference.ch11 import swav_grad as _swav_grad
from sslbook.losses import negative_cosine, sinkhorn, swav_loss

__all__ = ["check_log_sinkhorn", "check_simsiam_loss", "check_swav_grad"]


def _scalar(got) -> tuple[bool, str]:
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return False, (f"return a scalar tensor (the mean loss), got {type(got).__name__}"
                       f"{tuple(getattr(got, 'shape', ()))}")
    return True, ""


# --------------------------------------------------------------------------- Exercise 11.1
def _simsiam_variants(p1, p2, z1, z2) -> dict[str, torch.Tensor]:
    def dot(p, z):
        return -(p * z).sum(dim=1).mean()

    return {
        "the loss is not symmetrised: add D(p2, sg(z1)) and halve the sum":
            negative_cosine(p1, z2),
        "the vectors are not L2-normalised: D is the negative *cosine* similarity":
            (dot(p1, z2) + dot(p2, z1)) / 2,
        "the predictions and targets are paired with the same view: p1 must be compared with "
        "z2 (the other view), and p2 with z1": (negative_cosine(p1, z1)
                                                + negative_cosine(p2, z2)) / 2,
        "the sum is not halved: SimSiam's Eq. 4 averages the two terms":
            negative_cosine(p1, z2) + negative_cosine(p2, z1),
    }


def check_simsiam_loss(fn: Callable, verbose: bool = True,
                       seed: int | None = None) -> CheckResult:
    """Check ``fn(p1, p2, z1, z2) -> scalar``: SimSiam's symmetrised loss with stop-gradient.

    The value must equal ``negative_cosine(p1, z2) / 2 + negative_cosine(p2, z1) / 2`` on
    inputs of very different norms, and after ``backward()`` the targets ``z1, z2`` must receive
    no gradient (or a zero one) while ``p1, p2`` receive the reference gradient.
    """

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(111 if seed is None else seed + 111)
        for n, d in [(6, 5), (10, 3)]:
            base = [torch.randn(n, d, generator=g, dtype=torch.float64) for _ in range(4)]
            scale = [torch.exp(torch.randn(n, 1, generator=g, dtype=torch.float64))
                     for _ in range(4)]
            p1, p2, z1, z2 = (b * s for b, s in zip(base, scale, strict=True))  # N x D, norms vary
            expected = (negative_cosine(p1, z2) + negative_cosine(p2, z1)) / 2
            leaves = [t.clone().requires_grad_() for t in (p1, p2, z1, z2)]
            got = fn(*leaves)
            ok, message = _scalar(got)
            if not ok:
                return False, message
            ok, hint = close(got.detach().reshape(()), expected, atol=1e-6, rtol=1e-5)
            if not ok:
                for mistake, value in _simsiam_variants(p1, p2, z1, z2).items():
                    if close(got.detach().reshape(()), value, atol=1e-6, rtol=1e-5)[0]:
                        return False, f"(N={n}, D={d}) {mistake}"
                return False, f"(N={n}, D={d}) {hint}"
            if not got.requires_grad:
                return False, "the loss carries no gradient: do not detach the predictions p"
            got.reshape(()).backward()
            for name, leaf in zip(("z1", "z2"), leaves[2:], strict=True):
                if leaf.grad is not None and leaf.grad.abs().max() > 0:
                    return False, (f"gradient flows into {name}: the targets need a "
                                   "stop-gradient (z.detach()), the piece SimSiam shows is "
                                   "essential against collapse")
            ref = [t.clone().requires_grad_() for t in (p1, p2)]
            ((negative_cosine(ref[0], z2) + negative_cosine(ref[1], z1)) / 2).backward()
            for name, leaf, r in zip(("p1", "p2"), leaves[:2], ref, strict=True):
                if leaf.grad is None or not close(leaf.grad, r.grad, atol=1e-6, rtol=1e-5)[0]:
                    return False, f"the gradient with respect to {name} differs from Eq. 4's"
        return True, "symmetrised negative cosine, normalised, with stop-gradient on z"

    return run_check("Exercise 11.1 - the SimSiam loss", test, verbose)


# --------------------------------------------------------------------------- Exercise 11.2
def _log_sinkhorn_variants(scores: torch.Tensor, epsilon: float,
                           iterations: int) -> dict[str, torch.Tensor]:
    """Plausible wrong answers of Exercise 11.2 (all computed safely in the log domain)."""
    B, K = scores.shape

    def iterate(log_q, end_with_prototypes=False, times_b=True):  # log_q: K x B
        log_q = log_q - torch.logsumexp(log_q.flatten(), dim=0)
        for _ in range(iterations):
            log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(K)
            log_q = log_q - torch.logsumexp(log_q, dim=0, keepdim=True) - math.log(B)
        if end_with_prototypes:
            log_q = log_q - torch.logsumexp(log_q, dim=1, keepdim=True) - math.log(K)
        return torch.exp(log_q + (math.log(B) if times_b else 0.0)).T

    right = _log_sinkhorn(scores, epsilon, iterations)
    return {
        "these are log-codes: return the codes themselves, exp(log Q), B x K": right.log(),
        "only the samples are normalised (a softmax over prototypes): without the prototype "
        "normalisation there is no equipartition": torch.softmax(scores / epsilon, dim=1),
        "epsilon is ignored: log Q starts as scores / epsilon": iterate(scores.T),
        "the last normalisation is over the prototypes, so a sample's code does not sum to 1: "
        "end each iteration with the samples (columns of the K x B matrix)":
            iterate(scores.T / epsilon, end_with_prototypes=True),
        "the codes are not multiplied by B: each sample's code must sum to 1, not 1 / B":
            iterate(scores.T / epsilon, times_b=False),
    }


def check_log_sinkhorn(fn: Callable, verbose: bool = True,
                       seed: int | None = None) -> CheckResult:
    """Check ``fn(scores, epsilon, iterations) -> B x K`` codes: Sinkhorn-Knopp as
    :func:`sslbook.losses.sinkhorn` computes it, but finite at an epsilon so small that
    ``exp(scores / epsilon)`` underflows to 0 even in float64 (a prototype no sample likes,
    epsilon = 0.001: the chapter's exp version gives NaN there).

    Log-codes returned, a softmax only, epsilon ignored, ending with the prototypes and a
    missing factor B are recognised. With a ``seed`` (the grader's hidden checks) the shapes and
    scores are drawn from it.
    """
    g = torch.Generator().manual_seed(112 if seed is None else seed + 112)
    cases = [(12, 4, 0.05, 3), (20, 7, 0.1, 1), (16, 6, 0.001, 3)]
    if seed is not None:
        cases = [(int(torch.randint(6, 30, (1,), generator=g)),
                  int(torch.randint(3, 12, (1,), generator=g)), eps, its)
                 for _, _, eps, its in cases]

    def test() -> tuple[bool, str]:
        for B, K, eps, its in cases:
            u = F.normalize(torch.randn(B, 6, generator=g, dtype=torch.float64), dim=1)
            c = F.normalize(torch.randn(K, 6, generator=g, dtype=torch.float64), dim=1)
            scores = u @ c.T  # B x K cosines
            if eps < 0.01:  # prototype 0 is liked by no sample: exp underflows to 0 there
                scores[:, 0] = -0.9 - 0.1 * torch.rand(B, generator=g, dtype=torch.float64)
                scores[:, 1:] = 0.5 + 0.5 * scores[:, 1:].abs()
            expected = _log_sinkhorn(scores, eps, its)
            got = fn(scores.clone(), eps, its)
            if not isinstance(got, torch.Tensor):
                return False, f"return a torch.Tensor, got {type(got).__name__}"
            got = got.detach().double()
            where = f"(B={B}, K={K}, epsilon={eps}, iterations={its})"
            if got.shape == (K, B) and K != B:
                return False, f"{where}: return the codes as B x K (transpose your K x B matrix)"
            if got.shape != expected.shape:
                return False, f"{where}: shape {tuple(got.shape)}, expected {(B, K)}"
            if not torch.isfinite(got).all():
                return False, (f"{where}: NaN or inf in the codes: exp(scores / epsilon) "
                               "underflows to 0 for a small epsilon; keep log Q and normalise "
                               "by subtracting torch.logsumexp, take exp only at the end")
            ok, hint = close(got, expected, atol=1e-6, rtol=1e-4)
            if ok:
                continue
            for mistake, value in _log_sinkhorn_variants(scores, eps, its).items():
                if close(got, value, atol=1e-6, rtol=1e-4)[0]:
                    return False, f"{where}: {mistake}"
            if (got.sum(dim=1) - 1).abs().max() > 1e-4:
                return False, (f"{where}: a sample's code does not sum to 1; end each "
                               "iteration with the samples (the normalisation over the columns "
                               f"of the K x B matrix), then multiply by B ({hint})")
            return False, f"{where}: {hint}"
        return True, "Sinkhorn-Knopp in the log domain: equal to sinkhorn, finite at any epsilon"

    return run_check("Exercise 11.2 - Sinkhorn-Knopp in the log domain", test, verbose)


# --------------------------------------------------------------------------- Exercise 11.3
def _grad_variants(s1, s2, t, eps, its) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Plausible wrong answers of Exercise 11.3, as (gradient of scores1, of scores2)."""
    B = len(s1)
    q1, q2 = sinkhorn(s1, eps, its), sinkhorn(s2, eps, its)
    p1, p2 = F.softmax(s1 / t, dim=1), F.softmax(s2 / t, dim=1)
    g1, g2 = _swav_grad(s1, s2, t, eps, its)
    return {
        "the sign is wrong: this is the direction that increases the loss": (-g1, -g2),
        "the prediction is not swapped: the scores of view 1 are pulled towards the code of "
        "view 2 (q2), and those of view 2 towards q1":
            ((p1 - q1) / (2 * B * t), (p2 - q2) / (2 * B * t)),
        "the factor 1 / temperature of the chain rule through scores / temperature is missing":
            (g1 * t, g2 * t),
        "the loss averages the two swapped terms: the factor 1 / 2 is missing": (2 * g1, 2 * g2),
        "each term is a batch mean: divide by B": (B * g1, B * g2),
        "the prediction is softmax(scores / temperature), not softmax(scores)":
            ((F.softmax(s1, dim=1) - q2) / (2 * B * t), (F.softmax(s2, dim=1) - q1) / (2 * B * t)),
        "the targets are Sinkhorn codes, not softmax(scores / temperature)":
            ((p1 - p2) / (2 * B * t), (p2 - p1) / (2 * B * t)),
    }


def check_swav_grad(fn: Callable, verbose: bool = True,
                    seed: int | None = None) -> CheckResult:
    """Check ``fn(scores1, scores2, temperature, epsilon, iterations) -> (g1, g2)``: the
    gradients of :func:`sslbook.losses.swav_loss` with respect to both scores, written by hand
    (``backward()``, ``torch.autograd.grad`` and ``torch.func`` raise while ``fn`` runs),
    compared with autograd.

    A wrong sign, unswapped codes, a missing 1 / T, 1 / 2 or 1 / B, the softmax without the
    temperature and softmax targets are recognised. With a ``seed`` (the grader's hidden checks)
    the shapes and scores are drawn from it.
    """
    g = torch.Generator().manual_seed(113 if seed is None else seed + 113)
    cases = [(16, 6, 0.1, 0.05, 3), (10, 12, 0.2, 0.1, 2)]
    if seed is not None:
        cases = [(int(torch.randint(4, 24, (1,), generator=g)),
                  int(torch.randint(3, 15, (1,), generator=g)), t, eps, its)
                 for _, _, t, eps, its in cases]

    def test() -> tuple[bool, str]:
        for B, K, t, eps, its in cases:
            u = F.normalize(torch.randn(2, B, 5, generator=g, dtype=torch.float64), dim=2)
            c = F.normalize(torch.randn(K, 5, generator=g, dtype=torch.float64), dim=1)
            s1, s2 = u[0] @ c.T, (u[0] + 0.8 * u[1]) @ c.T / 1.8  # B x K each, correlated
            a, b = s1.clone().requires_grad_(), s2.clone().requires_grad_()
            expected = torch.autograd.grad(swav_loss(a, b, t, eps, its), (a, b))  # 2 x (B x K)
            with no_autograd():
                got = fn(s1.clone(), s2.clone(), t, eps, its)
            where = f"(B={B}, K={K}, temperature={t})"
            if not isinstance(got, (tuple, list)) or len(got) != 2:
                return False, "return a pair (gradient for scores1, gradient for scores2)"
            got = tuple(torch.as_tensor(x).detach().double() for x in got)
            if any(x.shape != (B, K) for x in got):
                return False, (f"{where}: shapes {[tuple(x.shape) for x in got]}, expected "
                               f"{(B, K)} twice")
            if all(close(x, e, atol=1e-9, rtol=1e-6)[0] for x, e in zip(got, expected,
                                                                          strict=True)):
                continue
            for mistake, wrong in _grad_variants(s1, s2, t, eps, its).items():
                if all(close(x, w, atol=1e-9, rtol=1e-6)[0] for x, w in zip(got, wrong,
                                                                              strict=True)):
                    return False, f"{where}: {mistake}"
            name, (x, e) = next((n, pair) for n, pair in zip(("scores1", "scores2"),
                                                              zip(got, expected, strict=True),
                                                              strict=True)
                                if not close(*pair, atol=1e-9, rtol=1e-6)[0])
            return False, f"{where}: gradient for {name}: {close(x, e, atol=1e-9, rtol=1e-6)[1]}"
        return True, "(softmax(s / T) - code of the other view) / (2 B T), for both views"

    return run_check("Exercise 11.3 - the gradient of the swapped prediction, by hand", test,
                     verbose)
