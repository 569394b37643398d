"""Chapter 3 checkers accept the solutions and reject plausible wrong answers with a hint, on the
default inputs and on hidden seeds."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from solutions_loader import load_solutions, not_attempted

from sslbook.exercises.ch03 import (
    check_attention,
    check_conv2d,
    check_conv_output_size,
    check_patchify,
)

solutions = load_solutions("ch03")
SEEDS = (None, 1, 12345, 2**31 - 1)


# --------------------------------------------------------------------------- Exercise 3.1
def conv_flipped_kernel(x, weight, bias=None, stride=1, padding=0):
    """The textbook convolution (kernel flipped), not what nn.Conv2d computes."""
    return solutions.conv2d(x, weight.flip(-2, -1), bias, stride, padding)


def conv_ignoring_padding(x, weight, bias=None, stride=1, padding=0):
    return solutions.conv2d(x, weight, bias, stride, 0)


def conv_ignoring_stride(x, weight, bias=None, stride=1, padding=0):
    return solutions.conv2d(x, weight, bias, 1, padding)


def conv_padding_one_side(x, weight, bias=None, stride=1, padding=0):
    x = F.pad(x, (padding, 0, padding, 0))
    return solutions.conv2d(x, weight, bias, stride, 0)


def conv_without_bias(x, weight, bias=None, stride=1, padding=0):
    return solutions.conv2d(x, weight, None, stride, padding)


@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_accepts_solution_and_library(seed):
    assert check_conv2d(solutions.conv2d, verbose=False, seed=seed).passed
    assert check_conv2d(lambda x, w, b=None, s=1, p=0: F.conv2d(x, w, b, s, p),
                        verbose=False, seed=seed).passed


@pytest.mark.parametrize("wrong, word", [(conv_flipped_kernel, "flipped"),
                                         (conv_ignoring_padding, "shape"),
                                         (conv_ignoring_stride, "shape"),
                                         (conv_padding_one_side, "shape"),
                                         (conv_without_bias, "bias")])
@pytest.mark.parametrize("seed", SEEDS)
def test_conv2d_rejects_wrong_answers(wrong, word, seed):
    result = check_conv2d(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert word in result.message


# --------------------------------------------------------------------------- Exercise 3.2
def size_without_floor(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride + 1


def size_rounded(size, kernel_size, stride=1, padding=0, dilation=1):
    return round((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1


def size_padding_once(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + padding - dilation * (kernel_size - 1) - 1) // stride + 1


def size_ignoring_dilation(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - kernel_size) // stride + 1


def size_ceil(size, kernel_size, stride=1, padding=0, dilation=1):
    return math.ceil((size + 2 * padding - dilation * (kernel_size - 1) - 1) / stride) + 1


def size_count_windows(size, kernel_size, stride=1, padding=0, dilation=1):
    """Equivalent rewrite: count the window positions one by one."""
    span = dilation * (kernel_size - 1) + 1
    return len(range(0, size + 2 * padding - span + 1, stride))


def size_dilation_times_kernel(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * kernel_size) // stride + 1


def size_without_plus_one(size, kernel_size, stride=1, padding=0, dilation=1):
    return (size + 2 * padding - dilation * (kernel_size - 1) - 1) // stride


def size_ignoring_stride(size, kernel_size, stride=1, padding=0, dilation=1):
    return size + 2 * padding - dilation * (kernel_size - 1)


@pytest.mark.parametrize("seed", SEEDS)
def test_conv_output_size_accepts_solution_and_rewrite(seed):
    assert check_conv_output_size(solutions.conv_output_size, verbose=False, seed=seed).passed
    assert check_conv_output_size(size_count_windows, verbose=False, seed=seed).passed


def test_hidden_seeds_change_the_settings():
    from sslbook.exercises.ch03 import _size_settings

    default, one, other = _size_settings(None), _size_settings(1), _size_settings(2)
    assert one != other and set(one) - set(default)
    assert max(size for size, *_ in one) > 40 and max(d for *_, d in one) > 2


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, words", [(size_without_floor, "not a whole number"),
                                          (size_rounded, "rounded"),
                                          (size_padding_once, "padding is counted once"),
                                          (size_ignoring_dilation, "dilation is ignored"),
                                          (size_dilation_times_kernel, "multiplies the whole"),
                                          (size_ceil, "ceil"),
                                          (size_without_plus_one, "+ 1 is missing"),
                                          (size_ignoring_stride, "stride is ignored")])
def test_conv_output_size_rejects_wrong_answers(wrong, words, seed):
    result = check_conv_output_size(wrong, verbose=False, seed=seed)
    assert not result.passed and words in result.message, result.message


# --------------------------------------------------------------------------- Exercise 3.3
def patchify_channels_last(images, patch_size):
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(b, -1, c * p * p)


def patchify_column_major(images, patch_size):
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 4, 2, 1, 3, 5)
    return x.reshape(b, -1, c * p * p)


def patchify_plain_reshape(images, patch_size):
    b, c, h, w = images.shape
    return images.reshape(b, (h // patch_size) * (w // patch_size), -1)


def patchify_rows_of_pixels(images, patch_size):
    """Cuts the image into strips of p*p consecutive pixels of each row: not squares."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 5, 3)
    return x.reshape(b, -1, c * p * p)


