"""Checkers for Chapter 7 (self-supervised learning): three tools the chapter names but does not
write out. The uniformity of embeddings on the hypersphere (Wang and Isola, ICML 2020,
arXiv:2005.10242), MAE's random masking of patch tokens (He et al., CVPR 2022, arXiv:2111.06377)
and the effective rank of a batch of embeddings, a label-free monitor of dimensional collapse
(RankMe, Garrido et al., ICML 2023, arXiv:2210.02885).

The references live in the private :mod:`sslbook.exercises._reference`. Each checker feeds inputs
on which the classic mistakes give different answers, names the mistake when it recognises it,
returns a :class:`~sslbook.exercises.CheckResult` and never raises. Every checker takes a
``seed``: the grader's hidden checks draw fresh inputs from it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.exercises import CheckResult, close, run_check
from sslbook.exercises._reference.ch07 import effective_rank as _effective_rank
from sslbook.exercises._reference.ch07 import random_masking as _random_masking
from sslbook.exercises._reference.ch07 import uniformity as _uniformity

__all__ = ["check_effective_rank", "check_random_masking", "check_uniformity"]


def _scalar(got) -> tuple[bool, str | torch.Tensor]:
    if isinstance(got, (float, int)):
        got = torch.tensor(float(got))
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        return False, (f"return a scalar (a 0-d tensor or a float), got "
                       f"{type(got).__name__}{tuple(getattr(got, 'shape', ()))}")
    return True, got.detach().reshape(()).double()


# --------------------------------------------------------------------------- Exercise 7.1
def _uniformity_variants(z: torch.Tensor, t: float) -> dict[str, torch.Tensor]:
    """Plausible wrong answers of Exercise 7.1, to name a student's mistake."""
    unit = F.normalize(z, dim=1)
    sq = torch.cdist(unit, unit).pow(2)  # N x N
    off = ~torch.eye(len(z), dtype=torch.bool)
    raw = torch.pdist(z).pow(2)
    return {
        "the rows are not L2-normalised: uniformity is measured on the unit hypersphere":
            raw.mul(-t).exp().mean().log(),
        "each embedding is paired with itself too (distance 0, exp(0) = 1 in the mean): use "
        "the pairs i != j only": sq.mul(-t).exp().mean().log(),
        "the distance is not squared: the kernel is exp(-t ||z_i - z_j||^2)":
            torch.pdist(unit).mul(-t).exp().mean().log(),
        "the log is missing: the loss is the log of the mean of exp(-t d^2)":
            torch.pdist(unit).pow(2).mul(-t).exp().mean(),
        "the log is inside the mean (that is just -t times the mean squared distance): take "
        "the log of the mean": (-t * sq[off]).mean(),
        "t is ignored: the kernel is exp(-t ||z_i - z_j||^2)":
            torch.pdist(unit).pow(2).neg().exp().mean().log(),
    }


def check_uniformity(fn: Callable, verbose: bool = True, seed: int | None = None) -> CheckResult:
    """Check ``fn(z, t) -> scalar``: Wang and Isola's uniformity loss of N x D embeddings,
    ``log mean_{i != j} exp(-t ||z_i - z_j||^2)`` on the L2-normalised rows.

    Rows have very different norms and two values of t are tried (2, the paper's default, and
    another), so a missing normalisation, the diagonal counted, an unsquared distance, a missing
    log, the log inside the mean and an ignored t give different values. With a ``seed`` (the
    grader's hidden checks) N, D and the second t are drawn from it.
    """
    cases = [(12, 5, 2.0), (20, 3, 0.7)]
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        cases = [(int(torch.randint(6, 30, (1,), generator=g0)),
                  int(torch.randint(2, 9, (1,), generator=g0)), t)
                 for t in (2.0, round(0.3 + 3 * float(torch.rand(1, generator=g0)), 3))]

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(71 if seed is None else seed + 1)
        for n, d, t in cases:
            z = torch.randn(n, d, generator=g, dtype=torch.float64)  # N x D
            z = z * torch.exp(torch.randn(n, 1, generator=g, dtype=torch.float64))  # norms vary
            ok, got = _scalar(fn(z.clone(), t))
            if not ok:
                return False, got
            expected = _uniformity(z, t)
            good, hint = close(got, expected, atol=1e-6, rtol=1e-5)
            if good:
                continue
            for mistake, value in _uniformity_variants(z, t).items():
                if close(got, value, atol=1e-6, rtol=1e-5)[0]:
                    return False, f"(N={n}, t={t}) {mistake}"
            return False, f"(N={n}, t={t}) {hint}"
        return True, "log of the mean of exp(-t d^2) over the pairs i != j on the unit sphere"

    return run_check("Exercise 7.1 - uniformity on the hypersphere", test, verbose)


