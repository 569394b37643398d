"""Chapter 4 checkers accept the solutions and reject plausible wrong answers."""

from __future__ import annotations

import math

import pytest
import torch
from solutions_loader import load_solutions, not_attempted

from sslbook.exercises._reference.ch04 import reference_lrs
from sslbook.exercises.ch04 import (
    check_adam_step,
    check_momentum_step,
    check_warmup_cosine,
)

solutions = load_solutions("ch04")



# --------------------------------------------------------------------------- Exercise 4.1
def momentum_swapped_nesterov(param, grad, state, hp):
    """Heavy ball and Nesterov mixed up."""
    return solutions.momentum_step(param, grad, state, {**hp, "nesterov": not hp["nesterov"]})


def momentum_lr_inside_buffer(param, grad, state, hp):
    """b <- mu b + lr g; p <- p - b: equal to PyTorch's only while lr is constant."""
    g = grad + hp["weight_decay"] * param
    b = state["b"] = hp["momentum"] * state.get("b", 0.0) + (1 - hp["dampening"]) * hp["lr"] * g
    direction = hp["lr"] * g + hp["momentum"] * b if hp["nesterov"] else b
    return param - direction


def momentum_dampened_first_step(param, grad, state, hp):
    """A zero-initialised buffer: (1 - dampening) g at the first step, unlike PyTorch."""
    g = grad + hp["weight_decay"] * param
    b = state["b"] = hp["momentum"] * state.get("b", 0.0) + (1 - hp["dampening"]) * g
    direction = g + hp["momentum"] * b if hp["nesterov"] else b
    return param - hp["lr"] * direction


def momentum_ema(param, grad, state, hp):
    """An exponential moving average b <- mu b + (1 - mu) g, a 10x smaller step at mu = 0.9."""
    b = state["b"] = hp["momentum"] * state.get("b", 0.0) + (1 - hp["momentum"]) * grad
    return param - hp["lr"] * b


def momentum_decay_outside(param, grad, state, hp):
    """Weight decay added to the step instead of the gradient (skips the buffer)."""
    b = state["b"] = hp["momentum"] * state["b"] + (1 - hp["dampening"]) * grad \
        if "b" in state else grad.clone()
    direction = grad + hp["momentum"] * b if hp["nesterov"] else b
    return param - hp["lr"] * (direction + hp["weight_decay"] * param)


def test_momentum_checker_accepts_the_solution():
    result = check_momentum_step(solutions.momentum_step, verbose=False)
    assert result.passed, result.message


@pytest.mark.parametrize("wrong", [momentum_swapped_nesterov, momentum_lr_inside_buffer,
                                   momentum_dampened_first_step, momentum_ema,
                                   momentum_decay_outside])
def test_momentum_checker_rejects_wrong_answers(wrong):
    result = check_momentum_step(wrong, verbose=False)
    assert not result.passed


def test_momentum_checker_explains_lr_inside_buffer():
    message = check_momentum_step(momentum_lr_inside_buffer, verbose=False).message
    assert "lr changing" in message and "inside the buffer" in message


# --------------------------------------------------------------------------- Exercise 4.2
def adam_no_bias_correction(param, grad, state, hp):
    b1, b2 = hp["betas"]
    if hp["decoupled"]:
        param = param * (1 - hp["lr"] * hp["weight_decay"])
    else:
        grad = grad + hp["weight_decay"] * param
    m = state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * grad
    v = state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * grad**2
    return param - hp["lr"] * m / (v.sqrt() + hp["eps"])


def adam_eps_inside_sqrt(param, grad, state, hp):
    b1, b2 = hp["betas"]
    if hp["decoupled"]:
        param = param * (1 - hp["lr"] * hp["weight_decay"])
    else:
        grad = grad + hp["weight_decay"] * param
    t = state["t"] = state.get("t", 0) + 1
    m = state["m"] = b1 * state.get("m", 0.0) + (1 - b1) * grad
    v = state["v"] = b2 * state.get("v", 0.0) + (1 - b2) * grad**2
    return param - hp["lr"] * (m / (1 - b1**t)) / (v / (1 - b2**t) + hp["eps"]).sqrt()


def adam_always_l2(param, grad, state, hp):
    """The L2 penalty even when decoupled decay is asked for (Adam with weight_decay)."""
    return solutions.adam_step(param, grad, state, {**hp, "decoupled": False})