def patchify_conv(images, patch_size):
    """Equivalent rewrite: a convolution with one-hot kernels, kernel = stride = p, reads each
    patch channel first, as ViT's conv_proj does."""
    c, p = images.shape[1], patch_size
    eye = torch.eye(c * p * p, dtype=images.dtype).view(c * p * p, c, p, p)
    return F.conv2d(images, eye, stride=p).flatten(2).transpose(1, 2)


@pytest.mark.parametrize("seed", SEEDS)
def test_patchify_accepts_solution_and_rewrite(seed):
    assert check_patchify(solutions.patchify_reshape, verbose=False, seed=seed).passed
    assert check_patchify(patchify_conv, verbose=False, seed=seed).passed


@pytest.mark.parametrize("wrong, word", [(patchify_channels_last, "(C, p, p)"),
                                         (patchify_column_major, "row by row"),
                                         (patchify_plain_reshape, "square"),
                                         (patchify_rows_of_pixels, "(C, p, p)")])
@pytest.mark.parametrize("seed", SEEDS)
def test_patchify_rejects_wrong_answers(wrong, word, seed):
    result = check_patchify(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert word in result.message


# --------------------------------------------------------------------------- Exercise 3.4
def attention_unscaled(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def attention_softmax_over_queries(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-2) @ v


def attention_scaled_by_d(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / q.shape[-1]
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


def attention_mask_to_zero(q, k, v, mask=None):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores * mask
    return scores.softmax(-1) @ v


def attention_ignoring_mask(q, k, v, mask=None):
    return solutions.masked_attention(q, k, v)


@pytest.mark.parametrize("seed", SEEDS)
def test_attention_accepts_solution_and_library(seed):
    assert check_attention(solutions.masked_attention, verbose=False, seed=seed).passed
    assert check_attention(lambda q, k, v, mask=None: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask), verbose=False, seed=seed).passed


@pytest.mark.parametrize("wrong, word", [(attention_unscaled, "sqrt"),
                                         (attention_softmax_over_queries, "last axis"),
                                         (attention_scaled_by_d, "last axis"),
                                         (attention_mask_to_zero, "-inf"),
                                         (attention_ignoring_mask, "mask was ignored")])
@pytest.mark.parametrize("seed", SEEDS)
def test_attention_rejects_wrong_answers(wrong, word, seed):
    result = check_attention(wrong, verbose=False, seed=seed)
    assert not result.passed
    assert word in result.message


# --------------------------------------------------------------------------- all checkers
@pytest.mark.parametrize("checker", [check_conv2d, check_conv_output_size, check_patchify,
                                     check_attention])
def test_unfinished_stub_is_reported_not_raised(checker, capsys):
    result = checker(not_attempted)
    assert not result.passed and "not attempted" in result.message
    assert "FAIL" in capsys.readouterr().out
    crashing = checker(lambda *args: 1 / 0, verbose=False)
    assert not crashing.passed and "ZeroDivisionError" in crashing.message
