"""Checkers for Chapter 7 (Self-supervised learning): the InfoNCE / NT-Xent loss, the batch of
the rotation pretext task, and the collapse monitor of SimSiam.

Each checker runs the student's function on fixed random inputs and compares it with a
reference: :func:`sslbook.losses.info_nce` (SimCLR, arXiv:2002.05709, Eq. 1),
:func:`rotation_batch` (RotNet, arXiv:1803.07728, Sec. 2) and :func:`collapse_std` (SimSiam,
arXiv:2011.10566, Sec. 4.1 and Fig. 2). The inputs are chosen so that the classic mistakes give
different values, and the checkers name the mistake when they recognise it. A checker returns a
:class:`~sslbook.exercises.CheckResult` and never raises.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.exercises import CheckResult, close, run_check
from sslbook.losses import info_nce

__all__ = ["check_collapse_std", "check_info_nce", "check_rotation_batch", "collapse_std",
           "rotation_batch"]


# --------------------------------------------------------------------------- references
def rotation_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotation pretext task (Gidaris et al., arXiv:1803.07728, Sec. 2): every image of the
    B x C x H x W batch rotated by 0, 90, 180 and 270 degrees counter-clockwise
    (``torch.rot90(x, k, dims=(-2, -1))``), as a 4B x C x H x W batch with the 4B int64 targets
    ``k``; views are grouped by rotation (all k = 0 first)."""
    views = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])  # 4B x C x H x W
    targets = torch.arange(4).repeat_interleave(len(images))  # 4B
    return views, targets


def collapse_std(z: torch.Tensor) -> torch.Tensor:
    """SimSiam's collapse monitor (arXiv:2011.10566, Sec. 4.1, Fig. 2 middle): the standard
    deviation over the N samples of the L2-normalised outputs ``z / ||z||``, averaged over the D
    dimensions. 0 for a collapsed (constant) output, about 1 / sqrt(D) for outputs spread
    isotropically."""
    z = F.normalize(z, dim=1)  # N x D, each row of unit length
    return z.std(dim=0).mean()  # std over samples (per dimension), then the mean over dims


# --------------------------------------------------------------------------- Exercise 7.1
def _nt_xent_variants(z1: torch.Tensor, z2: torch.Tensor, t: float) -> dict[str, torch.Tensor]:
    """Plausible wrong NT-Xent implementations, to recognise a student's mistake."""
    n = len(z1)
    labels = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])  # 2N

    def logits_of(z: torch.Tensor) -> torch.Tensor:
        return z @ z.T / t  # 2N x 2N

    raw = torch.cat([z1, z2])  # 2N x D, not normalised
    unit = F.normalize(raw, dim=1)  # 2N x D
    self_mask = torch.eye(2 * n, dtype=torch.bool)
    masked = logits_of(unit).masked_fill(self_mask, float("-inf"))  # 2N x 2N
    cross = F.normalize(z1, dim=1) @ F.normalize(z2, dim=1).T / t  # N x N
    return {
        "the self-similarity is not masked: each anchor counts itself, exp(1/T), among its "
        "negatives; set the diagonal of the 2N x 2N logits to -inf":
            F.cross_entropy(logits_of(unit), labels),
        "the embeddings are not L2-normalised: NT-Xent uses cosine similarity, so divide each "
        "row by its norm (F.normalize(z, dim=1)) before the dot products":
            F.cross_entropy(logits_of(raw).masked_fill(self_mask, float("-inf")), labels),
        "only the N anchors of the first view are used: every one of the 2N embeddings is an "
        "anchor (z1 -> z2 and z2 -> z1), average over all 2N":
            F.cross_entropy(masked[:n], labels[:n]),
        "each anchor of z1 is compared only with the N embeddings of z2 (N - 1 negatives, as in "
        "CLIP); SimCLR's anchors see all 2N - 1 other embeddings, from both views":
            (F.cross_entropy(cross, torch.arange(n)) + F.cross_entropy(cross.T, torch.arange(n)))
            / 2,
        "the temperature is ignored (T = 1); divide the similarities by T": F.cross_entropy(
            (unit @ unit.T).masked_fill(self_mask, float("-inf")), labels),
    }


