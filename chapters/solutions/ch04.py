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


def warmup_cosine_lr(step, base_lr, warmup_steps, total_steps, final_lr_fraction=0.0):
    """The learning rate of sslbook.optim.warmup_cosine at a 0-based step."""
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return base_lr * (final_lr_fraction + (1 - final_lr_fraction) * cosine)
