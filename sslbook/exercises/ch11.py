"""Checkers for the exercises of Chapter 11 (SimSiam and SwAV).

SimSiam (Chen and He, CVPR 2021, arXiv:2011.10566, Eq. 4) minimises
``D(p1, sg(z2)) / 2 + D(p2, sg(z1)) / 2`` with ``D`` the negative cosine similarity; SwAV
(Caron et al., NeurIPS 2020, arXiv:2006.09882, Sec. 3.1) computes codes with Sinkhorn-Knopp
and trains each view to predict the code of the other. The checkers compare a student's function
with :mod:`sslbook.losses` on random inputs chosen so that the classic mistakes give different
answers, name the mistake when they recognise it, return a
:class:`~sslbook.exercises.CheckResult` and never raise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.exercises import CheckResult, close, run_check
from sslbook.losses import negative_cosine, sinkhorn, swav_loss

__all__ = ["check_simsiam_loss", "check_sinkhorn", "check_swapped_prediction"]


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
def _sinkhorn_variants(scores: torch.Tensor, epsilon: float,
                       iterations: int) -> dict[str, torch.Tensor]:
    B, K = scores.shape

    def iterate(Q, end_with_prototypes=False):  # Q: K x B
        Q = Q / Q.sum()
        for _ in range(iterations):
            Q = Q / Q.sum(dim=1, keepdim=True) / K
            Q = Q / Q.sum(dim=0, keepdim=True) / B
        if end_with_prototypes:
            Q = Q / Q.sum(dim=1, keepdim=True) / K
        return (Q * B).T

    return {
        "only the samples are normalised (a softmax over prototypes): without the prototype "
        "normalisation there is no equipartition": torch.softmax(scores / epsilon, dim=1),
        "the exponential or epsilon is missing: Q starts as exp(scores / epsilon)":
            iterate(scores.T.clamp_min(1e-12)),
        "epsilon is ignored: Q starts as exp(scores / epsilon), not exp(scores)":
            iterate(torch.exp(scores).T),
        "the last normalisation is over the prototypes, so a sample's code does not sum to 1: "
        "end each iteration with the samples (columns of the K x B matrix)":
            iterate(torch.exp(scores / epsilon).T, end_with_prototypes=True),
    }


def check_sinkhorn(fn: Callable, verbose: bool = True,
                   seed: int | None = None) -> CheckResult:
    """Check ``fn(scores, epsilon, iterations) -> B x K`` codes against
    :func:`sslbook.losses.sinkhorn` for several shapes, epsilons and iteration counts."""

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(112 if seed is None else seed + 112)
        for B, K, eps, its in [(12, 4, 0.05, 3), (20, 7, 0.1, 1), (9, 15, 0.03, 2)]:
            u = F.normalize(torch.randn(B, 6, generator=g, dtype=torch.float64), dim=1)
            c = F.normalize(torch.randn(K, 6, generator=g, dtype=torch.float64), dim=1)
            scores = u @ c.T  # B x K cosines
            expected = sinkhorn(scores, eps, its)
            got = fn(scores.clone(), eps, its)
            if not isinstance(got, torch.Tensor):
                return False, f"return a torch.Tensor, got {type(got).__name__}"
            got = got.detach().double()
            where = f"(B={B}, K={K}, epsilon={eps}, iterations={its})"
            if got.shape == (K, B):
                return False, f"{where}: return the codes as B x K (transpose your K x B matrix)"
            ok, hint = close(got, expected, atol=1e-6, rtol=1e-4)
            if ok:
                continue
            for mistake, value in _sinkhorn_variants(scores, eps, its).items():
                if close(got, value, atol=1e-6, rtol=1e-4)[0]:
                    return False, f"{where}: {mistake}"
            if (got.sum(dim=1) - 1).abs().max() > 1e-4:
                return False, (f"{where}: a sample's code does not sum to 1; end each "
                               "iteration with the normalisation over the samples (columns of "
                               f"the K x B matrix), then multiply by B ({hint})")
            return False, f"{where}: {hint}"
        return True, "matches Sinkhorn-Knopp: exp(scores / epsilon), prototypes then samples"

    return run_check("Exercise 11.2 - Sinkhorn-Knopp", test, verbose)


# --------------------------------------------------------------------------- Exercise 11.3
def _swap_variants(s1, s2, t, eps, its) -> dict[str, torch.Tensor]:
    q1, q2 = sinkhorn(s1, eps, its), sinkhorn(s2, eps, its)
    lp1, lp2 = F.log_softmax(s1 / t, dim=1), F.log_softmax(s2 / t, dim=1)

    def ce(q, lp):
        return -(q * lp).sum(dim=1).mean()

    return {
        "the prediction is not swapped: view 1 must predict the code of view 2 (q2 with p1), "
        "and view 2 the code of view 1": (ce(q1, lp1) + ce(q2, lp2)) / 2,
        "the temperature is missing: p = softmax(scores / temperature)":
            (ce(q2, F.log_softmax(s1, dim=1)) + ce(q1, F.log_softmax(s2, dim=1))) / 2,
        "the targets are softmax(scores / temperature) instead of Sinkhorn codes: without the "
        "equipartition every sample could pick the same prototype":
            (ce(torch.softmax(s2 / t, dim=1), lp1) + ce(torch.softmax(s1 / t, dim=1), lp2)) / 2,
        "only one direction is used: average both swapped terms": ce(q2, lp1),
    }


def check_swapped_prediction(fn: Callable, verbose: bool = True,
                             seed: int | None = None) -> CheckResult:
    """Check ``fn(scores1, scores2, temperature, epsilon, iterations) -> scalar`` against
    :func:`sslbook.losses.swav_loss`; the codes must carry no gradient."""

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(113 if seed is None else seed + 113)
        for B, K, t, eps, its in [(16, 6, 0.1, 0.05, 3), (10, 12, 0.2, 0.1, 2)]:
            u = F.normalize(torch.randn(2, B, 5, generator=g, dtype=torch.float64), dim=2)
            c = F.normalize(torch.randn(K, 5, generator=g, dtype=torch.float64), dim=1)
            s1, s2 = u[0] @ c.T, (u[0] + 0.8 * u[1]) @ c.T / 1.8  # B x K each, correlated
            expected = swav_loss(s1, s2, t, eps, its)
            a, b = s1.clone().requires_grad_(), s2.clone().requires_grad_()
            got = fn(a, b, t, eps, its)
            ok, message = _scalar(got)
            if not ok:
                return False, message
            where = f"(B={B}, K={K}, temperature={t})"
            value = got.detach().reshape(()).double()
            ok, hint = close(value, expected, atol=1e-6, rtol=1e-5)
            if not ok:
                for mistake, v in _swap_variants(s1, s2, t, eps, its).items():
                    if close(value, v, atol=1e-6, rtol=1e-5)[0]:
                        return False, f"{where}: {mistake}"
                return False, f"{where}: {hint}"
            if not got.requires_grad:
                return False, "the loss carries no gradient: only the codes q are targets"
            got.reshape(()).backward()
            ra, rb = s1.clone().requires_grad_(), s2.clone().requires_grad_()
            swav_loss(ra, rb, t, eps, its).backward()
            if a.grad is None or not close(a.grad, ra.grad, atol=1e-6, rtol=1e-5)[0]:
                return False, (f"{where}: the value is right but the gradient is not: compute "
                               "the codes under torch.no_grad() (they are targets)")
        return True, "each view predicts the other's Sinkhorn code, codes without gradient"

    return run_check("Exercise 11.3 - swapped prediction", test, verbose)