# --------------------------------------------------------------------------- Exercise 7.2
def _as_triple(out):
    if not (isinstance(out, (tuple, list)) and len(out) == 3):
        return None
    if not all(isinstance(o, torch.Tensor) for o in out):
        return None
    return tuple(o.detach() for o in out)


def check_random_masking(fn: Callable, verbose: bool = True,
                         seed: int | None = None) -> CheckResult:
    """Check ``fn(x, mask_ratio, noise) -> (x_masked, mask, ids_restore)``: MAE's random masking
    with the noise given (keep the ``int(L * (1 - mask_ratio))`` patches of smallest noise, in
    increasing order of noise; mask 0 = kept, 1 = removed, in the original order; ids_restore the
    inverse of the shuffle).

    L and the ratio are chosen so that rounding up and rounding down keep different numbers of
    patches. Keeping the largest noise, an inverted mask, a mask left in shuffled order,
    ids_restore equal to the shuffle itself, the kept patches in their original order, rounding
    and ignoring the given noise are recognised. With a ``seed`` (the grader's hidden checks) the
    sizes and the noise are drawn from it.
    """
    cases = [(3, 14, 4, 0.75), (2, 10, 3, 0.45)]
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        cases = []
        for ratio in (0.75, round(0.3 + 0.6 * float(torch.rand(1, generator=g0)), 2)):
            length = int(torch.randint(6, 40, (1,), generator=g0))
            while round(length * (1 - ratio)) == int(length * (1 - ratio)):  # must differ
                length += 1
            cases.append((int(torch.randint(2, 5, (1,), generator=g0)), length,
                          int(torch.randint(2, 6, (1,), generator=g0)), ratio))

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(72 if seed is None else seed + 1)
        for n, length, d, ratio in cases:
            x = torch.randn(n, length, d, generator=g)  # N x L x D patch tokens
            noise = torch.rand(n, length, generator=g)  # N x L
            out = _as_triple(fn(x.clone(), ratio, noise.clone()))
            if out is None:
                return False, "return three tensors (x_masked, mask, ids_restore)"
            got_x, got_mask, got_restore = out
            ref_x, ref_mask, ref_restore = _random_masking(x, ratio, noise)
            keep = ref_x.shape[1]
            where = f"(N={n}, L={length}, mask_ratio={ratio})"
            if got_x.shape != ref_x.shape:
                if got_x.ndim == 3 and got_x.shape[1] == round(length * (1 - ratio)):
                    return False, (f"{where} you keep {got_x.shape[1]} patches; MAE keeps "
                                   f"len_keep = int(L * (1 - mask_ratio)) = {keep}, rounded "
                                   "down")
                return False, (f"{where} x_masked has shape {tuple(got_x.shape)}, expected "
                               f"{tuple(ref_x.shape)} (N x len_keep x D)")
            if got_mask.shape != ref_mask.shape or got_restore.shape != ref_restore.shape:
                return False, (f"{where} mask and ids_restore must both be N x L = "
                               f"{tuple(ref_mask.shape)}")
            x_ok = torch.equal(got_x, ref_x)
            if not x_ok:
                largest = _random_masking(x, ratio, -noise)[0]
                if torch.equal(got_x, largest):
                    return False, (f"{where} you kept the patches of *largest* noise: sort the "
                                   "noise in increasing order, the first len_keep are kept")
                kept = torch.argsort(noise, dim=1)[:, :keep].sort(dim=1).values
                in_order = torch.gather(x, 1, kept.unsqueeze(-1).expand(-1, -1, d))
                if torch.equal(got_x, in_order):
                    return False, (f"{where} the right patches, in their original order: keep "
                                   "them in increasing order of noise (ids_shuffle[:, :len_keep]"
                                   "), as MAE's code does")
                return False, (f"{where} x_masked holds other patches than the len_keep of "
                               "smallest noise (use the noise you are given, not a new draw)")
            got_mask = got_mask.double()
            if not torch.equal(got_mask, ref_mask.double()):
                if torch.equal(got_mask, 1 - ref_mask.double()):
                    return False, (f"{where} the mask is inverted: MAE's mask is 0 for kept "
                                   "patches and 1 for removed ones")
                shuffled = torch.ones(n, length, dtype=torch.float64)
                shuffled[:, :keep] = 0
                if torch.equal(got_mask, shuffled):
                    return False, (f"{where} the mask is in shuffled order: put it back in the "
                                   "original patch order (gather with ids_restore)")
                return False, f"{where} the mask marks other patches than the removed ones"
            if not torch.equal(got_restore.long(), ref_restore):
                if torch.equal(got_restore.long(), torch.argsort(noise, dim=1)):
                    return False, (f"{where} ids_restore is the shuffle itself: it must undo "
                                   "it, the inverse permutation (argsort of ids_shuffle)")
                return False, (f"{where} ids_restore does not put the tokens back in their "
                               "original order")
        return True, "kept = smallest noise in order, mask 0/1 in the original order, inverse ids"

    return run_check("Exercise 7.2 - MAE's random masking", test, verbose)


