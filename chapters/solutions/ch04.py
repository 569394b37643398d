"""Solutions to the exercises of Chapter 4 (Optimizers and learning-rate schedules)."""

from __future__ import annotations

import math

import torch


def momentum_step(param, grad, state, hp):
    """SGD with momentum as torch.optim.SGD computes it (lr, momentum, dampening, nesterov,
    weight_decay in hp)."""
    g = grad + hp["weight_decay"] * param
    if "b" not in state:
        state["b"] = g.clone()  # first step: the buffer is the gradient, no dampening
    else:
        state["b"] = hp["momentum"] * state["b"] + (1 - hp["dampening"]) * g
    direction = g + hp["momentum"] * state["b"] if hp["nesterov"] else state["b"]
    return param - hp["lr"] * direction


def adam_step(param, grad, state, hp):
    """Adam (L2 penalty, decoupled=False) or AdamW (decoupled=True), as torch.optim."""
    beta1, beta2 = hp["betas"]
    if hp["decoupled"]:
        param = param * (1 - hp["lr"] * hp["weight_decay"])
    else:
        grad = grad + hp["weight_decay"] * param
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = beta1 * state.get("m", torch.zeros_like(grad)) + (1 - beta1) * grad
    v = state["v"] = beta2 * state.get("v", torch.zeros_like(grad)) + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return param - hp["lr"] * m_hat / (v_hat.sqrt() + hp["eps"])


def sgdr_lr(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    """SGDR's learning rate at a 0-based scheduler step: cycle i lasts T_0 * T_mult**i steps."""
    T_i, t = T_0, step  # length of the current cycle, steps since its restart
    while t >= T_i:  # skip the finished cycles
        t -= T_i
        T_i *= T_mult
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / T_i)) / 2
