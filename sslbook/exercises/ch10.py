"""Checkers for Chapter 10 (BYOL): the EMA update of the target network, the cosine schedule of
its decay rate tau, and the symmetrised BYOL loss.

Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, arXiv:2006.07733: Sec. 3.1 (the EMA
``xi <- tau xi + (1 - tau) theta`` and the loss of Eq. 2), Sec. 3.3 (the schedule
``tau = 1 - (1 - tau_base)(cos(pi k / K) + 1) / 2``). The references agree with
:func:`sslbook.methods.update_momentum`, :func:`sslbook.methods.cosine_tau` and
:class:`sslbook.methods.BYOL`; each checker tries random inputs on which the classic mistakes give
different answers, names the mistake when it recognises one, returns a
:class:`~sslbook.exercises.CheckResult` and never raises.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from sslbook.exercises import CheckResult, close, run_check
from sslbook.exercises._reference.ch10 import byol_loss as _byol_loss
from sslbook.exercises._reference.ch10 import cosine_tau_reference as _cosine_tau_reference

__all__ = ["check_byol_loss", "check_cosine_tau", "check_ema_update"]


# --------------------------------------------------------------------------- references


# --------------------------------------------------------------------------- Exercise 10.1
def _net(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 3))


def check_ema_update(fn: Callable, verbose: bool = True,
                     seed: int | None = None) -> CheckResult:
    """Check ``fn(online, target, tau)``: updates ``target``'s parameters in place to
    ``tau * target + (1 - tau) * online`` and leaves ``online`` unchanged.

    Several tau (0.9, 0.3, 0 and 1) are tried on two small networks with different weights, so
    swapping tau and 1 - tau, moving the online network towards the target, and replacing the
    target by the online network are told apart from the answer.
    """

    def test() -> tuple[bool, str]:
        for tau in (0.9, 0.3, 0.0, 1.0):
            online, target0 = (_net(0), _net(1)) if seed is None else (_net(seed),
                                                                       _net(seed + 1))
            for p in target0.parameters():
                p.requires_grad_(False)  # a target never receives gradients
            target = copy.deepcopy(target0)
            online_before = [p.detach().clone() for p in online.parameters()]
            result = fn(online, target, tau)
            if result is not None and result is not target:
                return False, ("update the target in place (e.g. with p.mul_(...).add_(...) "
                               "under torch.no_grad()) and return nothing")
            got = [p.detach() for p in target.parameters()]
            theta = [p.detach() for p in online.parameters()]
            xi = [p.detach() for p in target0.parameters()]
            if any(not torch.equal(a, b) for a, b in zip(online_before, theta, strict=True)):
                return False, ("the online network changed: the EMA moves the *target* towards "
                               "the online network; gradients alone update the online one")
            expected = [tau * x + (1 - tau) * t for x, t in zip(xi, online_before, strict=True)]
            if all(torch.allclose(g, e, atol=1e-6) for g, e in zip(got, expected, strict=True)):
                continue
            swapped = [(1 - tau) * x + tau * t for x, t in zip(xi, online_before, strict=True)]
            if all(torch.allclose(g, s, atol=1e-6) for g, s in zip(got, swapped, strict=True)):
                return False, (f"(tau = {tau}) tau and 1 - tau are swapped: the target keeps "
                               "the fraction tau of itself, xi <- tau xi + (1 - tau) theta")
            if all(torch.equal(g, x) for g, x in zip(got, xi, strict=True)) and tau != 1.0:
                return False, f"(tau = {tau}) the target did not change"
            _, hint = close(torch.cat([g.flatten() for g in got]),
                             torch.cat([e.flatten() for e in expected]), atol=1e-6)
            return False, f"(tau = {tau}) {hint}"
        return True, "xi <- tau xi + (1 - tau) theta, online network untouched"

    return run_check("Exercise 10.1 - the EMA update of the target", test, verbose)


# --------------------------------------------------------------------------- Exercise 10.2
def check_cosine_tau(fn: Callable, verbose: bool = True,
                     seed: int | None = None) -> CheckResult:
    """Check ``fn(step, total_steps, tau_base) -> float`` against BYOL's schedule
    ``1 - (1 - tau_base)(cos(pi k / K) + 1) / 2`` at every step of two runs (K = 10, 37).

    Recognised mistakes: the schedule run backwards (1 at the start, tau_base at the end), a
    linear ramp from tau_base to 1, and a cosine that starts at 0 instead of tau_base.
    """

    def test() -> tuple[bool, str]:
        runs = ((10, 0.99), (37, 0.9)) if seed is None else (
            (10 + seed % 41, 0.99), (5 + seed % 23, round(0.5 + (seed % 997) / 2000, 4)))
        for total, base in runs:
            steps = range(total + 1)
            got = torch.tensor([float(fn(k, total, base)) for k in steps], dtype=torch.float64)
            ref = torch.tensor([_cosine_tau_reference(k, total, base) for k in steps],
                               dtype=torch.float64)
            ok, hint = close(got, ref, atol=1e-7, rtol=1e-7)
            if ok:
                continue
            if torch.allclose(got, ref.flip(0), atol=1e-7):
                return False, ("the schedule runs backwards: tau must start at tau_base (step "
                               "0) and rise to 1 at the last step")
            linear = torch.tensor([base + (1 - base) * k / total for k in steps],
                                  dtype=torch.float64)
            if torch.allclose(got, linear, atol=1e-7):
                return False, ("this is a linear ramp; BYOL uses (cos(pi k / K) + 1) / 2, "
                               "flat at both ends")
            if abs(got[0].item() - base) > 1e-7:
                return False, (f"at step 0 tau must be tau_base = {base}, got "
                               f"{got[0].item():.6g}")
            return False, f"(K = {total}, tau_base = {base}) {hint}"
        return True, "tau rises from tau_base to 1 along a half cosine"

    return run_check("Exercise 10.2 - the cosine schedule of tau", test, verbose)


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
