"""Chapter 4 checkers accept the solutions and reject plausible wrong answers."""

from __future__ import annotations

import math

import pytest
import torch
from solutions_loader import load_solutions, not_attempted

from sslbook.exercises._reference.ch04 import sgdr_lrs
from sslbook.exercises.ch04 import check_adam_step, check_momentum_step, check_sgdr

solutions = load_solutions("ch04")
SEEDS = (None, 1, 12345, 2**31 - 1)


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


# --------------------------------------------------------------------------- hints, hidden seeds
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("check, wrong, hint", [
    (check_momentum_step, momentum_swapped_nesterov, "b = g at the first step"),
    (check_momentum_step, momentum_ema, "b <- momentum * b + g"),
    (check_momentum_step, momentum_lr_inside_buffer, "lr is probably inside the buffer"),
    (check_momentum_step, momentum_dampened_first_step, "no dampening then"),
    (check_momentum_step, momentum_decay_outside, "weight_decay * p to the gradient"),
    (check_adam_step, adam_no_bias_correction, "bias corrections"),
    (check_adam_step, adam_eps_inside_sqrt, "outside the square root"),
    (check_adam_step, adam_always_l2, "decoupled decay shrinks the weights"),
    (check_adam_step, adam_always_decoupled, "penalty joins the gradient"),
    (check_adam_step, adam_decay_without_lr, "(1 - lr * weight_decay)"),
])
def test_optimizer_checkers_reject_with_a_hint(check, wrong, hint, seed):
    result = check(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert hint in result.message, result.message


@pytest.mark.parametrize("seed", SEEDS[1:])
def test_optimizer_checkers_accept_the_solutions_on_hidden_seeds(seed):
    assert check_momentum_step(solutions.momentum_step, verbose=False, seed=seed).passed
    assert check_adam_step(solutions.adam_step, verbose=False, seed=seed).passed


# --------------------------------------------------------------------------- Exercise 4.3
def sgdr_by_cycle_index(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    """Equivalent rewrite: the cycle index in closed form (geometric series) instead of a loop."""
    if T_mult == 1:
        t, T_i = step % T_0, T_0
    else:
        i = int(math.floor(math.log(step * (T_mult - 1) / T_0 + 1, T_mult) + 1e-12))
        while T_0 * (T_mult ** (i + 1) - 1) // (T_mult - 1) <= step:  # guard the rounding
            i += 1
        while i > 0 and T_0 * (T_mult ** i - 1) // (T_mult - 1) > step:
            i -= 1
        t, T_i = step - T_0 * (T_mult ** i - 1) // (T_mult - 1), T_0 * T_mult ** i
    return eta_min + (base_lr - eta_min) * 0.5 * (1 + math.cos(math.pi * t / T_i))


def sgdr_no_growth(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return solutions.sgdr_lr(step, base_lr, T_0, 1, eta_min)


def sgdr_no_restart(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    t = min(step, T_0)
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / T_0)) / 2


def sgdr_to_zero(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return solutions.sgdr_lr(step, base_lr, T_0, T_mult, 0.0)


def sgdr_short_cycle(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    T_i, t = T_0, step
    while t >= T_i:
        t -= T_i
        T_i *= T_mult
    return eta_min + (base_lr - eta_min) * (1 + math.cos(math.pi * t / max(T_i - 1, 1))) / 2


def sgdr_rising(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    return base_lr + eta_min - solutions.sgdr_lr(step, base_lr, T_0, T_mult, eta_min)


def sgdr_scheduler(step, base_lr, T_0, T_mult=1, eta_min=0.0):
    """Runs torch's scheduler: right values, but the grader flags torch.optim.lr_scheduler."""
    return sgdr_lrs(base_lr, T_0, T_mult, eta_min, step + 1)[-1]


def test_sgdr_reference_restarts_where_the_chapter_says():
    lrs = sgdr_lrs(1.0, 10, 2, 0.0, 100)
    rises = [s for s in range(1, 100) if lrs[s] > lrs[s - 1] + 1e-12]
    assert rises == [10, 30, 70]  # cycles of 10, 20, 40 steps (the chapter's Figure 4.4)
    assert lrs[0] == 1.0 and lrs[5] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", SEEDS)
def test_sgdr_solution_and_rewrite_pass(seed):
    for fn in (solutions.sgdr_lr, sgdr_by_cycle_index):
        result = check_sgdr(fn, verbose=False, seed=seed)
        assert result.passed, (fn.__name__, result.message)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, hint", [
    (sgdr_no_growth, "periods do not grow"),
    (sgdr_no_restart, "no restart"),
    (sgdr_to_zero, "down to eta_min"),
    (sgdr_short_cycle, "T_cur / (T_i - 1)"),
    (sgdr_rising, "rises within a cycle"),
])
def test_sgdr_rejects(wrong, hint, seed):
    result = check_sgdr(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert hint in result.message, result.message


def test_sgdr_through_the_scheduler_is_flagged_by_the_grader():
    from sslbook.teach.grading import grade_exercise

    row = grade_exercise("4.3", {"sgdr_lr": sgdr_scheduler}, seed=5)
    assert not row["passed"] and "lr_scheduler" in row["flagged"], row


# --------------------------------------------------------------------------- all
@pytest.mark.parametrize("check", [check_momentum_step, check_adam_step, check_sgdr])
def test_unfinished_stub_is_reported_not_raised(check, capsys):
    result = check(not_attempted)
    assert not result.passed and "not attempted" in result.message
    assert "not attempted" in capsys.readouterr().out
    assert result.to_dict()["passed"] is False


@pytest.mark.parametrize("check", [check_momentum_step, check_adam_step])
def test_a_crashing_answer_is_reported(check):
    result = check(lambda param, grad, state, hp: param + torch.ones(7), verbose=False)
    assert not result.passed and "raised" in result.message
