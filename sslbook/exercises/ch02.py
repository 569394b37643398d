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
def _grid_sample(x: torch.Tensor, gx: torch.Tensor, gy: torch.Tensor, mode: str = "bilinear",
                 yx: bool = False) -> torch.Tensor:
    """Sample x at normalised columns gx and rows gy (both N x size); yx puts (y, x) in the
    grid's last axis instead of (x, y)."""
    n, size = gx.shape
    across = gx[:, None, :].expand(n, size, size)  # x varies along the output's columns
    down = gy[:, :, None].expand(n, size, size)  # y varies along the output's rows
    grid = torch.stack([down, across] if yx else [across, down], dim=-1).to(x.dtype)
    return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)


def _crop_variants(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, h: torch.Tensor,
                   w: torch.Tensor, size: int) -> dict[str, torch.Tensor]:
    """Plausible wrong answers of Exercise 2.1, to name a student's mistake."""
    n, _, H, W = x.shape
    j = torch.arange(size, dtype=torch.float64)  # output pixel index
    top, left, h, w = (v.double()[:, None] for v in (top, left, h, w))  # N x 1
    u, v = left + (j + 0.5) * w / size - 0.5, top + (j + 0.5) * h / size - 0.5  # N x size

    def norm(coord, side):
        return (2 * coord + 1) / side - 1

    right = _grid_sample(x, norm(u, W), norm(v, H))
    return {
        "height and width are swapped: height counts rows (y), width counts columns (x)":
            augment.resized_crop(x, top.long().flatten(), left.long().flatten(),
                                 w.long().flatten(), h.long().flatten(), size),
        "top and left are swapped: top is a row (y), left a column (x)":
            augment.resized_crop(x, left.long().flatten(), top.long().flatten(),
                                 h.long().flatten(), w.long().flatten(), size),
        "the grid's last axis holds (y, x): grid_sample wants (x, y), x first":
            _grid_sample(x, norm(u, W), norm(v, H), yx=True),
        "the output is transposed: x must vary along the grid's columns (its third axis), "
        "y along its rows": right.transpose(-1, -2),
        "rows are normalised by W and columns by H: divide x by the width W, y by the height H":
            _grid_sample(x, norm(u, H), norm(v, W)),
        "the half-pixel offsets are missing: the source column is left + (j + 0.5) w / size "
        "- 0.5, and the normalised coordinate (2u + 1) / W - 1":
            _grid_sample(x, 2 * (left + j * w / size) / W - 1, 2 * (top + j * h / size) / H - 1),
        "the normalisation is align_corners=True's (2u / (W - 1) - 1) while grid_sample uses "
        "align_corners=False: use (2u + 1) / W - 1":
            _grid_sample(x, 2 * u / (W - 1) - 1, 2 * v / (H - 1) - 1),
        "the corners are aligned (align_corners=True): output pixel centres sit at "
        "left + (j + 0.5) w / size - 0.5, not on the box's corners":
            _grid_sample(x, norm(left + j * (w - 1) / (size - 1), W),
                         norm(top + j * (h - 1) / (size - 1), H)),
        "the whole image is resized, not the box: offset by top/left and scale by the box's "
        "height/width": F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False),
        "every image is cropped with the first box: box i belongs to image i":
            _grid_sample(x, norm(u[:1].expand(n, -1), W), norm(v[:1].expand(n, -1), H)),
        "the sampling is nearest-neighbour: use mode='bilinear'":
            _grid_sample(x, norm(u, W), norm(v, H), mode="nearest"),
    }


