"""Checkers for Chapter 10 (BYOL): the weights of past online networks in the target, the
gradient of BYOL's loss with respect to the prediction (by hand), and the symmetrised loss.

Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, arXiv:2006.07733: Sec. 3.1 (the EMA
``xi <- tau xi + (1 - tau) theta`` and the loss of Eq. 2), Sec. 3.3 (the schedule
``tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2``). The references (in the private
:mod:`sslbook.exercises._reference`) run the EMA on basis vectors and differentiate with
autograd; each checker tries inputs on which the classic mistakes give different answers, names
the mistake when it recognises one, returns a :class:`~sslbook.exercises.CheckResult` and never
raises. Every checker takes a ``seed``: the grader's hidden checks draw fresh inputs from it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.exercises import CheckResult, close, no_autograd, run_check
from sslbook.exercises._reference.ch10 import byol_loss as _byol_loss
from sslbook.exercises._reference.ch10 import cosine_tau_reference as _cosine_tau
from sslbook.exercises._reference.ch10 import ema_weights as _ema_weights

__all__ = ["check_byol_grad", "check_byol_loss", "check_ema_weights"]


# --------------------------------------------------------------------------- Exercise 10.1
def _weights_variants(taus: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plausible wrong answers of Exercise 10.1 for the decay rates ``taus`` (T)."""
    T = len(taus)
    after = torch.cat([torch.flip(torch.cumprod(torch.flip(taus[1:], [0]), 0), [0]),
                       torch.ones(1, dtype=taus.dtype)])  # T: prod_{j > k} tau_j
    before = torch.cat([torch.ones(1, dtype=taus.dtype), torch.cumprod(taus, 0)[:-1]])  # T
    right = _ema_weights(taus)
    one_minus = 1 - taus
    swap_after = torch.cat([torch.flip(torch.cumprod(torch.flip(one_minus[1:], [0]), 0), [0]),
                            torch.ones(1, dtype=taus.dtype)])
    tau0 = taus[0]
    constant = torch.cat([tau0 ** T * torch.ones(1, dtype=taus.dtype),
                          (1 - tau0) * tau0 ** torch.arange(T - 1, -1, -1, dtype=taus.dtype)])
    return {
        "tau and 1 - tau are swapped: at step k the target keeps the share tau_k of itself and "
        "takes 1 - tau_k of theta_k": torch.cat([one_minus.prod()[None], taus * swap_after]),
        "theta_k enters at step k with weight 1 - tau_k and is then multiplied only by the "
        "decay rates of the *later* steps, tau_{k+1} ... tau_T (not by its own tau_k)":
            torch.cat([taus.prod()[None], one_minus * taus * after]),
        "the products run over the earlier steps: what shrinks theta_k's weight are the steps "
        "that come after it": torch.cat([taus.prod()[None], one_minus * before]),
        "the weights are in reverse order: w_0 belongs to the initial target xi_0, then "
        "theta_1 ... theta_T (the newest last)": torch.cat([right[:1], right[1:].flip(0)]),
        "each step has its own tau_k: the weights cannot be written with one tau":
            constant,
    }


