"""Checkers for Chapter 2 (Data augmentation): crop + resize, the crop sampler, solarization,
contrast.

Each checker runs the student's function on random inputs and compares it with
:mod:`sslbook.augment` (``resized_crop``, ``crop_params``, ``solarize``, ``adjust_contrast``),
exactly where the answer is deterministic and by a two-sample Kolmogorov-Smirnov test where it
is random; it returns a :class:`~sslbook.exercises.CheckResult` and never raises.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from sslbook import augment
from sslbook.exercises import CheckResult, close, run_check


def _as_float(result, name: str = "your function") -> torch.Tensor:
    if not isinstance(result, torch.Tensor):
        raise TypeError(f"{name} returned {type(result).__name__}, expected a torch.Tensor")
    return result.double()


# --------------------------------------------------------------------------- Exercise 2.1
def check_resized_crop(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(x, top, left, height, width, size) -> N x C x size x size``.

    Box i (rows ``top[i] .. top[i] + height[i] - 1``, columns ``left[i] .. left[i] + width[i]
    - 1``) of image i, resized bilinearly (``align_corners=False``, no antialiasing) to
    ``size x size``. Boxes are never smaller than the output here, so crop-then-interpolate and
    :func:`sslbook.augment.resized_crop` (one ``grid_sample``) must agree to float precision.
    """

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(21)
        for n, c, H, W, size in ((6, 3, 40, 56, 16), (5, 1, 28, 28, 12), (4, 3, 64, 48, 20)):
            x = torch.rand(n, c, H, W, generator=generator)  # N x C x H x W
            # Boxes with sides in [size, side]: non-square, anywhere in the image.
            h = torch.randint(size, H + 1, (n,), generator=generator)
            w = torch.randint(size, W + 1, (n,), generator=generator)
            top = (torch.rand(n, generator=generator) * (H - h + 1)).long()
            left = (torch.rand(n, generator=generator) * (W - w + 1)).long()
            out = _as_float(fn(x.clone(), top.clone(), left.clone(), h.clone(), w.clone(), size))
            if tuple(out.shape) != (n, c, size, size):
                return False, (f"output shape {tuple(out.shape)}, expected {(n, c, size, size)}:"
                               " one size x size crop per image, channels kept")
            expected = augment.resized_crop(x, top, left, h, w, size).double()
            ok, hint = close(out, expected, atol=1e-5, rtol=1e-4)
            if not ok:
                return False, (f"for {H} x {W} images resized to {size}: {hint}. Check the slice "
                               "x[i, :, top:top + height, left:left + width] (height is rows), "
                               "mode='bilinear', align_corners=False, antialias=False")
        return True, "crop + bilinear resize matches sslbook.augment.resized_crop"

    return run_check("Exercise 2.1 - crop a box and resize it", test, verbose)


# --------------------------------------------------------------------------- Exercise 2.2
def ks_statistic(a: torch.Tensor, b: torch.Tensor) -> float:
    """Two-sample Kolmogorov-Smirnov statistic: the largest gap between the empirical CDFs."""
    a = torch.sort(a.double().flatten()).values
    b = torch.sort(b.double().flatten()).values
    grid = torch.cat([a, b])
    cdf_a = torch.searchsorted(a, grid, right=True).double() / len(a)
    cdf_b = torch.searchsorted(b, grid, right=True).double() / len(b)
    return (cdf_a - cdf_b).abs().max().item()


def ks_critical(n: int, m: int, alpha: float = 1e-4) -> float:
    """Critical value of the two-sample KS statistic at level alpha (large-sample formula)."""
    return math.sqrt(-0.5 * math.log(alpha / 2)) * math.sqrt((n + m) / (n * m))


def _boxes(result, n: int) -> tuple[torch.Tensor, ...]:
    if not isinstance(result, (tuple, list)) or len(result) != 4:
        raise TypeError("return a tuple (top, left, height, width) of 4 tensors of length n")
    boxes = tuple(torch.as_tensor(v).flatten().long() for v in result)
    for name, v in zip(("top", "left", "height", "width"), boxes, strict=True):
        if len(v) != n:
            raise ValueError(f"{name} has {len(v)} values, expected n = {n}")
    return boxes


def _box_stats(top: torch.Tensor, left: torch.Tensor, h: torch.Tensor, w: torch.Tensor,
               H: int, W: int) -> dict[str, torch.Tensor]:
    """The four statistics whose distributions the crop-sampler check compares."""
    return {
        "area fraction h*w/(H*W)": h * w / (H * W),
        "log aspect ratio log(w/h)": torch.log(w / h.double()),
        "vertical centre (top + h/2)/H": (top + h / 2) / H,
        "horizontal centre (left + w/2)/W": (left + w / 2) / W,
    }