def check_resized_crop(fn: Callable, verbose: bool = True,
                       seed: int | None = None) -> CheckResult:
    """Check ``fn(x, top, left, height, width, size) -> N x C x size x size``.

    Box i (rows ``top[i] .. top[i] + height[i] - 1``, columns ``left[i] .. left[i] + width[i]
    - 1``) of image i, resized bilinearly (``align_corners=False``, no antialiasing) to
    ``size x size``. Boxes are never smaller than the output here, so crop-then-interpolate and
    :func:`sslbook.augment.resized_crop` (one ``grid_sample``) must agree to float precision.
    Images are not square and boxes differ per image, so swapped sides, swapped top/left, a grid
    in (y, x) order, a transposed output, swapped normalisers, missing half-pixel offsets, the
    corners aligned, the whole image resized, one box for all and nearest sampling are
    recognised. With a ``seed`` (the grader's hidden checks) the images and boxes are drawn from
    it.
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
            if ok:
                continue
            where = f"(for {H} x {W} images resized to {size})"
            for mistake, value in _crop_variants(x, top, left, h, w, size).items():
                if close(out, value.double(), atol=1e-5, rtol=1e-4)[0]:
                    return False, f"{where} {mistake}"
            return False, (f"{where} {hint}. Check the slice x[i, :, top:top + height, "
                           "left:left + width] (height is rows), mode='bilinear', "
                           "align_corners=False, antialias=False")
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


def _crop_param_variants(n: int, H: int, W: int, scale: tuple[float, float],
                         ratio: tuple[float, float], seed: int) -> dict[str, tuple]:
    """Boxes drawn by plausible wrong samplers of Exercise 2.2, to name a student's mistake by
    the distribution their boxes follow."""
    g = torch.Generator().manual_seed(seed)

    def uniform(low, high, attempts=10):
        return low + (high - low) * torch.rand(n, attempts, generator=g, dtype=torch.float64)

    def sample(area, aspect, rounding=torch.round, retry=True, centred=False):
        w = rounding(torch.sqrt(area * aspect)).long()  # N x 10 attempts
        h = rounding(torch.sqrt(area / aspect)).long()
        if retry:
            ok = (w > 0) & (w <= W) & (h > 0) & (h <= H)  # N x 10
            first = ok.int().argmax(dim=1, keepdim=True)
            w = torch.where(ok.any(1), w.gather(1, first).squeeze(1), W)
            h = torch.where(ok.any(1), h.gather(1, first).squeeze(1), H)
        else:
            w, h = w[:, 0].clamp(1, W), h[:, 0].clamp(1, H)
        if centred:
            return (H - h) // 2, (W - w) // 2, h, w
        top = (torch.rand(n, generator=g, dtype=torch.float64) * (H - h + 1)).long()
        left = (torch.rand(n, generator=g, dtype=torch.float64) * (W - w + 1)).long()
        return top, left, h, w

    area = H * W * uniform(*scale)
    log_aspect = torch.exp(uniform(math.log(ratio[0]), math.log(ratio[1])))
    side = uniform(math.sqrt(scale[0]), math.sqrt(scale[1]))
    return {
        "the aspect ratio is drawn uniformly in ratio: draw log(ratio) uniformly, then exp":
            sample(area, uniform(*ratio)),
        "the side is drawn uniformly (in sqrt(scale)), not the area: the area is uniform in "
        "scale * H * W": sample(H * W * side**2, log_aspect),
        "the area ignores `scale`: draw it uniformly in [scale[0], scale[1]] * H * W":
            sample(H * W * uniform(0.0, 1.0), log_aspect),
        "the sides are clamped to the image instead of drawn again: retry (up to 10 attempts) "
        "until the box fits": sample(area, log_aspect, retry=False),
        "the sides are truncated (int): w = round(sqrt(area * ratio)), h = round(sqrt(area / "
        "ratio))": sample(area, log_aspect, rounding=torch.floor),
        "every box is centred: draw top uniformly in [0, H - h] and left in [0, W - w]":
            sample(area, log_aspect, centred=True),
    }


def check_crop_params(fn: Callable, verbose: bool = True,
                      seed: int | None = None) -> CheckResult:
    """Check ``fn(n, height, width, scale, ratio, generator) -> (top, left, h, w)``.

    The random-resized-crop sampler (torchvision's ``RandomResizedCrop.get_params`` for n boxes,
    as :func:`sslbook.augment.crop_params`): every box inside the image, the same seed giving
    the same boxes, positions reaching every edge, and the crop area, log aspect ratio and centre
    position distributed as the library's (two-sample KS test at level 1e-4 on 20,000 boxes).
    Boxes distributed as those of a plausible wrong sampler (uniform aspect ratio, uniform side,
    scale ignored, clamped sides, truncated sides, centred boxes) are named. With a ``seed``
    (the grader's hidden checks) the generators' seeds are drawn from it.
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
            if torch.equal(top, (H - h) // 2) and torch.equal(left, (W - w) // 2):
                return False, ("every box is centred: draw top uniformly in [0, H - h] and "
                               "left in [0, W - w]")
            for name, pos, room in (("top", top, H - h), ("left", left, W - w)):
                # A uniform position hits each end with probability 1 / (room + 1): thousands of
                # hits expected in 20,000 boxes, so none at all is a bound left out.
                free = room > 0  # boxes that can move
                expected = (1.0 / (room[free].double() + 1)).sum().item()
                if expected >= 20 and not (pos == room)[free].any():
                    side = "H - h" if name == "top" else "W - w"
                    return False, (f"{name} never equals {side} (about {expected:.0f} of "
                                   f"{n} boxes should): the upper end is left out; {name} is "
                                   f"uniform in [0, {side}], both ends included")
                if expected >= 20 and not (pos == 0)[free].any():
                    return False, (f"{name} is never 0: the lower end is left out; {name} is "
                                   "uniform from 0 upwards")
            ref = augment.crop_params(n, H, W, scale, ratio,
                                      generator=torch.Generator().manual_seed(s3))
            limit = ks_critical(n, n)
            ours, theirs = _box_stats(top, left, h, w, H, W), _box_stats(*ref, H, W)
            gaps = {name: ks_statistic(ours[name], theirs[name]) for name in ours}
            worst = max(gaps, key=gaps.get)
            if gaps[worst] <= limit:
                continue
            where = f"(on {H} x {W} images with scale={scale})"
            fits = {}
            for mistake, boxes in _crop_param_variants(n, H, W, scale, ratio, s3).items():
                theirs = _box_stats(*boxes, H, W)
                fits[mistake] = max(ks_statistic(ours[k], theirs[k]) for k in ours)
            best = min(fits, key=fits.get)
            if fits[best] <= limit:
                return False, f"{where} your boxes are distributed as when {best}"
            return False, (f"{where} the {worst} is not distributed as the library's (KS "
                           f"statistic {gaps[worst]:.3f} > {limit:.3f}). Draw the area uniformly "
                           "in scale * H * W, log(ratio) uniformly, retry up to 10 times, then "
                           "place the box uniformly")
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
def _contrast_variants(x: torch.Tensor, factor: torch.Tensor) -> dict[str, torch.Tensor]:
    """Plausible wrong answers of Exercise 2.4, to name a student's mistake."""
    f = factor.view(-1, 1, 1, 1).to(x.dtype)  # N x 1 x 1 x 1

    def gray(weights):
        if x.shape[1] != 3:
            return x[:, :1]
        return sum(wt * x[:, i:i + 1] for i, wt in enumerate(weights))  # N x 1 x H x W

    g = gray((0.299, 0.587, 0.114))
    m = g.mean(dim=(2, 3), keepdim=True)  # N x 1 x 1 x 1

    def blend(mean, clamp=True):
        out = f * x + (1 - f) * mean
        return out.clamp(0, 1) if clamp else out

    return {
        "the result is not clamped: clamp to [0, 1] (factors above 1 overshoot)":
            blend(m, clamp=False),
        "one mean for the whole batch: each image is blended with the mean of its own "
        "grayscale": blend(g.mean()),
        "each channel is blended with its own mean: use one number per image, the mean of the "
        "grayscale 0.299 R + 0.587 G + 0.114 B": blend(x.mean(dim=(2, 3), keepdim=True)),
        "the mean is the plain average of R, G and B: weight them 0.299, 0.587, 0.114":
            blend(x.mean(dim=(1, 2, 3), keepdim=True)),
        "the grayscale weights are in the wrong order: 0.299 R + 0.587 G + 0.114 B, with R the "
        "first channel": blend(gray((0.114, 0.587, 0.299)).mean(dim=(2, 3), keepdim=True)),
        "each image is blended with its grayscale image (that is saturation): blend with the "
        "mean of the grayscale, one number per image": blend(g),
        "the image is blended with grey 0.5: use the mean of the image's own grayscale":
            blend(torch.full_like(m, 0.5)),
        "the factor weights the mean: f multiplies the image, (1 - f) the mean":
            ((1 - f) * x + f * m).clamp(0, 1),
    }


def check_adjust_contrast(fn: Callable, verbose: bool = True,
                          seed: int | None = None) -> CheckResult:
    """Check ``fn(x, factor) -> x'``: per image, ``clamp(f x + (1 - f) m, 0, 1)`` where m is the
    mean of the image's grayscale (0.299 R + 0.587 G + 0.114 B; the image itself if grey), as
    torchvision's ``adjust_contrast`` and :func:`sslbook.augment.adjust_contrast`.

    Images have different means and some factors exceed 1, so a missing clamp, a batch mean,
    per-channel means, the plain RGB average, reversed grayscale weights, a blend with the
    grayscale image, with grey 0.5, and f on the wrong side are recognised. With a ``seed`` (the
    grader's hidden checks) the images and factors are drawn from it."""

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(24 if seed is None else seed)
        factor = torch.tensor([0.0, 0.5, 1.0, 1.5, 1.9, 0.2])  # N, some above 1: clamping
        if seed is not None:  # one factor of 0 and one above 1 always, the rest in [0, 2]
            factor = torch.cat([torch.tensor([0.0, 1.6]), 2 * torch.rand(4, generator=generator)])
        for c in (3, 1):
            x = torch.rand(6, c, 12, 12, generator=generator)  # N x C x H x W
            x = x * torch.rand(6, c, 1, 1, generator=generator)  # images of different means
            out = _as_float(fn(x.clone(), factor.clone()))
            expected = augment.adjust_contrast(x, factor).double()
            ok, hint = close(out, expected, atol=1e-5, rtol=1e-4)
            if ok:
                continue
            for mistake, value in _contrast_variants(x, factor).items():
                if close(out, value.double(), atol=1e-5, rtol=1e-4)[0]:
                    return False, f"(with {c}-channel images) {mistake}"
            return False, (f"with {c}-channel images: {hint}. Blend each image with the "
                           "mean of ITS OWN grayscale (one number per image), then clamp "
                           "to [0, 1]")
        return True, "matches sslbook.augment.adjust_contrast"

    return run_check("Exercise 2.4 - contrast jitter", test, verbose)


__all__ = ["check_adjust_contrast", "check_crop_params", "check_gaussian_blur",
           "check_resized_crop", "ks_critical", "ks_statistic"]
