"""Chapter 2 checkers: the solution and an equivalent rewrite pass, a bank of plausible wrong
answers (mutants) is rejected (with a hint naming the mistake where one is recognised), hidden
seeds change the inputs."""

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
def crop_swapped_sides(x, top, left, height, width, size):
    return solutions.my_resized_crop(x, top, left, width, height, size)


def crop_whole_image(x, top, left, height, width, size):
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def crop_align_corners(x, top, left, height, width, size):
    out = [F.interpolate(x[i:i + 1, :, top[i]:top[i] + height[i], left[i]:left[i] + width[i]],
                         size=(size, size), mode="bilinear", align_corners=True)
           for i in range(len(x))]
    return torch.cat(out)


def crop_loop(x, top, left, height, width, size):
    """Crop, then F.interpolate, one image at a time: right whenever boxes >= output."""
    out = [F.interpolate(x[i:i + 1, :, top[i]:top[i] + height[i], left[i]:left[i] + width[i]],
                         size=(size, size), mode="bilinear", align_corners=False)
           for i in range(len(x))]
    return torch.cat(out)


def crop_first_box_for_all(x, top, left, height, width, size):
    n = len(x)
    return solutions.my_resized_crop(x, top[:1].expand(n), left[:1].expand(n),
                                     height[:1].expand(n), width[:1].expand(n), size)


def test_resized_crop_accepts_solution_and_library():
    assert check_resized_crop(solutions.my_resized_crop, verbose=False).passed
    assert check_resized_crop(augment.resized_crop, verbose=False).passed
    assert check_resized_crop(crop_loop, verbose=False).passed


@pytest.mark.parametrize("wrong", [crop_swapped_sides, crop_whole_image, crop_align_corners,
                                   crop_first_box_for_all])
def test_resized_crop_rejects_wrong_answers(wrong):
    assert not check_resized_crop(wrong, verbose=False).passed


# --------------------------------------------------------------------------- Exercise 2.2
def _place(n, height, width, h, w, generator):
    top = (torch.rand(n, generator=generator) * (height - h + 1)).long()
    left = (torch.rand(n, generator=generator) * (width - w + 1)).long()
    return top, left, h, w


def params_uniform_ratio(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                         generator=None):
    """Aspect ratio uniform instead of log-uniform; sides clamped instead of retried."""
    area = height * width * (scale[0] + (scale[1] - scale[0]) * torch.rand(n, generator=generator))
    aspect = ratio[0] + (ratio[1] - ratio[0]) * torch.rand(n, generator=generator)
    w = torch.sqrt(area * aspect).round().long().clamp(1, width)
    h = torch.sqrt(area / aspect).round().long().clamp(1, height)
    return _place(n, height, width, h, w, generator)


def params_uniform_side(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                        generator=None):
    """The side uniform in sqrt(scale) instead of the area uniform in scale."""
    side = math.sqrt(scale[0]) + (math.sqrt(scale[1]) - math.sqrt(scale[0])) * torch.rand(
        n, generator=generator)
    h = (side * height).round().long().clamp(1, height)
    w = (side * width).round().long().clamp(1, width)
    return _place(n, height, width, h, w, generator)


def params_centred(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), generator=None):
    """Right sizes, but every box in the centre of the image."""
    _, _, h, w = augment.crop_params(n, height, width, scale, ratio, generator)
    return (height - h) // 2, (width - w) // 2, h, w


def params_outside(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), generator=None):
    """Right sizes, but top/left drawn in the whole image: boxes stick out."""
    _, _, h, w = augment.crop_params(n, height, width, scale, ratio, generator)
    top = torch.randint(0, height, (n,), generator=generator)
    left = torch.randint(0, width, (n,), generator=generator)
    return top, left, h, w


def params_unseeded(n, height, width, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), generator=None):
    return augment.crop_params(n, height, width, scale, ratio, generator=None)


def test_crop_params_accepts_solution_and_library():
    assert check_crop_params(solutions.my_crop_params, verbose=False).passed
    assert check_crop_params(augment.crop_params, verbose=False).passed


@pytest.mark.parametrize("wrong", [params_uniform_ratio, params_uniform_side, params_centred,
                                   params_outside, params_unseeded])
def test_crop_params_rejects_wrong_answers(wrong):
    assert not check_crop_params(wrong, verbose=False).passed


# --------------------------------------------------------------------------- Exercise 2.3
SEEDS = (None, 1, 12345, 2**31 - 1)


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


def test_hidden_seeds_for_the_other_checkers():
    for seed in (3, 2**31 - 1):
        assert check_resized_crop(solutions.my_resized_crop, verbose=False, seed=seed).passed
        assert not check_resized_crop(crop_swapped_sides, verbose=False, seed=seed).passed
        assert check_crop_params(solutions.my_crop_params, verbose=False, seed=seed).passed
        assert not check_crop_params(params_centred, verbose=False, seed=seed).passed
        assert check_adjust_contrast(solutions.my_adjust_contrast, verbose=False,
                                     seed=seed).passed
        assert not check_adjust_contrast(contrast_channel_mean, verbose=False, seed=seed).passed


# --------------------------------------------------------------------------- Exercise 2.4
def contrast_batch_mean(x, factor):
    gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2] if x.shape[1] == 3 else x[:, 0]
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * gray.mean()).clamp(0, 1)


def contrast_channel_mean(x, factor):
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * x.mean(dim=(2, 3), keepdim=True)).clamp(0, 1)


def contrast_no_clamp(x, factor):
    gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2] if x.shape[1] == 3 else x[:, 0]
    f = factor.view(-1, 1, 1, 1)
    return f * x + (1 - f) * gray.mean(dim=(1, 2)).view(-1, 1, 1, 1)


def contrast_half_grey(x, factor):
    f = factor.view(-1, 1, 1, 1)
    return (f * x + (1 - f) * 0.5).clamp(0, 1)


def test_adjust_contrast_accepts_solution():
    assert check_adjust_contrast(solutions.my_adjust_contrast, verbose=False).passed


@pytest.mark.parametrize("wrong", [contrast_batch_mean, contrast_channel_mean, contrast_no_clamp,
                                   contrast_half_grey])
def test_adjust_contrast_rejects_wrong_answers(wrong):
    assert not check_adjust_contrast(wrong, verbose=False).passed


@pytest.mark.parametrize("checker", [check_resized_crop, check_crop_params, check_gaussian_blur,
                                     check_adjust_contrast])
def test_unattempted_exercise_is_reported_not_raised(checker):
    result = checker(not_attempted, verbose=False)
    assert not result.passed and "not attempted" in result.message
