"""Checkers for Chapter 2 (Data augmentation): crop + resize, the crop sampler, Gaussian blur,
contrast.

Each checker runs the student's function on random inputs and compares it with
:mod:`sslbook.augment` (``resized_crop``, ``crop_params``, ``adjust_contrast``) or with the blur
of the private :mod:`sslbook.exercises._reference`, exactly where the answer is deterministic and
by a two-sample Kolmogorov-Smirnov test where it is random; it returns a
:class:`~sslbook.exercises.CheckResult` and never raises. Every checker takes a ``seed``: the
grader's hidden checks draw fresh inputs from it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook import augment
from sslbook.exercises import CheckResult, close, run_check
from sslbook.exercises._reference.ch02 import gaussian_blur as _gaussian_blur


def _as_float(result, name: str = "your function") -> torch.Tensor:
    if not isinstance(result, torch.Tensor):
        raise TypeError(f"{name} returned {type(result).__name__}, expected a torch.Tensor")
    return result.double()


# --------------------------------------------------------------------------- Exercise 2.1
def check_resized_crop(fn: Callable, verbose: bool = True,
                       seed: int | None = None) -> CheckResult:
    """Check ``fn(x, top, left, height, width, size) -> N x C x size x size``.

    Box i (rows ``top[i] .. top[i] + height[i] - 1``, columns ``left[i] .. left[i] + width[i]
    - 1``) of image i, resized bilinearly (``align_corners=False``, no antialiasing) to
    ``size x size``. Boxes are never smaller than the output here, so crop-then-interpolate and
    :func:`sslbook.augment.resized_crop` (one ``grid_sample``) must agree to float precision.
    With a ``seed`` (the grader's hidden checks) the images and boxes are drawn from it.
    """

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(21 if seed is None else seed)
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


def check_crop_params(fn: Callable, verbose: bool = True,
                      seed: int | None = None) -> CheckResult:
    """Check ``fn(n, height, width, scale, ratio, generator) -> (top, left, h, w)``.

    The random-resized-crop sampler (torchvision's ``RandomResizedCrop.get_params`` for n boxes,
    as :func:`sslbook.augment.crop_params`): every box inside the image, the same seed giving
    the same boxes, and the crop area, log aspect ratio and centre position distributed as the
    library's (two-sample KS test at level 1e-4 on 20,000 boxes). With a ``seed`` (the grader's
    hidden checks) the generators' seeds are drawn from it.
    """
    s1, s2, s3 = (22, 7, 1022) if seed is None else \
        torch.randint(0, 2**31 - 1, (3,), generator=torch.Generator().manual_seed(seed)).tolist()

    def test() -> tuple[bool, str]:
        n = 20_000
        for H, W, scale, ratio in ((64, 96, (0.08, 1.0), (3 / 4, 4 / 3)),
                                   (28, 28, (0.2, 1.0), (3 / 4, 4 / 3))):
            g = torch.Generator().manual_seed(s1)
            top, left, h, w = _boxes(fn(n, H, W, scale, ratio, g), n)
            if (h < 1).any() or (w < 1).any():
                return False, "every box needs height >= 1 and width >= 1"
            if (top < 0).any() or (left < 0).any() or (top + h > H).any() or (left + w > W).any():
                return False, (f"some boxes leave the {H} x {W} image: top must be drawn in "
                               "[0, H - h] and left in [0, W - w] after h and w are chosen")
            first = _boxes(fn(500, H, W, scale, ratio, torch.Generator().manual_seed(s2)), 500)
            again = _boxes(fn(500, H, W, scale, ratio, torch.Generator().manual_seed(s2)), 500)
            if not all(torch.equal(u, v) for u, v in zip(first, again, strict=True)):
                return False, "the same seed gave different boxes: draw from `generator` only"
            ref = augment.crop_params(n, H, W, scale, ratio,
                                      generator=torch.Generator().manual_seed(s3))
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
def _blur_variants(x: torch.Tensor, sigma: torch.Tensor, k: int) -> dict[str, torch.Tensor]:
    """Plausible wrong answers of Exercise 2.3, to name a student's mistake."""
    n, c, H, W = x.shape
    r = k // 2
    t = torch.arange(-r, r + 1, dtype=x.dtype)

    def blur(kernel, mode="reflect", both=True):
        kernel = kernel.repeat_interleave(c, 0)
        y = F.pad(x.reshape(1, n * c, H, W), (r, r, r, r), mode=mode)
        y = F.conv2d(y, kernel.view(n * c, 1, 1, k), groups=n * c)
        if both:
            y = F.conv2d(y, kernel.view(n * c, 1, k, 1), groups=n * c)
        else:
            y = y[:, :, r:-r, :]
        return y.view(n, c, H, W)

    def normalised(w):
        return w / w.sum(1, keepdim=True)

    s = sigma.to(x.dtype)[:, None]
    right = normalised(torch.exp(-0.5 * (t / s) ** 2))
    return {
        "the kernel is not normalised: divide the weights by their sum, or the image gets "
        "brighter": blur(torch.exp(-0.5 * (t / s) ** 2)),
        "the image is padded with zeros (dark borders): pad with mode='reflect'":
            blur(right, mode="constant"),
        "sigma is used as the variance: the weight is exp(-t^2 / (2 sigma^2))":
            blur(normalised(torch.exp(-0.5 * t**2 / s))),
        "the factor 1/2 is missing: the weight is exp(-t^2 / (2 sigma^2))":
            blur(normalised(torch.exp(-(t / s) ** 2))),
        "only one direction is blurred: convolve along the rows and then along the columns":
            blur(right, both=False),
        "every image is blurred with the first sigma: each image has its own sigma[i]":
            blur(right[:1].expand(n, -1)),
    }


