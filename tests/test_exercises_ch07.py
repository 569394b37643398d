"""Chapter 7 checkers accept the solutions and reject plausible wrong answers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from solutions_loader import load_solutions, not_attempted

from sslbook.exercises.ch07 import (
    check_collapse_std,
    check_info_nce,
    check_rotation_batch,
    collapse_std,
    rotation_batch,
)

solutions = load_solutions("ch07")



# --------------------------------------------------------------------------- Exercise 7.1
def _targets(n):
    return torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])


def nce_no_self_mask(z1, z2, temperature=0.5):
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    return F.cross_entropy(z @ z.T / temperature, _targets(len(z1)))


def nce_no_normalisation(z1, z2, temperature=0.5):
    z = torch.cat([z1, z2])
    logits = (z @ z.T / temperature).masked_fill(torch.eye(len(z), dtype=torch.bool), -math.inf)
    return F.cross_entropy(logits, _targets(len(z1)))


def nce_one_direction(z1, z2, temperature=0.5):
    """Anchors from z1 only, each against all 2N - 1 other embeddings."""
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    logits = (z @ z.T / temperature).masked_fill(torch.eye(2 * n, dtype=torch.bool), -math.inf)
    return F.cross_entropy(logits[:n], torch.arange(n, 2 * n))


def nce_cross_view_only(z1, z2, temperature=0.5):
    """The N x N (CLIP-style) loss: negatives from the other view only."""
    logits = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / temperature
    labels = torch.arange(len(z1))
    return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


def nce_no_temperature(z1, z2, temperature=0.5):
    return solutions.nt_xent(z1, z2, 1.0)


def nce_sum_not_mean(z1, z2, temperature=0.5):
    return solutions.nt_xent(z1, z2, temperature) * 2 * len(z1)


def test_info_nce_checker_accepts_the_solution():
    result = check_info_nce(solutions.nt_xent, verbose=False)
    assert result.passed, result.message


@pytest.mark.parametrize("wrong", [nce_no_self_mask, nce_no_normalisation, nce_one_direction,
                                   nce_cross_view_only, nce_no_temperature, nce_sum_not_mean])
def test_info_nce_checker_rejects_wrong_answers(wrong):
    assert not check_info_nce(wrong, verbose=False).passed


@pytest.mark.parametrize("wrong, words", [(nce_no_self_mask, "not masked"),
                                          (nce_no_normalisation, "not L2-normalised"),
                                          (nce_one_direction, "first view"),
                                          (nce_cross_view_only, "CLIP"),
                                          (nce_no_temperature, "temperature")])
def test_info_nce_checker_names_the_mistake(wrong, words):
    assert words in check_info_nce(wrong, verbose=False).message


# --------------------------------------------------------------------------- Exercise 7.2
def rotation_transposed(images):
    """A transpose for 90 degrees: a mirror image, not a rotation."""
    views = [images, images.transpose(-2, -1), torch.rot90(images, 2, (-2, -1)),
             torch.rot90(images, 2, (-2, -1)).transpose(-2, -1)]
    return torch.cat(views), torch.arange(4).repeat_interleave(len(images))


def rotation_targets_out_of_step(images):
    views = torch.cat([torch.rot90(images, k, (-2, -1)) for k in range(4)])
    return views, torch.arange(4).repeat(len(images))  # 0,1,2,3,0,1,... vs grouped views


def rotation_clockwise(images):
    views = torch.cat([torch.rot90(images, -k, (-2, -1)) for k in range(4)])
    return views, torch.arange(4).repeat_interleave(len(images))


def rotation_only_three(images):
    views = torch.cat([torch.rot90(images, k, (-2, -1)) for k in range(3)])
    return views, torch.arange(3).repeat_interleave(len(images))


def rotation_interleaved(images):
    """Another valid order: image by image, all four rotations of each."""
    views = torch.stack([torch.rot90(images, k, (-2, -1)) for k in range(4)], dim=1)
    return views.flatten(0, 1), torch.arange(4).repeat(len(images))


def test_rotation_checker_accepts_the_solution_and_other_orders():
    for fn in (solutions.make_rotation_batch, rotation_batch, rotation_interleaved):
        result = check_rotation_batch(fn, verbose=False)
        assert result.passed, result.message


@pytest.mark.parametrize("wrong, words", [(rotation_transposed, "mirror"),
                                          (rotation_targets_out_of_step, "out of step"),
                                          (rotation_clockwise, "clockwise"),
                                          (rotation_only_three, "4B")])
def test_rotation_checker_rejects_wrong_answers(wrong, words):
    result = check_rotation_batch(wrong, verbose=False)
    assert not result.passed and words in result.message, result.message


def test_rotation_reference_undoes_to_the_original():
    images = torch.rand(2, 1, 5, 5)
    views, targets = rotation_batch(images)
    for view, k, original in zip(views, targets, images.repeat(4, 1, 1, 1), strict=True):
        assert torch.equal(torch.rot90(view, -int(k), (-2, -1)), original)


# --------------------------------------------------------------------------- Exercise 7.3
def std_not_normalised(z):
    return z.std(dim=0).mean()


def std_wrong_axis(z):
    return F.normalize(z, dim=1).std(dim=1).mean()


def std_columns_normalised(z):
    return F.normalize(z, dim=0).std(dim=0).mean()


def std_biased(z):
    return F.normalize(z, dim=1).std(dim=0, correction=0).mean()


def test_collapse_checker_accepts_the_solution_and_the_biased_std():
    for fn in (solutions.feature_std, collapse_std, std_biased):
        result = check_collapse_std(fn, verbose=False)
        assert result.passed, result.message


@pytest.mark.parametrize("wrong, words", [(std_not_normalised, "normalise the rows"),
                                          (std_wrong_axis, "across the dimensions"),
                                          (std_columns_normalised, "columns")])
def test_collapse_checker_rejects_wrong_answers(wrong, words):
    result = check_collapse_std(wrong, verbose=False)
    assert not result.passed and words in result.message, result.message


def test_collapse_std_values():
    torch.manual_seed(0)
    d = 64
    assert collapse_std(torch.ones(100, d) * 3).item() == 0.0
    isotropic = collapse_std(torch.randn(20_000, d)).item()
    assert abs(isotropic - 1 / math.sqrt(d)) < 0.005


# --------------------------------------------------------------------------- all
@pytest.mark.parametrize("check", [check_info_nce, check_rotation_batch, check_collapse_std])
def test_unfinished_stub_is_reported_not_raised(check, capsys):
    result = check(not_attempted)
    assert not result.passed and "not attempted" in result.message
    assert "not attempted" in capsys.readouterr().out


@pytest.mark.parametrize("check", [check_info_nce, check_rotation_batch, check_collapse_std])
def test_a_crashing_answer_is_reported(check):
    result = check(lambda *args: torch.ones(3) @ torch.ones(4), verbose=False)
    assert not result.passed and "raised" in result.message