# --------------------------------------------------------------------------- Exercise 7.3
def _rank_variants(z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plausible wrong answers of Exercise 7.3, to name a student's mistake."""
    sigma = torch.linalg.svdvals(z)
    sq = sigma**2 / (sigma**2).sum() + 1e-7
    p = sigma / sigma.sum() + 1e-7
    return {
        "you used the squared singular values (the eigenvalues of Z^T Z or of the covariance): "
        "RankMe uses the singular values of Z themselves": torch.exp(-(sq * sq.log()).sum()),
        "this is the entropy: RankMe is exp of the entropy": -(p * p.log()).sum(),
        "the embeddings were centred: RankMe takes them as they are":
            _effective_rank(z - z.mean(0)),
        "the singular values were not normalised to sum 1 (p_k = sigma_k / sum of sigma)":
            torch.exp(-(sigma * sigma.log()).sum()),
        "you counted the singular values above a threshold (a matrix rank): RankMe is the "
        "exponential of the entropy of their distribution": (sigma > 1e-6 * sigma[0]).sum(),
    }


def check_effective_rank(fn: Callable, verbose: bool = True,
                         seed: int | None = None) -> CheckResult:
    """Check ``fn(z) -> scalar``: RankMe of N x D embeddings, ``exp(-sum p_k log p_k)`` with
    ``p_k = sigma_k / sum(sigma) + 1e-7`` from the singular values sigma of z (not centred).

    Three batches: a decaying spectrum with an offset (so centring matters), a rank-one batch
    (every row the same direction, RankMe close to 1) and an isotropic one (close to D). Squared
    singular values, the entropy without exp, centring, unnormalised singular values and a plain
    rank count are recognised. With a ``seed`` (the grader's hidden checks) N, D and the spectrum
    are drawn from it.
    """
    n, d, decay = 64, 8, 0.6
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        n, d = int(torch.randint(30, 100, (1,), generator=g0)), int(torch.randint(4, 16, (1,),
                                                                                  generator=g0))
        decay = round(0.3 + 0.5 * float(torch.rand(1, generator=g0)), 3)

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(73 if seed is None else seed + 1)
        spectrum = decay ** torch.arange(d, dtype=torch.float64)  # D, decaying scales
        batches = {
            "decaying spectrum": torch.randn(n, d, generator=g, dtype=torch.float64) * spectrum
            + 0.5,
            "one direction (collapsed)": torch.randn(n, 1, generator=g, dtype=torch.float64)
            .abs().add(0.1) * torch.randn(1, d, generator=g, dtype=torch.float64),
            "isotropic": torch.randn(n, d, generator=g, dtype=torch.float64),
        }
        for name, z in batches.items():
            ok, got = _scalar(fn(z.clone()))
            if not ok:
                return False, got
            expected = _effective_rank(z)
            good, hint = close(got, expected, atol=1e-5, rtol=1e-4)
            if good:
                continue
            for mistake, value in _rank_variants(z).items():
                if close(got, value, atol=1e-5, rtol=1e-4)[0]:
                    return False, f"({name} batch, N={n}, D={d}) {mistake}"
            return False, f"({name} batch, N={n}, D={d}) {hint}"
        return True, "exp of the entropy of the normalised singular values, as RankMe"

    return run_check("Exercise 7.3 - the effective rank (RankMe)", test, verbose)
