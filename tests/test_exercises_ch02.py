"""Chapter 2 checkers: the solution and an equivalent rewrite pass, a bank of plausible wrong
answers (mutants) is rejected with a hint naming the mistake, on the default inputs and on hidden
seeds."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from solutions_loader import load_solutions, not_attempted

from sslbook import augment
from sslbook.exercises.ch02 import (
    check_adjust_contrast,
    check_crop_params,
    check_gaussian_blur,
    check_resized_crop,
    ks_critical,
    ks_statistic,
)

solutions = load_solutions("ch02")


# --------------------------------------------------------------------------- helpers
def test_ks_statistic_matches_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(500, generator=g), torch.randn(300, generator=g) + 0.2
    assert ks_statistic(a, b) == pytest.approx(scipy_stats.ks_2samp(a, b).statistic, abs=1e-12)
    ties = torch.randint(0, 5, (400,), generator=g).double()
    other = torch.randint(0, 6, (400,), generator=g).double()
    assert ks_statistic(ties, other) == pytest.approx(
        scipy_stats.ks_2samp(ties, other).statistic, abs=1e-12)
    assert ks_critical(20_000, 20_000) == pytest.approx(0.02226, abs=1e-4)


# --------------------------------------------------------------------------- Exercise 2.1
SEEDS = (None, 1, 12345, 2**31 - 1)


def crop_affine_grid(x, top, left, height, width, size):
    """Equivalent rewrite: the box as an affine map of [-1, 1]^2, then affine_grid."""
    n, c, H, W = x.shape
    theta = torch.zeros(n, 2, 3, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 1, 1] = width / W, height / H  # half-sides, normalised
    theta[:, 0, 2] = (2 * left + width) / W - 1  # box centre, normalised
    theta[:, 1, 2] = (2 * top + height) / H - 1
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def crop_loop(x, top, left, height, width, size):
    """Crop, then F.interpolate, one image at a time: right whenever boxes >= output."""
    out = [F.interpolate(x[i:i + 1, :, top[i]:top[i] + height[i], left[i]:left[i] + width[i]],
                         size=(size, size), mode="bilinear", align_corners=False)
           for i in range(len(x))]
    return torch.cat(out)


def _crop_with(half=0.5, yx=False, transposed=False, by=None, mode="bilinear"):
    """The solution's grid with one slip: no half-pixel offsets (half=0), (y, x) in the last
    axis, x varying along rows, or the normalisers swapped (by='swapped')."""
    def crop(x, top, left, height, width, size):
        n, _, H, W = x.shape
        j = torch.arange(size, dtype=x.dtype) + half
        u = left[:, None] + j * width[:, None] / size - half
        v = top[:, None] + j * height[:, None] / size - half
        norm_w, norm_h = (H, W) if by == "swapped" else (W, H)
        gx, gy = (2 * u + 1) / norm_w - 1, (2 * v + 1) / norm_h - 1
        if half == 0:
            gx, gy = 2 * u / norm_w - 1, 2 * v / norm_h - 1
        across, down = (gx[:, :, None], gy[:, None, :]) if transposed else \
            (gx[:, None, :], gy[:, :, None])
        across, down = across.expand(n, size, size), down.expand(n, size, size)
        grid = torch.stack([down, across] if yx else [across, down], dim=-1)
        return F.grid_sample(x, grid, mode=mode, padding_mode="border", align_corners=False)
    return crop


crop_no_half_pixel = _crop_with(half=0)
crop_grid_yx = _crop_with(yx=True)
crop_transposed = _crop_with(transposed=True)
crop_normalisers_swapped = _crop_with(by="swapped")
crop_nearest = _crop_with(mode="nearest")


def crop_swapped_sides(x, top, left, height, width, size):
    return solutions.my_resized_crop(x, top, left, width, height, size)


def crop_swapped_corner(x, top, left, height, width, size):
    return solutions.my_resized_crop(x, left, top, height, width, size)


def crop_whole_image(x, top, left, height, width, size):
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def crop_align_corners(x, top, left, height, width, size):
    out = [F.interpolate(x[i:i + 1, :, top[i]:top[i] + height[i], left[i]:left[i] + width[i]],
                         size=(size, size), mode="bilinear", align_corners=True)
           for i in range(len(x))]
    return torch.cat(out)


def crop_first_box_for_all(x, top, left, height, width, size):
    n = len(x)
    return solutions.my_resized_crop(x, top[:1].expand(n), left[:1].expand(n),
                                     height[:1].expand(n), width[:1].expand(n), size)


@pytest.mark.parametrize("seed", SEEDS)
def test_resized_crop_accepts_solution_rewrites_and_library(seed):
    for fn in (solutions.my_resized_crop, crop_affine_grid, crop_loop, augment.resized_crop):
        assert check_resized_crop(fn, verbose=False, seed=seed).passed, fn


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(crop_swapped_sides, "height and width are swapped"),
                                          (crop_swapped_corner, "top and left are swapped"),
                                          (crop_grid_yx, "holds (y, x)"),
                                          (crop_transposed, "transposed"),
                                          (crop_normalisers_swapped, "normalised by W"),
                                          (crop_no_half_pixel, "half-pixel"),
                                          (crop_align_corners, "corners are aligned"),
                                          (crop_whole_image, "whole image"),
                                          (crop_first_box_for_all, "first box"),
                                          (crop_nearest, "nearest")])
def test_resized_crop_rejects_mutants_with_a_hint(wrong, words, seed):
    result = check_resized_crop(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


# --------------------------------------------------------------------------- Exercise 2.2
def params_vectorised(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                      generator=None, aspect="log", side=False, retry=True, rounding=torch.round,
                      place="uniform", use_scale=True):
    """Equivalent rewrite (defaults): all n boxes at once, attempt by attempt, boxes that still
    need one drawing again. The keyword arguments plant one slip each (the mutants below)."""
    h = torch.full((n,), height)
    w = torch.full((n,), width)
    todo = torch.ones(n, dtype=torch.bool)
    in_ratio = width / height  # fallback: the central crop, ratio clamped
    if in_ratio < ratio[0]:
        h[:] = round(width / ratio[0])
    elif in_ratio > ratio[1]:
        w[:] = round(height * ratio[1])
    for _ in range(10 if retry else 1):
        u = torch.rand(n, generator=generator, dtype=torch.float64)
        lo, hi = (scale if use_scale else (0.0, 1.0))
        frac = (math.sqrt(lo) + (math.sqrt(hi) - math.sqrt(lo)) * u) ** 2 if side else \
            lo + (hi - lo) * u
        area = height * width * frac
        r = torch.rand(n, generator=generator, dtype=torch.float64)
        if aspect == "log":
            a = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * r)
        else:
            a = ratio[0] + (ratio[1] - ratio[0]) * r
        cw, ch = rounding(torch.sqrt(area * a)).long(), rounding(torch.sqrt(area / a)).long()
        if not retry:
            cw, ch = cw.clamp(1, width), ch.clamp(1, height)
        fits = todo & (cw > 0) & (cw <= width) & (ch > 0) & (ch <= height)
        w, h = torch.where(fits, cw, w), torch.where(fits, ch, h)
        todo &= ~fits
    if place == "centre":
        return (height - h) // 2, (width - w) // 2, h, w
    extra = 0 if place == "exclusive" else 1
    top = (torch.rand(n, generator=generator, dtype=torch.float64) * (height - h + extra)).long()
    left = (torch.rand(n, generator=generator, dtype=torch.float64) * (width - w + extra)).long()
    return top, left, h, w


def _params(**slip):
    def sampler(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), generator=None):
        return params_vectorised(n, height, width, scale, ratio, generator, **slip)
    return sampler


params_uniform_aspect = _params(aspect="uniform")
params_uniform_side = _params(side=True)
params_scale_ignored = _params(use_scale=False)
params_clamped = _params(retry=False)
params_truncated = _params(rounding=torch.floor)
params_centred = _params(place="centre")
params_exclusive = _params(place="exclusive")


def params_outside(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), generator=None):
    """Right sizes, but top/left drawn in the whole image: boxes stick out."""
    _, _, h, w = augment.crop_params(n, height, width, scale, ratio, generator)
    top = torch.randint(0, height, (n,), generator=generator)
    left = torch.randint(0, width, (n,), generator=generator)
    return top, left, h, w


def params_unseeded(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), generator=None):
    return augment.crop_params(n, height, width, scale, ratio, generator=None)


@pytest.mark.parametrize("seed", SEEDS)
def test_crop_params_accepts_solution_rewrite_and_library(seed):
    for fn in (solutions.my_crop_params, params_vectorised, augment.crop_params):
        assert check_crop_params(fn, verbose=False, seed=seed).passed, fn


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(params_uniform_aspect, "aspect ratio is drawn"),
                                          (params_uniform_side, "side is drawn uniformly"),
                                          (params_scale_ignored, "ignores `scale`"),
                                          (params_clamped, "clamped to the image"),
                                          (params_truncated, "truncated"),
                                          (params_centred, "centred"),
                                          (params_exclusive, "upper end is left out"),
                                          (params_outside, "leave the"),
                                          (params_unseeded, "same seed")])
def test_crop_params_rejects_mutants_with_a_hint(wrong, words, seed):
    result = check_crop_params(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


# --------------------------------------------------------------------------- Exercise 2.3
def blur_2d_kernel(x, sigma, kernel_size):
    """Equivalent rewrite: one 2-D kernel (the outer product), per image, with a loop."""
    r = kernel_size // 2
    t = torch.arange(-r, r + 1, dtype=x.dtype)
    out = []
    for image, s in zip(x, sigma):
        w = torch.exp(-t**2 / (2 * s**2))
        w = w / w.sum()
        k2 = (w[:, None] * w[None, :]).expand(x.shape[1], 1, -1, -1)
        padded = F.pad(image[None], (r, r, r, r), mode="reflect")
        out.append(F.conv2d(padded, k2, groups=x.shape[1]))
    return torch.cat(out)


def _blur_with(kernel_fn, mode="reflect", both=True):
    def blur(x, sigma, kernel_size):
        n, c, H, W = x.shape
        r = kernel_size // 2
        t = torch.arange(-r, r + 1, dtype=x.dtype)
        k = kernel_fn(t, sigma.to(x.dtype)[:, None]).repeat_interleave(c, 0)
        y = F.pad(x.reshape(1, n * c, H, W), (r, r, r, r), mode=mode)
        y = F.conv2d(y, k.view(n * c, 1, 1, kernel_size), groups=n * c)
        y = F.conv2d(y, k.view(n * c, 1, kernel_size, 1), groups=n * c) if both else \
            y[:, :, r:-r, :]
        return y.view(n, c, H, W)
    return blur


def _norm(w):
    return w / w.sum(1, keepdim=True)


blur_unnormalised = _blur_with(lambda t, s: torch.exp(-0.5 * (t / s) ** 2))
blur_zero_padding = _blur_with(lambda t, s: _norm(torch.exp(-0.5 * (t / s) ** 2)), "constant")
blur_sigma_as_variance = _blur_with(lambda t, s: _norm(torch.exp(-0.5 * t**2 / s)))
blur_no_half = _blur_with(lambda t, s: _norm(torch.exp(-((t / s) ** 2))))
blur_one_direction = _blur_with(lambda t, s: _norm(torch.exp(-0.5 * (t / s) ** 2)), both=False)


@pytest.mark.parametrize("seed", SEEDS)
def test_blur_accepts_solution_and_rewrite(seed):
    assert check_gaussian_blur(solutions.my_gaussian_blur, verbose=False, seed=seed).passed
    assert check_gaussian_blur(blur_2d_kernel, verbose=False, seed=seed).passed


def test_blur_reference_is_the_librarys():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(3, 2, 14, 14, generator=g)
    # the library draws sigma uniformly in [low, high]: a degenerate interval fixes it
    ours = solutions.my_gaussian_blur(x, torch.full((3,), 1.3), 5)
    theirs = augment.gaussian_blur(x, kernel_size=5, sigma=(1.3, 1.3), p=1.0)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(blur_unnormalised, "not normalised"),
                                          (blur_zero_padding, "zeros"),
                                          (blur_sigma_as_variance, "variance"),
                                          (blur_no_half, "1/2"),
                                          (blur_one_direction, "one direction")])
def test_blur_rejects_mutants_with_a_hint(wrong, words, seed):
    result = check_gaussian_blur(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


# --------------------------------------------------------------------------- Exercise 2.4
def contrast_einsum(x, factor):
    """Equivalent rewrite: the grayscale mean as one weighted sum over channels and pixels."""
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype) if x.shape[1] == 3 else \
        torch.ones(1, dtype=x.dtype)
    mean = torch.einsum("nchw,c->n", x, weights) / (x.shape[2] * x.shape[3])
    return torch.lerp(mean.view(-1, 1, 1, 1).expand_as(x), x,
                      factor.to(x.dtype).view(-1, 1, 1, 1)).clamp(0, 1)


def _gray(x):
    return 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2] if x.shape[1] == 3 else x[:, 0]


def contrast_batch_mean(x, factor):
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * _gray(x).mean()).clamp(0, 1)


def contrast_channel_mean(x, factor):
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * x.mean(dim=(2, 3), keepdim=True)).clamp(0, 1)


def contrast_rgb_average(x, factor):
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * x.mean(dim=(1, 2, 3), keepdim=True)).clamp(0, 1)


def contrast_no_clamp(x, factor):
    f = factor.view(-1, 1, 1, 1)
    return f * x + (1 - f) * _gray(x).mean(dim=(1, 2)).view(-1, 1, 1, 1)


def contrast_half_grey(x, factor):
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * 0.5).clamp(0, 1)


def contrast_gray_image(x, factor):
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * _gray(x)[:, None]).clamp(0, 1)


def contrast_factor_on_mean(x, factor):
    f = factor.view(-1, 1, 1, 1)
    return ((1 - f) * x + f * _gray(x).mean(dim=(1, 2)).view(-1, 1, 1, 1)).clamp(0, 1)


def contrast_bgr(x, factor):
    gray = 0.114 * x[:, 0] + 0.587 * x[:, 1] + 0.299 * x[:, 2] if x.shape[1] == 3 else x[:, 0]
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * gray.mean(dim=(1, 2)).view(-1, 1, 1, 1)).clamp(0, 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_adjust_contrast_accepts_solution_rewrite_and_library(seed):
    for fn in (solutions.my_adjust_contrast, contrast_einsum, augment.adjust_contrast):
        assert check_adjust_contrast(fn, verbose=False, seed=seed).passed, fn


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(contrast_batch_mean, "whole batch"),
                                          (contrast_channel_mean, "each channel"),
                                          (contrast_rgb_average, "plain average"),
                                          (contrast_no_clamp, "not clamped"),
                                          (contrast_half_grey, "grey 0.5"),
                                          (contrast_gray_image, "saturation"),
                                          (contrast_factor_on_mean, "the factor weights"),
                                          (contrast_bgr, "wrong order")])
def test_adjust_contrast_rejects_mutants_with_a_hint(wrong, words, seed):
    result = check_adjust_contrast(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


@pytest.mark.parametrize("checker", [check_resized_crop, check_crop_params, check_gaussian_blur,
                                     check_adjust_contrast])
def test_unattempted_exercise_is_reported_not_raised(checker):
    result = checker(not_attempted, verbose=False)
    assert not result.passed and "not attempted" in result.message