def adam_always_decoupled(param, grad, state, hp):
    return solutions.adam_step(param, grad, state, {**hp, "decoupled": True})


def adam_decay_without_lr(param, grad, state, hp):
    """Decoupled decay p <- p (1 - weight_decay), forgetting the learning rate."""
    if hp["decoupled"]:
        param = param * (1 - hp["weight_decay"]) / (1 - hp["lr"] * hp["weight_decay"])
    return solutions.adam_step(param, grad, state, hp)


def test_adam_checker_accepts_the_solution():
    result = check_adam_step(solutions.adam_step, verbose=False)
    assert result.passed, result.message


@pytest.mark.parametrize("wrong", [adam_no_bias_correction, adam_eps_inside_sqrt, adam_always_l2,
                                   adam_always_decoupled, adam_decay_without_lr])
def test_adam_checker_rejects_wrong_answers(wrong):
    result = check_adam_step(wrong, verbose=False)
    assert not result.passed


def test_adam_checker_names_the_mistake():
    assert "bias correction" in check_adam_step(adam_no_bias_correction, verbose=False).message
    assert "outside the square root" in check_adam_step(adam_eps_inside_sqrt,
                                                        verbose=False).message
    assert "AdamW" in check_adam_step(adam_always_l2, verbose=False).message


# --------------------------------------------------------------------------- Exercise 4.3
def lr_no_warmup(step, base_lr, warmup_steps, total_steps, final_lr_fraction=0.0):
    return solutions.warmup_cosine_lr(step, base_lr, 0, total_steps, final_lr_fraction)


def lr_restarting(step, base_lr, warmup_steps, total_steps, final_lr_fraction=0.0):
    """Cosine that starts over after total_steps (a warm restart)."""
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    progress = ((step - warmup_steps) / max(1, total_steps - warmup_steps)) % 1.0
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return base_lr * (final_lr_fraction + (1 - final_lr_fraction) * cosine)


def lr_warmup_from_zero(step, base_lr, warmup_steps, total_steps, final_lr_fraction=0.0):
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    return solutions.warmup_cosine_lr(step, base_lr, warmup_steps, total_steps, final_lr_fraction)


def lr_ignores_final(step, base_lr, warmup_steps, total_steps, final_lr_fraction=0.0):
    return solutions.warmup_cosine_lr(step, base_lr, warmup_steps, total_steps, 0.0)


def lr_linear_decay(step, base_lr, warmup_steps, total_steps, final_lr_fraction=0.0):
    if step < warmup_steps:
        return base_lr * (step + 1) / (warmup_steps + 1)
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return base_lr * (final_lr_fraction + (1 - final_lr_fraction) * (1 - progress))


def test_reference_lrs_follow_the_formula():
    lrs = reference_lrs(1.0, 4, 14, 0.0, 20)
    assert lrs[0] == pytest.approx(1 / 5) and lrs[3] == pytest.approx(4 / 5)
    assert lrs[4] == pytest.approx(1.0) and lrs[9] == pytest.approx(0.5)
    assert lrs[14:] == pytest.approx([0.0] * 6, abs=1e-12)


def test_warmup_cosine_checker_accepts_the_solution():
    result = check_warmup_cosine(solutions.warmup_cosine_lr, verbose=False)
    assert result.passed, result.message


@pytest.mark.parametrize("wrong", [lr_no_warmup, lr_restarting, lr_warmup_from_zero,
                                   lr_ignores_final, lr_linear_decay])
def test_warmup_cosine_checker_rejects_wrong_answers(wrong):
    result = check_warmup_cosine(wrong, verbose=False)
    assert not result.passed


def test_warmup_cosine_checker_names_the_restart():
    message = check_warmup_cosine(lr_restarting, verbose=False).message
    assert "restart" in message


# --------------------------------------------------------------------------- all
@pytest.mark.parametrize("check", [check_momentum_step, check_adam_step, check_warmup_cosine])
def test_unfinished_stub_is_reported_not_raised(check, capsys):
    result = check(not_attempted)
    assert not result.passed and "not attempted" in result.message
    assert "not attempted" in capsys.readouterr().out
    assert result.to_dict()["passed"] is False


@pytest.mark.parametrize("check", [check_momentum_step, check_adam_step])
def test_a_crashing_answer_is_reported(check):
    result = check(lambda param, grad, state, hp: param + torch.ones(7), verbose=False)
    assert not result.passed and "raised" in result.message
