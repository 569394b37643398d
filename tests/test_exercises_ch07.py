"""Chapter 7 checkers: the solution and an equivalent rewrite pass, a bank of plausible wrong
answers (mutants) is rejected with a hint naming the mistake, hidden seeds change the inputs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from solutions_loader import load_solutions, not_attempted

from sslbook.exercises._reference import effective_rank, random_masking, uniformity
from sslbook.exercises.ch07 import check_effective_rank, check_random_masking, check_uniformity

solutions = load_solutions("ch07")
SEEDS = (None, 1, 12345, 2**31 - 1)


# --------------------------------------------------------------------------- references
def test_uniformity_reference_on_known_configurations():
    # two antipodal points: distance^2 = 4, so log exp(-2 * 4) = -8
    z = torch.tensor([[1.0, 0.0], [-3.0, 0.0]])
    assert uniformity(z, t=2.0).item() == pytest.approx(-8.0)
    # collapse: every pair at distance 0, the largest (worst) value, log 1 = 0
    assert uniformity(torch.ones(5, 3)).item() == pytest.approx(0.0, abs=1e-7)


def test_masking_reference_undoes_itself():
    g = torch.Generator().manual_seed(0)
    x, noise = torch.randn(2, 10, 3, generator=g), torch.rand(2, 10, generator=g)
    kept, mask, ids_restore = random_masking(x, 0.6, noise)
    assert kept.shape == (2, 4, 3) and mask.sum(1).tolist() == [6, 6]
    filler = torch.zeros(2, 6, 3)  # MAE's decoder appends mask tokens, then unshuffles
    full = torch.gather(torch.cat([kept, filler], 1), 1, ids_restore[..., None].expand(-1, -1, 3))
    torch.testing.assert_close(full, x * (1 - mask)[..., None])


def test_effective_rank_reference_on_known_spectra():
    assert effective_rank(torch.eye(6)).item() == pytest.approx(6.0, rel=1e-5)
    rank_one = torch.randn(20, 1) @ torch.randn(1, 5)
    assert effective_rank(rank_one).item() == pytest.approx(1.0, abs=1e-4)
    spectrum = torch.diag(torch.tensor([3.0, 1.0]))  # p = (0.75, 0.25)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert effective_rank(spectrum).item() == pytest.approx(math.exp(h), rel=1e-5)


# --------------------------------------------------------------------------- Exercise 7.1
def uniformity_full_matrix(z, t=2.0):
    """Equivalent rewrite: the N x N matrix with its diagonal dropped (the mean over i != j
    equals the mean over i < j) and logsumexp for the log of the mean."""
    z = z / z.norm(dim=1, keepdim=True)
    sq = 2 - 2 * z @ z.T
    off = ~torch.eye(len(z), dtype=torch.bool)
    values = -t * sq[off]
    return torch.logsumexp(values, 0) - math.log(len(values))


def uniformity_unnormalised(z, t=2.0):
    return torch.pdist(z).pow(2).mul(-t).exp().mean().log()


def uniformity_with_diagonal(z, t=2.0):
    z = F.normalize(z, dim=1)
    return torch.cdist(z, z).pow(2).mul(-t).exp().mean().log()


def uniformity_unsquared(z, t=2.0):
    return torch.pdist(F.normalize(z, dim=1)).mul(-t).exp().mean().log()


def uniformity_no_log(z, t=2.0):
    return torch.pdist(F.normalize(z, dim=1)).pow(2).mul(-t).exp().mean()


def uniformity_log_inside(z, t=2.0):
    return torch.pdist(F.normalize(z, dim=1)).pow(2).mul(-t).mean()


@pytest.mark.parametrize("seed", SEEDS)
def test_uniformity_accepts_solution_and_rewrite(seed):
    assert check_uniformity(solutions.my_uniformity, verbose=False, seed=seed).passed
    assert check_uniformity(uniformity_full_matrix, verbose=False, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(uniformity_unnormalised, "normalised"),
                                          (uniformity_with_diagonal, "with itself"),
                                          (uniformity_unsquared, "not squared"),
                                          (uniformity_no_log, "log is missing"),
                                          (uniformity_log_inside, "inside the mean")])
def test_uniformity_rejects_mutants_with_a_hint(wrong, words, seed):
    result = check_uniformity(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


# --------------------------------------------------------------------------- Exercise 7.2
def masking_by_indexing(x, mask_ratio, noise):
    """Equivalent rewrite: fancy indexing and scatter instead of gather."""
    n, length, _ = x.shape
    keep = int(length * (1 - mask_ratio))
    order = noise.argsort(dim=1)
    rows = torch.arange(n)[:, None]
    mask = torch.ones(n, length)
    mask[rows, order[:, :keep]] = 0
    restore = torch.empty_like(order)
    restore[rows, order] = torch.arange(length).expand(n, -1)
    return x[rows, order[:, :keep]], mask, restore


def masking_largest(x, mask_ratio, noise):
    return solutions.my_random_masking(x, mask_ratio, -noise)


def masking_inverted(x, mask_ratio, noise):
    kept, mask, restore = solutions.my_random_masking(x, mask_ratio, noise)
    return kept, 1 - mask, restore


def masking_shuffled_mask(x, mask_ratio, noise):
    kept, mask, restore = solutions.my_random_masking(x, mask_ratio, noise)
    shuffled = torch.ones_like(mask)
    shuffled[:, :kept.shape[1]] = 0
    return kept, shuffled, restore


def masking_restore_is_shuffle(x, mask_ratio, noise):
    kept, mask, _ = solutions.my_random_masking(x, mask_ratio, noise)
    return kept, mask, noise.argsort(dim=1)


def masking_rounded(x, mask_ratio, noise):
    n, length, d = x.shape
    keep = round(length * (1 - mask_ratio))
    ids = noise.argsort(dim=1)[:, :keep]
    return torch.gather(x, 1, ids[..., None].expand(-1, -1, d)), None, None


def masking_original_order(x, mask_ratio, noise):
    kept, mask, restore = solutions.my_random_masking(x, mask_ratio, noise)
    ids = noise.argsort(dim=1)[:, :kept.shape[1]].sort(dim=1).values
    return torch.gather(x, 1, ids[..., None].expand(-1, -1, x.shape[2])), mask, restore


def masking_own_noise(x, mask_ratio, noise):
    return solutions.my_random_masking(x, mask_ratio, torch.rand_like(noise))


@pytest.mark.parametrize("seed", SEEDS)
def test_masking_accepts_solution_and_rewrite(seed):
    assert check_random_masking(solutions.my_random_masking, verbose=False, seed=seed).passed
    assert check_random_masking(masking_by_indexing, verbose=False, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(masking_largest, "largest"),
                                          (masking_inverted, "inverted"),
                                          (masking_shuffled_mask, "shuffled order"),
                                          (masking_restore_is_shuffle, "inverse permutation"),
                                          (masking_original_order, "original order"),
                                          (masking_own_noise, "noise you are given")])
def test_masking_rejects_mutants_with_a_hint(wrong, words, seed):
    result = check_random_masking(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


def test_masking_names_the_rounding():
    def rounded(x, mask_ratio, noise):
        kept = masking_rounded(x, mask_ratio, noise)[0]
        return kept, torch.zeros(noise.shape), torch.zeros(noise.shape)

    for seed in SEEDS:
        result = check_random_masking(rounded, verbose=False, seed=seed)
        assert not result.passed and "rounded down" in result.message, result.message


# --------------------------------------------------------------------------- Exercise 7.3
def rank_from_covariance(z):
    """Equivalent rewrite: singular values as square roots of the eigenvalues of Z^T Z."""
    eig = torch.linalg.eigvalsh(z.T @ z).clamp_min(0).sqrt()
    if len(z) < z.shape[1]:
        eig = eig.sort(descending=True).values[:len(z)]
    p = eig / eig.sum() + 1e-7
    return (-(p * p.log()).sum()).exp()


def rank_squared(z):
    s = torch.linalg.svdvals(z) ** 2
    p = s / s.sum() + 1e-7
    return torch.exp(-(p * p.log()).sum())


def rank_entropy(z):
    s = torch.linalg.svdvals(z)
    p = s / s.sum() + 1e-7
    return -(p * p.log()).sum()


def rank_centred(z):
    return solutions.my_effective_rank(z - z.mean(0))


def rank_count(z):
    return torch.linalg.matrix_rank(z).double()


@pytest.mark.parametrize("seed", SEEDS)
def test_effective_rank_accepts_solution_and_rewrite(seed):
    assert check_effective_rank(solutions.my_effective_rank, verbose=False, seed=seed).passed
    assert check_effective_rank(rank_from_covariance, verbose=False, seed=seed).passed


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(rank_squared, "squared singular values"),
                                          (rank_entropy, "entropy"),
                                          (rank_centred, "centred"),
                                          (rank_count, "threshold")])
def test_effective_rank_rejects_mutants_with_a_hint(wrong, words, seed):
    result = check_effective_rank(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


# --------------------------------------------------------------------------- all checkers
def test_references_are_not_in_the_student_facing_module():
    import sslbook.exercises.ch07 as ch07

    for name in ("uniformity", "random_masking", "effective_rank"):
        assert not hasattr(ch07, name), name


@pytest.mark.parametrize("checker", [check_uniformity, check_random_masking,
                                     check_effective_rank])
def test_unfinished_stub_is_reported_not_raised(checker, capsys):
    result = checker(not_attempted)
    assert not result.passed and "not attempted" in result.message
    assert "FAIL" in capsys.readouterr().out
    crashing = checker(lambda *args: 1 / 0, verbose=False)
    assert not crashing.passed and "ZeroDivisionError" in crashing.message