def check_info_nce(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(z1, z2, temperature) -> scalar`` against :func:`sslbook.losses.info_nce`.

    ``z1[i]`` and ``z2[i]`` (N x D, not normalised) embed two views of image i; the loss is the
    mean over the 2N anchors of -log(exp(s_pos / T) / sum_{k != anchor} exp(s_k / T)) with
    cosine similarities s (SimCLR, arXiv:2002.05709, Eq. 1). The inputs have rows of very
    different norms, partners that are close but not equal, and two temperatures, so that a
    missing mask, a missing normalisation, one direction only, the N x N (CLIP-style) variant
    and a forgotten temperature all give different values.
    """
    cases = [(8, 5, 0.5, 71), (16, 3, 0.1, 72), (5, 7, 1.0, 73)]

    def test() -> tuple[bool, str]:
        for n, d, t, seed in cases:
            g = torch.Generator().manual_seed(seed)
            z1 = torch.randn(n, d, generator=g, dtype=torch.float64)  # N x D
            z2 = z1 + 0.7 * torch.randn(n, d, generator=g, dtype=torch.float64)  # N x D
            z1 = z1 * torch.exp(torch.randn(n, 1, generator=g, dtype=torch.float64))  # norms vary
            expected = info_nce(z1, z2, temperature=t)
            got = fn(z1.clone(), z2.clone(), t)
            if not isinstance(got, torch.Tensor) or got.numel() != 1:
                return False, (f"return a scalar tensor (the mean loss), got "
                               f"{type(got).__name__}{tuple(getattr(got, 'shape', ()))}")
            ok, hint = close(got.detach().reshape(()), expected, atol=1e-6, rtol=1e-5)
            if ok:
                continue
            where = f"(N={n}, D={d}, T={t})"
            for mistake, value in _nt_xent_variants(z1, z2, t).items():
                if close(got.detach().reshape(()), value, atol=1e-6, rtol=1e-5)[0]:
                    return False, f"{where}: {mistake}"
            return False, f"{where}: {hint}"
        return True, "matches sslbook.losses.info_nce (mask, normalisation, 2N anchors, T)"

    return run_check("Exercise 7.1 - InfoNCE / NT-Xent", test, verbose)


# --------------------------------------------------------------------------- Exercise 7.2
def check_rotation_batch(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(images) -> (views, targets)`` for the rotation pretext task.

    ``images`` is B x C x H x W; ``views`` must hold 4B images and ``targets`` 4B int64 values
    in {0, 1, 2, 3}, such that the view with target k is its source image rotated by 90k degrees
    counter-clockwise, ``torch.rot90(x, k, dims=(-2, -1))``, and every (image, k) appears
    exactly once. Any order of the views is accepted. Random images make a transpose (a mirror
    image), a clockwise rotation and targets out of step with the views all visible.
    """

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(74)
        for shape in [(3, 1, 6, 6), (2, 3, 5, 5)]:
            images = torch.rand(*shape, generator=g)
            out = fn(images.clone())
            if not isinstance(out, (tuple, list)) or len(out) != 2:
                return False, "return a pair (views, targets)"
            views, targets = out
            b = shape[0]
            if not isinstance(views, torch.Tensor) or views.shape != (4 * b, *shape[1:]):
                got = tuple(views.shape) if isinstance(views, torch.Tensor) else type(views)
                return False, (f"views must be a 4B x C x H x W tensor, {(4 * b, *shape[1:])} "
                               f"here, got {got}")
            targets = torch.as_tensor(targets)
            if targets.shape != (4 * b,) or targets.dtype != torch.int64:
                return False, (f"targets must be an int64 tensor of {4 * b} values, got "
                               f"{targets.dtype} {tuple(targets.shape)}")
            if set(targets.tolist()) - {0, 1, 2, 3}:
                return False, "targets must be rotation indices k in {0, 1, 2, 3}"
            seen = set()
            for view, k in zip(views, targets.tolist(), strict=True):
                match = [i for i in range(b) if torch.equal(torch.rot90(images[i], k, (-2, -1)),
                                                              view)]
                if not match:
                    return False, _rotation_hint(images, view, k)
                seen.add((match[0], k))
            if len(seen) != 4 * b:
                return False, ("some (image, rotation) pairs are missing or repeated: each image "
                               "must appear once with each of the four targets")
        return True, "every view is its image rotated by 90k degrees counter-clockwise"

    return run_check("Exercise 7.2 - the rotation pretext task", test, verbose)


def _rotation_hint(images: torch.Tensor, view: torch.Tensor, k: int) -> str:
    """Name the mistake behind a view that is no rotation of any image by 90k degrees."""
    for i in range(len(images)):
        x = images[i]
        for j in range(4):
            if j != k and torch.equal(torch.rot90(x, j, (-2, -1)), view):
                if j == (4 - k) % 4:
                    return (f"a view with target {k} is rotated by {90 * j} degrees: you rotate "
                            "clockwise; use torch.rot90(x, k, dims=(-2, -1)) (counter-clockwise)")
                return (f"a view with target {k} is rotated by {90 * j} degrees: targets and "
                        "views are out of step (check the order of torch.cat against the order "
                        "of the targets: repeat_interleave vs repeat)")
        transposed = x.transpose(-2, -1)
        for j in range(4):
            if torch.equal(torch.rot90(transposed, j, (-2, -1)), view):
                return (f"a view with target {k} is a mirror image of its source (a transpose), "
                        "not a rotation; use torch.rot90 over the two spatial dims")
    return f"a view with target {k} is not any input image rotated by {90 * k} degrees"


# --------------------------------------------------------------------------- Exercise 7.3
def check_collapse_std(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(z) -> scalar``: the std over samples of the L2-normalised rows of z (N x D),
    averaged over the D dimensions (SimSiam, arXiv:2011.10566, Sec. 4.1, Fig. 2).

    The sample std may use N or N - 1 in its denominator (the batches are large enough for both
    to agree). The inputs have rows of different norms and an uneven spread across dimensions,
    so that skipping the normalisation, normalising columns, or taking the std across
    dimensions instead of across samples give different values; a collapsed input must give 0.
    """

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(75)
        n, d = 512, 16
        spread = torch.randn(n, d, generator=g) * torch.linspace(0.2, 3.0, d)  # N x D
        spread = spread * torch.exp(torch.randn(n, 1, generator=g))  # rows of varied norms
        shifted = spread + 2.0  # N x D, not centred: the mean direction dominates
        collapsed = torch.randn(1, d, generator=g).expand(n, d) * 3.0  # N x D, one vector
        for name, z in [("spread features", spread), ("shifted features", shifted),
                        ("collapsed features", collapsed)]:
            got = fn(z.clone())
            if not isinstance(got, torch.Tensor) or got.numel() != 1:
                return False, f"return a scalar tensor, got {type(got).__name__}"
            got = got.detach().reshape(()).double()
            expected = collapse_std(z).double()
            ok, hint = close(got, expected, atol=1e-4, rtol=5e-3)
            if ok:
                continue
            if close(got, z.std(dim=0).mean(), atol=1e-4, rtol=5e-3)[0]:
                return False, (f"{name}: you did not L2-normalise the rows; without it the std "
                               "measures the scale of the features, not their spread in "
                               "direction (divide each row by its norm first)")
            unit = F.normalize(z, dim=1)
            if close(got, unit.std(dim=1).mean(), atol=1e-4, rtol=5e-3)[0]:
                return False, (f"{name}: you took the std across the dimensions of each sample;"
                               " collapse is about samples: take the std over the N samples "
                               "(dim=0) for each dimension, then average over dimensions")
            if close(got, F.normalize(z, dim=0).std(dim=0).mean(), atol=1e-4, rtol=5e-3)[0]:
                return False, (f"{name}: you normalised the columns (dim=0); normalise each "
                               "sample's vector, i.e. each row (dim=1)")
            return False, f"{name}: {hint}"
        return True, "matches: 0 for collapsed features, the std of unit vectors otherwise"

    return run_check("Exercise 7.3 - measuring collapse", test, verbose)