def check_ema_weights(fn: Callable, verbose: bool = True,
                      seed: int | None = None) -> CheckResult:
    """Check ``fn(taus) -> weights``: for the decay rates ``tau_1 ... tau_T`` of T EMA steps,
    the T + 1 weights with which ``xi_T = w_0 xi_0 + sum_k w_k theta_k``.

    Four runs: BYOL's cosine schedule (first: on it the order-type mistakes all differ),
    random rates with 0 and 1 among them, a constant tau, a single step. Swapped tau and
    1 - tau, the own tau_k included in theta_k's product, products over the earlier steps,
    reversed order and one tau for all steps are recognised. With a ``seed`` (the grader's
    hidden checks) the lengths and rates are drawn from it.
    """
    g = torch.Generator().manual_seed(10 if seed is None else seed + 10)
    T1, T2, T3 = (7, 12, 9) if seed is None else (
        int(torch.randint(4, 15, (1,), generator=g)) for _ in range(3))
    base = 0.9 if seed is None else float(0.5 + 0.45 * torch.rand(1, generator=g))
    random_taus = torch.rand(T3, generator=g, dtype=torch.float64)
    random_taus[1], random_taus[-2] = 0.0, 1.0  # a step that copies, a step that keeps
    runs = [("the cosine schedule", torch.tensor([_cosine_tau(k, T2, base) for k in range(T2)],
                                                 dtype=torch.float64)),
            ("random rates", random_taus),
            ("a constant tau", torch.full((T1,), base, dtype=torch.float64)),
            ("one step", torch.tensor([base], dtype=torch.float64))]

    def test() -> tuple[bool, str]:
        for name, taus in runs:
            got = fn(taus.clone())
            got = torch.as_tensor(got if not isinstance(got, list) else
                                  [float(x) for x in got], dtype=torch.float64).detach().flatten()
            expected = _ema_weights(taus)
            if got.shape != expected.shape:
                return False, (f"({name}) {len(got)} weights for {len(taus)} steps, expected "
                               f"{len(expected)}: the first is the weight of the initial "
                               "target xi_0, then one per online network theta_1 ... theta_T")
            ok, hint = close(got, expected, atol=1e-9, rtol=1e-7)
            if ok:
                continue
            for mistake, wrong in _weights_variants(taus).items():
                if close(got, wrong, atol=1e-9, rtol=1e-7)[0]:
                    return False, f"({name}) {mistake}"
            if abs(got.sum().item() - 1) > 1e-6:
                return False, (f"({name}) the weights sum to {got.sum().item():.6g}: an average "
                               f"of averages sums to 1 ({hint})")
            return False, f"({name}) {hint}"
        return True, "w_0 = prod tau_j, w_k = (1 - tau_k) prod_{j > k} tau_j, for any rates"

    return run_check("Exercise 10.1 - the weights of past online networks in the target", test,
                     verbose)