def check_crop_params(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(n, height, width, scale, ratio, generator) -> (top, left, h, w)``.

    The random-resized-crop sampler (torchvision's ``RandomResizedCrop.get_params`` for n boxes,
    as :func:`sslbook.augment.crop_params`): every box inside the image, the same seed giving
    the same boxes, and the crop area, log aspect ratio and centre position distributed as the
    library's (two-sample KS test at level 1e-4 on 20,000 boxes).
    """

    def test() -> tuple[bool, str]:
        n = 20_000
        for H, W, scale, ratio in ((64, 96, (0.08, 1.0), (3 / 4, 4 / 3)),
                                   (28, 28, (0.2, 1.0), (3 / 4, 4 / 3))):
            g = torch.Generator().manual_seed(22)
            top, left, h, w = _boxes(fn(n, H, W, scale, ratio, g), n)
            if (h < 1).any() or (w < 1).any():
                return False, "every box needs height >= 1 and width >= 1"
            if (top < 0).any() or (left < 0).any() or (top + h > H).any() or (left + w > W).any():
                return False, (f"some boxes leave the {H} x {W} image: top must be drawn in "
                               "[0, H - h] and left in [0, W - w] after h and w are chosen")
            first = _boxes(fn(500, H, W, scale, ratio, torch.Generator().manual_seed(7)), 500)
            again = _boxes(fn(500, H, W, scale, ratio, torch.Generator().manual_seed(7)), 500)
            if not all(torch.equal(u, v) for u, v in zip(first, again, strict=True)):
                return False, "the same seed gave different boxes: draw from `generator` only"
            ref = augment.crop_params(n, H, W, scale, ratio,
                                      generator=torch.Generator().manual_seed(1022))
            limit = ks_critical(n, n)
            ours, theirs = _box_stats(top, left, h, w, H, W), _box_stats(*ref, H, W)
            for name in ours:
                d = ks_statistic(ours[name], theirs[name])
                if d > limit:
                    return False, (f"on {H} x {W} images with scale={scale}: the {name} is not "
                                   f"distributed as the library's (KS statistic {d:.3f} > "
                                   f"{limit:.3f}). Draw the area uniformly in scale * H * W, "
                                   "log(ratio) uniformly, retry up to 10 times, then place the "
                                   "box uniformly")
        return True, "boxes are valid, seeded and distributed as sslbook.augment.crop_params"

    return run_check("Exercise 2.2 - sample random-resized-crop boxes", test, verbose)


# --------------------------------------------------------------------------- Exercise 2.3
def check_solarize(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(x, threshold) -> x'``: every pixel ``>= threshold`` becomes ``1 - x``.

    Always applied (no coin flip): :func:`sslbook.augment.solarize` with ``p=1`` (BYOL,
    arXiv:2006.07733, Table 6). Inputs include pixels exactly at the threshold.
    """

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(23)
        for threshold in (0.5, 0.25, 0.75):
            x = torch.rand(4, 3, 10, 10, generator=generator)  # N x C x H x W
            x.view(-1)[::7] = threshold  # pixels exactly at the threshold
            out = _as_float(fn(x.clone(), threshold))
            expected = augment.solarize(x, p=1.0, threshold=threshold).double()
            ok, hint = close(out, expected, atol=1e-6, rtol=0)
            if not ok:
                return False, (f"with threshold {threshold}: {hint}. Pixels >= threshold "
                               "(equality included) become 1 - x; the others stay")
        return True, "matches sslbook.augment.solarize (p = 1)"

    return run_check("Exercise 2.3 - solarization", test, verbose)


# --------------------------------------------------------------------------- Exercise 2.4
def check_adjust_contrast(fn: Callable, verbose: bool = True) -> CheckResult:
    """Check ``fn(x, factor) -> x'``: per image, ``clamp(f x + (1 - f) m, 0, 1)`` where m is the
    mean of the image's grayscale (0.299 R + 0.587 G + 0.114 B; the image itself if grey), as
    torchvision's ``adjust_contrast`` and :func:`sslbook.augment.adjust_contrast`."""

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(24)
        for c in (3, 1):
            x = torch.rand(6, c, 12, 12, generator=generator)  # N x C x H x W
            x = x * torch.rand(6, c, 1, 1, generator=generator)  # images of different means
            factor = torch.tensor([0.0, 0.5, 1.0, 1.5, 1.9, 0.2])  # N, some above 1: clamping
            out = _as_float(fn(x.clone(), factor.clone()))
            expected = augment.adjust_contrast(x, factor).double()
            ok, hint = close(out, expected, atol=1e-5, rtol=1e-4)
            if not ok:
                return False, (f"with {c}-channel images: {hint}. Blend each image with the "
                               "mean of ITS OWN grayscale (one number per image), then clamp "
                               "to [0, 1]")
        return True, "matches sslbook.augment.adjust_contrast"

    return run_check("Exercise 2.4 - contrast jitter", test, verbose)


__all__ = ["check_adjust_contrast", "check_crop_params", "check_resized_crop", "check_solarize",
           "ks_critical", "ks_statistic"]
