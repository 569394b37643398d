"""Chapter 8 checkers accept the solutions and reject plausible wrong answers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F

from sslbook.exercises._reference import nt_xent_from_mask, positive_mask
from sslbook.exercises.ch08 import check_nt_xent, check_positive_mask
from sslbook.losses import info_nce

SOLUTIONS = Path(__file__).resolve().parents[1] / "chapters" / "solutions" / "ch08.py"


def load_solutions():
    spec = importlib.util.spec_from_file_location("solutions_ch08", SOLUTIONS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_references_agree_with_the_library():
    torch.manual_seed(0)
    z1, z2 = torch.randn(5, 7), torch.randn(5, 7)
    mask = positive_mask(5)
    assert mask.dtype == torch.bool and mask.sum() == 10 and torch.equal(mask, mask.T)
    assert not mask.diagonal().any()
    torch.testing.assert_close(nt_xent_from_mask(torch.cat([z1, z2]), mask, 0.3),
                               info_nce(z1, z2, temperature=0.3))
    order = torch.randperm(10)  # any row order, the mask following the rows
    torch.testing.assert_close(nt_xent_from_mask(torch.cat([z1, z2])[order],
                                                 mask[order][:, order], 0.3),
                               info_nce(z1, z2, temperature=0.3))


def test_solutions_pass():
    solutions = load_solutions()
    assert check_positive_mask(solutions.my_positive_mask, verbose=False).passed
    assert check_nt_xent(solutions.my_nt_xent, verbose=False).passed


def test_unfinished_stub_is_reported_not_raised():
    def stub(*args):
        raise NotImplementedError

    for check in (check_positive_mask, check_nt_xent):
        result = check(stub, verbose=False)
        assert not result.passed and "not attempted" in result.message


def test_positive_mask_rejects_wrong_answers():
    def identity(n):
        return torch.eye(2 * n, dtype=torch.bool)

    def one_direction(n):
        mask = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
        mask[torch.arange(n), torch.arange(n, 2 * n)] = True
        return mask

    def interleaved(n):
        mask = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
        k = torch.arange(n)
        mask[2 * k, 2 * k + 1] = True
        mask[2 * k + 1, 2 * k] = True
        return mask

    def all_others(n):
        return ~torch.eye(2 * n, dtype=torch.bool)

    expected = {identity: "own positive", one_direction: "one direction",
                interleaved: "interleaved", all_others: "negatives"}
    for wrong, words in expected.items():
        result = check_positive_mask(wrong, verbose=False)
        assert not result.passed, wrong.__name__
        assert words in result.message, (wrong.__name__, result.message)


def test_nt_xent_rejects_wrong_answers():
    def no_self_mask(z, pos_mask, t):
        z = F.normalize(z, dim=1)
        return F.cross_entropy(z @ z.T / t, pos_mask.float().argmax(1))

    def one_direction(z, pos_mask, t):
        z = F.normalize(z, dim=1)
        logits = (z @ z.T / t).masked_fill(torch.eye(len(z), dtype=torch.bool), float("-inf"))
        labels = pos_mask.float().argmax(1)
        first = labels > torch.arange(len(z))
        return F.cross_entropy(logits[first], labels[first])

    def no_normalisation(z, pos_mask, t):
        logits = (z @ z.T / t).masked_fill(torch.eye(len(z), dtype=torch.bool), float("-inf"))
        return F.cross_entropy(logits, pos_mask.float().argmax(1))

    def fixed_positive_index(z, pos_mask, t):
        n = len(z) // 2
        z = F.normalize(z, dim=1)
        logits = (z @ z.T / t).masked_fill(torch.eye(len(z), dtype=torch.bool), float("-inf"))
        return F.cross_entropy(logits, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))

    expected = {no_self_mask: "self-similarity", one_direction: "one anchor",
                no_normalisation: "normalised", fixed_positive_index: "hard-coded"}
    for wrong, words in expected.items():
        result = check_nt_xent(wrong, verbose=False)
        assert not result.passed, wrong.__name__
        assert words in result.message, (wrong.__name__, result.message)


def test_references_are_not_in_the_student_facing_module():
    import sslbook.exercises.ch08 as ch08

    for name in ("positive_mask", "nt_xent_from_mask"):
        assert not hasattr(ch08, name), name


def test_hidden_seeds_accept_the_solutions_and_reject_a_mutant():
    solutions = load_solutions()
    for seed in (1, 12345, 2**31 - 1):
        assert check_positive_mask(solutions.my_positive_mask, verbose=False, seed=seed).passed
        assert check_nt_xent(solutions.my_nt_xent, verbose=False, seed=seed).passed

    def no_temperature(z, pos_mask, t):
        return solutions.my_nt_xent(z, pos_mask, 1.0)

    assert not check_nt_xent(no_temperature, verbose=False, seed=7).passed