# --------------------------------------------------------------------------- Exercise 10.2
def _grad_variants(p: torch.Tensor, z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plausible wrong answers of Exercise 10.2."""
    B = len(p)
    norm = p.norm(dim=1, keepdim=True)  # B x 1
    p_bar, z_bar = p / norm, F.normalize(z, dim=1)  # B x D
    cos = (p_bar * z_bar).sum(1, keepdim=True)  # B x 1
    right = -2.0 / (B * norm) * (z_bar - cos * p_bar)
    return {
        "the sign is wrong: this is the direction that increases the loss": -right,
        "the loss is a batch mean: divide by B": right * B,
        "normalising p divides its gradient by |p|: the factor 1 / |p_b| is missing":
            right * norm,
        "the part along p is missing: the gradient of p/|p| removes the radial component, "
        "-2 / (B |p|) (z/|z| - cos p/|p|)": -2.0 / (B * norm) * z_bar,
        "z must be normalised too: the loss compares unit vectors": -2.0 / (B * norm) * (
            z - (p_bar * z).sum(1, keepdim=True) * p_bar),
        "this is the gradient of the loss without normalisation, mean ||p - z||^2":
            2.0 / B * (p - z),
        "this is the gradient with respect to p/|p| (2 (p/|p| - z/|z|) / B): go on through the "
        "normalisation": 2.0 / B * (p_bar - z_bar),
    }


def check_byol_grad(fn: Callable, verbose: bool = True,
                    seed: int | None = None) -> CheckResult:
    """Check ``fn(p, z) -> B x D``: the gradient with respect to ``p`` of the batch mean of
    ``||p/|p| - z/|z| ||^2``, written by hand (``backward()``, ``torch.autograd.grad`` and
    ``torch.func`` raise while ``fn`` runs), compared with autograd.

    Rows of p and z have norms from 0.1 to 10, so a missing 1 / |p| or a z left unnormalised
    differ; wrong sign, missing 1 / B, missing radial projection, the unnormalised loss's gradient
    and the gradient with respect to p/|p| are recognised. With a ``seed`` (the grader's hidden
    checks) B, D and the data are drawn from it.
    """
    g = torch.Generator().manual_seed(102 if seed is None else seed + 102)
    shapes = [(6, 8), (3, 2)] if seed is None else [
        (int(torch.randint(2, 12, (1,), generator=g)), int(torch.randint(2, 10, (1,),
                                                                          generator=g)))
        for _ in range(2)]

    def test() -> tuple[bool, str]:
        for b, d in shapes:
            scale = torch.logspace(-1, 1, b, dtype=torch.float64).unsqueeze(1)  # B x 1
            p = torch.randn(b, d, generator=g, dtype=torch.float64) * scale  # B x D
            z = torch.randn(b, d, generator=g, dtype=torch.float64) * scale.flip(0)  # B x D
            leaf = p.clone().requires_grad_()
            loss = ((F.normalize(leaf, dim=1) - F.normalize(z, dim=1)) ** 2).sum(1).mean()
            expected, = torch.autograd.grad(loss, leaf)  # B x D
            with no_autograd():
                got = fn(p.clone(), z.clone())
            got = torch.as_tensor(got).detach().double()
            if got.shape != expected.shape:
                return False, (f"shape {tuple(got.shape)}, expected {tuple(expected.shape)}: "
                               "one gradient row per prediction")
            ok, hint = close(got, expected, atol=1e-9, rtol=1e-6)
            if ok:
                continue
            for mistake, wrong in _grad_variants(p, z).items():
                if close(got, wrong, atol=1e-9, rtol=1e-6)[0]:
                    return False, f"(B={b}, D={d}) {mistake}"
            return False, f"(B={b}, D={d}) {hint}"
        return True, "-2 / (B |p|) (z/|z| - cos p/|p|): orthogonal to p, scaled by 1 / |p|"

    return run_check("Exercise 10.2 - the gradient of the BYOL loss, by hand", test, verbose)


# --------------------------------------------------------------------------- Exercise 10.3
def check_byol_loss(fn: Callable, verbose: bool = True,
                    seed: int | None = None) -> CheckResult:
    """Check ``fn(p1, p2, z1, z2) -> scalar``: the symmetrised BYOL loss, value and gradients.

    Rows of p and z have very different norms (so a loss without normalisation differs),
    ``z1`` and ``z2`` differ (so pairing p1 with z1 or dropping a term differs), and the
    targets are passed with ``requires_grad=True``: the answer must send no gradient into them.
    """

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(0 if seed is None else seed + 0)
        b, d = 6, 8
        scale = torch.logspace(-1, 1, b).unsqueeze(1)  # B x 1, norms from 0.1 to 10
        tensors = [torch.randn(b, d, generator=g, dtype=torch.float64) * scale for _ in range(4)]
        ref_in = [t.clone().requires_grad_() for t in tensors]
        ref = _byol_loss(*ref_in)
        ref.backward()
        got_in = [t.clone().requires_grad_() for t in tensors]
        got = fn(*got_in)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            return False, "return a scalar tensor (the batch mean, summed over both terms)"
        p1, p2, z1, z2 = (t.detach() for t in tensors)
        unit = F.normalize
        one = (2 - 2 * (unit(p1, dim=1) * unit(z2, dim=1)).sum(1)).mean()
        same_view = ((2 - 2 * (unit(p1, dim=1) * unit(z1, dim=1)).sum(1)).mean()
                     + (2 - 2 * (unit(p2, dim=1) * unit(z2, dim=1)).sum(1)).mean())
        raw = ((p1 - z2) ** 2).sum(1).mean() + ((p2 - z1) ** 2).sum(1).mean()
        wrong = {
            "only one term: symmetrise, L(p1, z2) + L(p2, z1) (Eq. 2, L + L~)": [one, 2 * one,
                                                                                   one / 2],
            "each prediction is compared with the target of the *same* view; p1 predicts z2 "
            "and p2 predicts z1": [same_view],
            "p and z are not L2-normalised: the loss is ||p/|p| - z/|z| ||^2 = 2 - 2 cos":
                [raw, raw / 2],
            "the batch is summed, not averaged": [ref.detach() * b],
        }
        value = got.detach().double().reshape(())
        if not torch.allclose(value, ref.detach(), atol=1e-6, rtol=1e-6):
            for hint, candidates in wrong.items():
                if any(torch.allclose(value, c.double(), atol=1e-6, rtol=1e-6)
                       for c in candidates):
                    return False, hint
            _, hint = close(value, ref.detach(), atol=1e-6, rtol=1e-6)
            return False, f"loss value: {hint}"
        got.backward()
        for name, t in zip(("z1", "z2"), got_in[2:], strict=True):
            if t.grad is not None and t.grad.abs().max() > 0:
                return False, (f"gradient flows into the target {name}: the targets come from "
                               "the EMA network and must be detached (stop-gradient)")
        for name, t, r in zip(("p1", "p2"), got_in[:2], ref_in[:2], strict=True):
            if t.grad is None:
                return False, f"no gradient reaches {name}: do not detach the predictions"
            ok, hint = close(t.grad, r.grad, atol=1e-6)
            if not ok:
                return False, f"gradient with respect to {name}: {hint}"
        return True, "2 - 2 cos, symmetrised, with a stop-gradient on the targets"

    return run_check("Exercise 10.3 - the BYOL loss", test, verbose)
