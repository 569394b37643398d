"""Checkers for Chapter 8 (SimCLR): the positive-pair mask of a SimCLR batch and the NT-Xent loss
written from that mask.

A SimCLR batch of N images gives 2N embeddings; the loss of Eq. 1 (Chen et al., ICML 2020,
arXiv:2002.05709) treats each of them as an anchor whose positive is the other view of the same
image and whose 2N - 2 negatives are the remaining embeddings. The references (in the private
:mod:`sslbook.exercises._reference`) agree with :func:`sslbook.losses.info_nce`; the checkers feed
random inputs chosen so that the classic mistakes give different answers, name the mistake when they
recognise it, return a :class:`~sslbook.exercises.CheckResult` and never raise.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.exercises import CheckResult, close, run_check
from sslbook.exercises._reference import nt_xent_from_mask as _nt_xent
from sslbook.exercises._reference import positive_mask as _positive_mask

__all__ = ["check_nt_xent", "check_positive_mask"]


# --------------------------------------------------------------------------- Exercise 8.1
def _mask_hint(got: torch.Tensor, n: int) -> str | None:
    """Name a recognised mistake in a positive mask for n images."""
    eye = torch.eye(2 * n, dtype=torch.bool)
    ref = _positive_mask(n)
    upper = ref & torch.ones(2 * n, 2 * n, dtype=torch.bool).triu()
    inter = torch.zeros(2 * n, 2 * n, dtype=torch.bool)
    k = torch.arange(n)
    inter[2 * k, 2 * k + 1] = True
    inter[2 * k + 1, 2 * k] = True
    if torch.equal(got, eye):
        return ("you marked each embedding as its own positive (the diagonal); the positive of "
                "row i is the *other* view of the same image, row i + N (or i - N)")
    if torch.equal(got, upper) or torch.equal(got, upper.T):
        return ("only one direction is marked: row i < N has its positive at i + N, and row "
                "i >= N has its positive at i - N; the mask is symmetric")
    if torch.equal(got, inter) and n > 1:
        return ("this is the interleaved layout (views 2k and 2k + 1); the embeddings are "
                "cat([z1, z2]), so image k sits at rows k and k + N")
    if torch.equal(got, ~eye):
        return ("you marked every other embedding; those are the 2N - 2 negatives plus the "
                "positive: keep only the partner view")
    return None


def check_positive_mask(fn: Callable, verbose: bool = True,
                        seed: int | None = None) -> CheckResult:
    """Check ``fn(n) -> 2N x 2N`` mask of positive pairs for ``z = cat([z1, z2])``.

    A bool tensor or 0/1 numbers are accepted. Several N are tried (N = 1 too), so the identity
    (self as positive), a one-directional mask, the interleaved layout and "every other
    embedding" are all told apart from the answer. With a ``seed`` (the grader's hidden checks)
    the sizes are drawn at random instead (N = 1 is always tried).
    """
    sizes = (4, 1, 7)
    if seed is not None:
        g = torch.Generator().manual_seed(seed)
        sizes = (int(torch.randint(2, 13, (1,), generator=g)), 1,
                 int(torch.randint(2, 13, (1,), generator=g)))

    def test() -> tuple[bool, str]:
        for n in sizes:
            got = fn(n)
            if not isinstance(got, torch.Tensor):
                return False, f"return a torch.Tensor, got {type(got).__name__}"
            if got.shape != (2 * n, 2 * n):
                return False, (f"for n = {n} the mask must be {2 * n} x {2 * n}, got "
                               f"{tuple(got.shape)}")
            values = got.detach().cpu()
            if not bool(((values == 0) | (values == 1)).all()):
                return False, "the mask must hold booleans (or 0 and 1)"
            values = values.to(torch.bool)
            if torch.equal(values, _positive_mask(n)):
                continue
            hint = _mask_hint(values, n)
            if hint is None:
                row = int(torch.nonzero((values != _positive_mask(n)).any(dim=1))[0])
                hint = (f"row {row} is wrong: it marks columns "
                        f"{torch.nonzero(values[row]).flatten().tolist()}, expected "
                        f"[{(row + n) % (2 * n)}]")
            return False, f"(n = {n}) {hint}"
        return True, "one positive per row, the other view of the same image (i <-> i + N)"

    return run_check("Exercise 8.1 - the positive-pair mask", test, verbose)


# --------------------------------------------------------------------------- Exercise 8.2
def _layouts(n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """Row orders of the 2N embeddings: image k's two views at (k, k + N), interleaved at
    (2k, 2k + 1), or shuffled. ``order[r]`` is the index in cat([z1, z2]) placed at row r."""
    k = torch.arange(n)
    return {"cat([z1, z2])": torch.arange(2 * n),
            "interleaved": torch.stack([k, k + n], dim=1).flatten(),
            "shuffled": torch.randperm(2 * n, generator=g)}


def _nt_xent_variants(z: torch.Tensor, pos_mask: torch.Tensor,
                      t: float) -> dict[str, torch.Tensor]:
    """Plausible wrong answers for ``nt_xent_from_mask``, to name a student's mistake."""
    n2 = len(z)
    unit = F.normalize(z, dim=1)
    eye = torch.eye(n2, dtype=torch.bool)
    labels = pos_mask.float().argmax(dim=1)
    masked = (unit @ unit.T / t).masked_fill(eye, float("-inf"))
    fixed = torch.cat([torch.arange(n2 // 2, n2), torch.arange(0, n2 // 2)])
    first = labels > torch.arange(n2)  # anchors whose positive comes later: one per pair
    return {
        "the self-similarity is not masked: each anchor counts exp(1/T) for itself among the "
        "candidates; set the diagonal of the logits to -inf":
            F.cross_entropy(unit @ unit.T / t, labels),
        "the embeddings are not L2-normalised: NT-Xent uses cosine similarity":
            F.cross_entropy((z @ z.T / t).masked_fill(eye, float("-inf")), labels),
        "only one anchor of each positive pair is used: both views are anchors (l(i, j) and "
        "l(j, i) in Eq. 1), average over all 2N":
            F.cross_entropy(masked[first], labels[first]),
        "the positive's column is hard-coded as i + N (mod 2N); read it from pos_mask, the rows "
        "need not be ordered as cat([z1, z2])": F.cross_entropy(masked, fixed),
        "the temperature is ignored; divide the similarities by T":
            F.cross_entropy((unit @ unit.T).masked_fill(eye, float("-inf")), labels),
    }


def check_nt_xent(fn: Callable, verbose: bool = True,
                  seed: int | None = None) -> CheckResult:
    """Check ``fn(z, pos_mask, temperature) -> scalar``: NT-Xent of 2N embeddings (rows in any
    order) with positives given by a 2N x 2N boolean mask.

    The reference equals :func:`sslbook.losses.info_nce` of the two views. Rows have very
    different norms, partners are close but not equal, and three row orders and two
    temperatures are tried, so that a missing self-mask, a missing normalisation, one anchor
    per pair, a hard-coded positive index and a forgotten temperature give different values.
    With a ``seed`` (the grader's hidden checks) the inputs, sizes and temperatures are drawn from
    it instead of the fixed seed 81.
    """
    cases = [(6, 5, 0.5), (9, 3, 0.1)]
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        cases = [(int(torch.randint(3, 11, (1,), generator=g0)),
                  int(torch.randint(2, 9, (1,), generator=g0)), t) for t in
                 (round(0.3 + 0.5 * float(torch.rand(1, generator=g0)), 3),
                  round(0.05 + 0.15 * float(torch.rand(1, generator=g0)), 3))]

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(81 if seed is None else seed + 1)
        for n, d, t in cases:
            z1 = torch.randn(n, d, generator=g, dtype=torch.float64)  # N x D
            z2 = z1 + 0.7 * torch.randn(n, d, generator=g, dtype=torch.float64)  # N x D
            z = torch.cat([z1, z2]) * torch.exp(torch.randn(2 * n, 1, generator=g,
                                                            dtype=torch.float64))  # 2N x D
            for name, order in _layouts(n, g).items():
                zo = z[order]  # 2N x D, rows reordered
                mask = _positive_mask(n)[order][:, order]  # 2N x 2N, follows the rows
                expected = _nt_xent(zo, mask, t)
                got = fn(zo.clone(), mask.clone(), t)
                if not isinstance(got, torch.Tensor) or got.numel() != 1:
                    return False, (f"return a scalar tensor (the mean loss), got "
                                   f"{type(got).__name__}{tuple(getattr(got, 'shape', ()))}")
                got = got.detach().reshape(()).double()
                ok, hint = close(got, expected, atol=1e-6, rtol=1e-5)
                if ok:
                    continue
                where = f"(N={n}, T={t}, rows {name})"
                for mistake, value in _nt_xent_variants(zo, mask, t).items():
                    if close(got, value, atol=1e-6, rtol=1e-5)[0]:
                        return False, f"{where}: {mistake}"
                return False, f"{where}: {hint}"
        return True, "matches NT-Xent (self-mask, cosine, 2N anchors, positives from the mask, T)"

    return run_check("Exercise 8.2 - NT-Xent from the positive mask", test, verbose)
