"""Checkers for Chapter 4 (Optimizers and learning-rate schedules): SGD with momentum, Adam /
AdamW, and cosine annealing with warm restarts (SGDR).

Each checker runs the student's update rule or schedule on fixed random inputs and compares it,
step by step, with the reference: ``torch.optim.SGD``, ``torch.optim.Adam``,
``torch.optim.AdamW`` and ``torch.optim.lr_scheduler.CosineAnnealingWarmRestarts``. The inputs
are chosen so that the classic mistakes show up (a learning rate that changes between steps, an
epsilon large enough to matter, weight decay large enough to tell L2 from decoupled decay,
several cycles of growing length). Every checker takes a ``seed``: the grader's hidden checks
draw fresh inputs from it. A checker returns a :class:`~sslbook.exercises.CheckResult` and never
raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch

from sslbook.exercises import CheckResult, close, run_check
from sslbook.exercises._reference.ch04 import sgdr_lrs as _sgdr_reference

StepFn = Callable[[torch.Tensor, torch.Tensor, dict, dict], torch.Tensor]


def _as_tensor(result, step: int) -> torch.Tensor:
    if not isinstance(result, torch.Tensor):
        raise TypeError(f"your function returned {type(result).__name__} at step {step}; "
                        "return the new parameter tensor")
    return result.detach().double()


def _compare_with_torch(fn: StepFn, make_optimizer: Callable, hp: dict, lrs: Sequence[float],
                        grad_scale: float, seed: int) -> tuple[bool, str]:
    """Run ``fn`` and a torch optimiser on the same gradients; (equal?, where they part)."""
    generator = torch.Generator().manual_seed(seed)
    p0 = torch.randn(4, 3, generator=generator, dtype=torch.float64)
    # gradients with |g| in [0.5, 1.5) x grad_scale: no coordinate is close to 0
    grads = [grad_scale * torch.randn(4, 3, generator=generator, dtype=torch.float64).sign()
             * (0.5 + torch.rand(4, 3, generator=generator, dtype=torch.float64))
             for _ in lrs]
    reference = torch.nn.Parameter(p0.clone())
    optimizer = make_optimizer([reference])
    p, state = p0.clone(), {}
    for step, (lr, g) in enumerate(zip(lrs, grads, strict=True)):
        optimizer.param_groups[0]["lr"] = lr
        reference.grad = g.clone()
        optimizer.step()
        p = _as_tensor(fn(p.clone(), g.clone(), state, {**hp, "lr": lr}), step)
        ok, hint = close(p, reference.detach(), atol=1e-9, rtol=1e-7)
        if not ok:
            return False, f"after step {step + 1} (lr = {lr:g}): {hint}"
    return True, "matches"


# --------------------------------------------------------------------------- Exercise 4.1
def check_momentum_step(fn: StepFn, verbose: bool = True,
                        seed: int | None = None) -> CheckResult:
    """Check ``fn(param, grad, state, hp) -> new param`` against ``torch.optim.SGD``.

    ``hp`` holds ``lr``, ``momentum``, ``dampening``, ``nesterov`` and ``weight_decay``; ``state``
    is a dict the function keeps its buffer in (empty at the first step). PyTorch's rule:
    g <- g + weight_decay p; b <- g at the first step, else momentum b + (1 - dampening) g;
    the step direction is g + momentum b (Nesterov) or b; p <- p - lr direction. The learning
    rate changes between steps, as under a schedule.
    """
    base = {"momentum": 0.9, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0}
    varying = [0.1, 0.1, 0.05, 0.2, 0.02, 0.1, 0.3, 0.05]
    stages = [
        ("heavy ball, constant lr", {}, [0.1] * 8,
         "check b <- momentum * b + g (b = g at the first step) and p <- p - lr * b"),
        ("heavy ball, lr changing between steps", {}, varying,
         "with a constant lr you were right, so lr is probably inside the buffer "
         "(b <- momentum * b + lr * g): PyTorch keeps lr out of b and multiplies at the update, "
         "so a schedule changes the step at once"),
        ("Nesterov", {"nesterov": True}, varying,
         "with nesterov=True the step is along g + momentum * b (after updating b), not along b;"
         " without it, along b alone"),
        ("dampening 0.5 and weight decay 0.01", {"dampening": 0.5, "weight_decay": 0.01}, varying,
         "add weight_decay * p to the gradient before the buffer; PyTorch sets b = g at the "
         "first step (no dampening then) and b <- momentum * b + (1 - dampening) * g after"),
    ]

    def test() -> tuple[bool, str]:
        offset = 0 if seed is None else seed
        for i, (name, extra, lrs, hint) in enumerate(stages):
            hp = {**base, **extra}
            ok, where = _compare_with_torch(
                fn, lambda params, hp=hp: torch.optim.SGD(params, lr=0.1, **hp), hp, lrs,
                grad_scale=1.0, seed=41 + offset + i)
            if not ok:
                return False, f"{name}: {where}. Hint: {hint}"
        return True, ("heavy ball, Nesterov, dampening and weight decay match torch.optim.SGD "
                      "under a changing learning rate")

    return run_check("Exercise 4.1 - SGD with momentum", test, verbose)


# --------------------------------------------------------------------------- Exercise 4.2
def check_adam_step(fn: StepFn, verbose: bool = True,
                    seed: int | None = None) -> CheckResult:
    """Check ``fn(param, grad, state, hp) -> new param`` against ``torch.optim.Adam``/``AdamW``.

    ``hp`` holds ``lr``, ``betas`` (beta1, beta2), ``eps``, ``weight_decay`` and ``decoupled``:
    ``decoupled=False`` is Adam with an L2 penalty (g <- g + weight_decay p, as
    ``torch.optim.Adam``), ``decoupled=True`` is AdamW (p <- p (1 - lr weight_decay) before the
    Adam step, Loshchilov & Hutter, arXiv:1711.05101, Algorithm 2). The Adam step is
    m_hat / (sqrt(v_hat) + eps) with both moments bias-corrected (Kingma & Ba, arXiv:1412.6980,
    Algorithm 1).
    """
    base = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0, "decoupled": False}
    varying = [0.05, 0.05, 0.02, 0.1, 0.05, 0.01, 0.05, 0.03]
    stages = [
        ("no weight decay", {}, [0.05] * 8, 1.0, torch.optim.Adam,
         "check the bias corrections m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t) "
         "with t counting from 1, and the step lr * m_hat / (sqrt(v_hat) + eps)"),
        ("eps = 0.1 with small gradients", {"eps": 0.1}, [0.05] * 8, 0.01, torch.optim.Adam,
         "eps goes outside the square root: sqrt(v_hat) + eps, not sqrt(v_hat + eps)"),
        ("AdamW (decoupled=True, weight_decay=0.1)", {"weight_decay": 0.1, "decoupled": True},
         varying, 1.0, torch.optim.AdamW,
         "decoupled decay shrinks the weights, p <- p * (1 - lr * weight_decay), and leaves the "
         "gradient and the moments alone"),
        ("Adam with L2 (decoupled=False, weight_decay=0.1)",
         {"weight_decay": 0.1, "decoupled": False}, varying, 1.0, torch.optim.Adam,
         "with decoupled=False the penalty joins the gradient, g <- g + weight_decay * p, before "
         "the moments are updated"),
    ]

    def test() -> tuple[bool, str]:
        offset = 0 if seed is None else seed
        for i, (name, extra, lrs, scale, cls, hint) in enumerate(stages):
            hp = {**base, **extra}
            kwargs = {k: hp[k] for k in ("betas", "eps", "weight_decay")}
            ok, where = _compare_with_torch(
                fn, lambda params, cls=cls, kwargs=kwargs: cls(params, lr=0.05, **kwargs), hp,
                lrs, grad_scale=scale, seed=51 + offset + i)
            if not ok:
                return False, f"{name}: {where}. Hint: {hint}"
        return True, "Adam and AdamW match torch.optim.Adam / torch.optim.AdamW"

    return run_check("Exercise 4.2 - Adam and AdamW", test, verbose)


# --------------------------------------------------------------------------- Exercise 4.3
def _sgdr_variants(base_lr, T_0, T_mult, eta_min, steps) -> dict[str, list[float]]:
    """Plausible wrong answers of Exercise 4.3."""
    def cosine(t, T, low=eta_min):
        return low + (base_lr - low) * (1 + math.cos(math.pi * t / T)) / 2

    def cycle(step, grow=True):
        T, t = T_0, step
        while t >= T:
            t -= T
            T = T * T_mult if grow else T
        return t, T

    return {
        "the periods do not grow: after each restart the next cycle is T_mult times longer "
        "(T_i = T_0 * T_mult**i)": [cosine(*cycle(s, grow=False)) for s in range(steps)],
        "there is no restart: at the end of a cycle the rate jumps back to base_lr":
            [cosine(min(s, T_0), T_0) for s in range(steps)],
        "the cosine goes down to eta_min, not to 0":
            [cosine(*cycle(s), low=0.0) for s in range(steps)],
        "a cycle of T_i steps reaches eta_min at its last step: use T_cur / T_i (the minimum "
        "itself is never set, the restart comes first), not T_cur / (T_i - 1)":
            [cosine(t, max(T - 1, 1)) for t, T in map(cycle, range(steps))],
        "the rate rises within a cycle: it starts at base_lr and falls to eta_min":
            [base_lr + eta_min - cosine(*cycle(s)) for s in range(steps)],
    }


def check_sgdr(fn: Callable, verbose: bool = True, seed: int | None = None) -> CheckResult:
    """Check ``fn(step, base_lr, T_0, T_mult, eta_min) -> lr``: the learning rate of SGDR's warm
    restarts at a 0-based scheduler step, as ``torch.optim.lr_scheduler.
    CosineAnnealingWarmRestarts`` sets it (cycle i lasts ``T_0 * T_mult**i`` steps; within a
    cycle ``eta_min + (base_lr - eta_min)(1 + cos(pi T_cur / T_i)) / 2``).

    Three schedules, each over several cycles. Periods that do not grow, no restart, eta_min
    ignored, a cycle one step too short and a rising cosine are recognised. With a ``seed``
    (the grader's hidden checks) T_0, T_mult and eta_min are drawn from it.
    """
    cases = [(0.1, 5, 1, 0.0), (1.0, 3, 2, 0.1), (0.5, 4, 3, 0.01)]
    if seed is not None:
        g = torch.Generator().manual_seed(seed)
        cases = [(round(float(0.05 + torch.rand(1, generator=g)), 4),
                  int(torch.randint(2, 8, (1,), generator=g)), T_mult,
                  round(float(0.01 * torch.rand(1, generator=g)), 5)) for T_mult in (1, 2, 3)]

    def test() -> tuple[bool, str]:
        for base_lr, T_0, T_mult, eta_min in cases:
            steps = T_0 * (1 + T_mult + T_mult ** 2) + 2  # three cycles and into the fourth
            expected = _sgdr_reference(base_lr, T_0, T_mult, eta_min, steps)
            got = [float(fn(step, base_lr, T_0, T_mult, eta_min)) for step in range(steps)]
            where = f"(base_lr={base_lr}, T_0={T_0}, T_mult={T_mult}, eta_min={eta_min})"
            ok, hint = close(torch.tensor(got), torch.tensor(expected), atol=1e-9, rtol=1e-7)
            if ok:
                continue
            for mistake, wrong in _sgdr_variants(base_lr, T_0, T_mult, eta_min, steps).items():
                if close(torch.tensor(got), torch.tensor(wrong), atol=1e-9, rtol=1e-7)[0]:
                    return False, f"{where}: {mistake}"
            return False, f"{where}: {hint} (index = step)"
        return True, "matches CosineAnnealingWarmRestarts over several growing cycles"

    return run_check("Exercise 4.3 - cosine annealing with warm restarts (SGDR)", test, verbose)


__all__ = ["check_adam_step", "check_momentum_step", "check_sgdr"]