def check_gaussian_blur(fn: Callable, verbose: bool = True,
                        seed: int | None = None) -> CheckResult:
    """Check ``fn(x, sigma, kernel_size) -> x'``: image i blurred with a normalised Gaussian of
    std ``sigma[i]`` (odd ``kernel_size``, separable, reflect padding), as
    :func:`sslbook.augment.gaussian_blur` once sigma is drawn.

    Sigmas differ per image and kernels are wide enough to see the borders, so an unnormalised
    kernel, zero padding, sigma used as a variance, a missing 1/2, one direction only and one
    sigma for all images are recognised. With a ``seed`` (the grader's hidden checks) the
    images, sizes and sigmas are drawn from it.
    """
    cases = [(4, 3, 12, 16, 5), (3, 1, 10, 10, 3)]
    if seed is not None:
        g0 = torch.Generator().manual_seed(seed)
        cases = [(int(torch.randint(2, 6, (1,), generator=g0)), c,
                  int(torch.randint(9, 20, (1,), generator=g0)),
                  int(torch.randint(9, 20, (1,), generator=g0)), k) for c, k in ((3, 5), (1, 3))]

    def test() -> tuple[bool, str]:
        g = torch.Generator().manual_seed(23 if seed is None else seed + 1)
        for n, c, H, W, k in cases:
            x = torch.rand(n, c, H, W, generator=g, dtype=torch.float64)  # N x C x H x W
            sigma = 0.3 + 1.7 * torch.rand(n, generator=g, dtype=torch.float64)  # N, in [0.3, 2]
            out = _as_float(fn(x.clone(), sigma.clone(), k))
            if tuple(out.shape) != (n, c, H, W):
                return False, (f"output shape {tuple(out.shape)}, expected {(n, c, H, W)}: the "
                               "blur keeps the size (pad by kernel_size // 2)")
            expected = _gaussian_blur(x, sigma, k)
            ok, hint = close(out, expected, atol=1e-6, rtol=1e-5)
            if ok:
                continue
            where = f"({c}-channel {H} x {W} images, kernel {k})"
            for mistake, value in _blur_variants(x, sigma, k).items():
                if close(out, value, atol=1e-6, rtol=1e-5)[0]:
                    return False, f"{where} {mistake}"
            return False, f"{where} {hint}"
        return True, "normalised Gaussian per image, separable, reflect padding"

    return run_check("Exercise 2.3 - Gaussian blur", test, verbose)


# --------------------------------------------------------------------------- Exercise 2.4
def check_adjust_contrast(fn: Callable, verbose: bool = True,
                          seed: int | None = None) -> CheckResult:
    """Check ``fn(x, factor) -> x'``: per image, ``clamp(f x + (1 - f) m, 0, 1)`` where m is the
    mean of the image's grayscale (0.299 R + 0.587 G + 0.114 B; the image itself if grey), as
    torchvision's ``adjust_contrast`` and :func:`sslbook.augment.adjust_contrast`. With a
    ``seed`` (the grader's hidden checks) the images are drawn from it."""

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(24 if seed is None else seed)
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


__all__ = ["check_adjust_contrast", "check_crop_params", "check_gaussian_blur",
           "check_resized_crop", "ks_critical", "ks_statistic"]
