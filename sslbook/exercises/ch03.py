"""Checkers for Chapter 3 (CNN and Transformer encoders): convolution, output sizes, patches,
attention.

Each checker runs the student's function on random inputs and compares it with PyTorch's own
operator (``F.conv2d``, ``F.unfold``, ``F.scaled_dot_product_attention``) or with the shape a real
convolution produces; it returns a :class:`~sslbook.exercises.CheckResult` and never raises.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from sslbook.exercises import CheckResult, close, run_check


def _as_tensor(value) -> torch.Tensor:
    return torch.as_tensor(value, dtype=torch.float64)


# --------------------------------------------------------------------------- Exercise 3.1
# (batch, C_in, H, W, C_out, k, stride, padding, bias)
_CONV_CASES = (
    (2, 3, 7, 9, 4, 3, 1, 0, True),
    (2, 2, 8, 8, 3, 3, 1, 1, False),
    (1, 3, 9, 11, 2, 3, 2, 1, True),
    (2, 1, 10, 7, 5, 2, 2, 0, True),
    (1, 2, 6, 6, 3, 5, 3, 2, False),
)


def check_conv2d(fn: Callable, verbose: bool = True,
                 seed: int | None = None) -> CheckResult:
    """Check ``fn(x, weight, bias=None, stride=1, padding=0)`` against ``F.conv2d``.

    ``x`` is B x C_in x H x W (H and W may differ), ``weight`` C_out x C_in x k x k, ``bias``
    C_out or None; the answer is the cross-correlation that ``nn.Conv2d`` computes (the kernel
    is not flipped), with ``padding`` zeros on every side and the window moved by ``stride``.
    """

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(31 if seed is None else seed + 31)
        for b, c_in, h, w, c_out, k, stride, padding, with_bias in _CONV_CASES:
            x = torch.randn(b, c_in, h, w, generator=generator)  # B x C_in x H x W
            weight = torch.randn(c_out, c_in, k, k, generator=generator)  # C_out x C_in x k x k
            bias = torch.randn(c_out, generator=generator) if with_bias else None
            expected = F.conv2d(x, weight, bias, stride=stride, padding=padding)
            got = _as_tensor(fn(x.clone(), weight.clone(),
                                None if bias is None else bias.clone(), stride, padding))
            setting = f"stride={stride}, padding={padding}, kernel {k}x{k}, input {h}x{w}"
            if tuple(got.shape) != tuple(expected.shape):
                return False, (f"with {setting} the output has shape {tuple(got.shape)}, expected "
                               f"{tuple(expected.shape)}: pad first, then the output side is "
                               "(H + 2 padding - k) // stride + 1")
            ok, hint = close(got, expected, atol=1e-4, rtol=1e-4)
            if not ok:
                flipped = F.conv2d(x, weight.flip(-2, -1), bias, stride=stride, padding=padding)
                if close(got, flipped, atol=1e-4, rtol=1e-4)[0]:
                    return False, (f"with {setting}: you flipped the kernel (the textbook "
                                   "convolution); nn.Conv2d computes a cross-correlation, "
                                   "multiply each window by the kernel as it is")
                if bias is not None and close(got, expected - bias.view(1, -1, 1, 1),
                                              atol=1e-4, rtol=1e-4)[0]:
                    return False, f"with {setting}: add the bias, one value per output channel"
                return False, f"with {setting}: {hint}"
        return True, "matches F.conv2d for every stride, padding and kernel size tried"

    return run_check("Exercise 3.1 - 2-D convolution with stride and padding", test, verbose)


# --------------------------------------------------------------------------- Exercise 3.2
def _true_output_size(size: int, kernel_size: int, stride: int, padding: int,
                      dilation: int) -> int:
    """The side length a real convolution produces (not a formula: ask F.conv2d)."""
    x = torch.zeros(1, 1, size, 1)
    w = torch.zeros(1, 1, kernel_size, 1)
    return F.conv2d(x, w, stride=(stride, 1), padding=(padding, 0),
                    dilation=(dilation, 1)).shape[2]


def _size_variants(size: int, k: int, stride: int, padding: int, dilation: int) -> dict:
    """Plausible wrong answers of Exercise 3.2, to name a student's mistake."""
    span = dilation * (k - 1) + 1  # the window's extent
    return {
        "the division is rounded: a window either fits or not, so take the floor (//)":
            round((size + 2 * padding - span) / stride) + 1,
        "the division is rounded up (ceil): that is ceil_mode=True; a convolution takes the "
        "floor (//)": -((size + 2 * padding - span) // -stride) + 1,
        "the padding is counted once: it is added on both sides, 2 * padding":
            (size + padding - span) // stride + 1,
        "the dilation is ignored: a dilated window spans dilation * (kernel_size - 1) + 1 "
        "pixels": (size + 2 * padding - k) // stride + 1,
        "the dilation multiplies the whole kernel: the window spans dilation * (kernel_size - 1)"
        " + 1 pixels, not dilation * kernel_size": (size + 2 * padding - dilation * k) // stride
        + 1,
        "the stride is ignored: divide the room left by the stride, then add 1":
            size + 2 * padding - span + 1,
        "the + 1 is missing: the first window counts too": (size + 2 * padding - span) // stride,
    }


def _size_settings(seed: int | None) -> list[tuple[int, int, int, int, int]]:
    """(size, kernel_size, stride, padding, dilation) for which a convolution is defined: every
    combination of a small grid by default, 600 random ones (sides up to 512, kernels up to 11,
    strides up to 5, paddings up to 5, dilations up to 4) with a seed."""
    if seed is None:
        grid = [(size, k, s, p, d) for d in (1, 2) for k in (1, 2, 3, 5, 7) for s in (1, 2, 3)
                for p in range(4) for size in range(1, 41)]
    else:
        g = torch.Generator().manual_seed(seed)
        columns = [torch.randint(low, high, (600,), generator=g).tolist()
                   for low, high in ((1, 513), (1, 12), (1, 6), (0, 6), (1, 5))]
        grid = list(zip(*columns, strict=True))
    return [(size, k, s, p, d) for size, k, s, p, d in grid
            if size + 2 * p >= d * (k - 1) + 1]  # otherwise no window fits: undefined


def check_conv_output_size(fn: Callable, verbose: bool = True,
                           seed: int | None = None) -> CheckResult:
    """Check ``fn(size, kernel_size, stride=1, padding=0, dilation=1) -> int``.

    Compared with the side length that ``F.conv2d`` actually produces for every combination of
    input sizes 1-40, kernels 1/2/3/5/7, strides 1-3, paddings 0-3 and dilations 1-2 for which a
    convolution is defined; with a ``seed`` (the grader's hidden checks), on 600 settings drawn
    from it in wider ranges. The same formula gives the output of ``nn.MaxPool2d``. Rounding,
    ceil, padding counted once, dilation ignored or multiplying the kernel, stride ignored and a
    missing + 1 are named.
    """

    def test() -> tuple[bool, str]:
        settings = _size_settings(seed)
        answers, wrong = [], []
        for size, kernel_size, stride, padding, dilation in settings:
            got = fn(size, kernel_size, stride, padding, dilation)
            if isinstance(got, torch.Tensor):
                got = got.item()
            setting = (f"size={size}, kernel_size={kernel_size}, stride={stride}, "
                       f"padding={padding}, dilation={dilation}")
            if isinstance(got, float) and not got.is_integer():
                return False, (f"{setting} gave {got}, not a whole number: a window either "
                               "fits or it does not (floor)")
            expected = _true_output_size(size, kernel_size, stride, padding, dilation)
            answers.append(got)
            if got != expected and not wrong:
                wrong = [f"{setting}: got {got}, a convolution gives {expected}"]
        if not wrong:
            return True, f"right for all {len(settings)} settings tried, dilation included"
        # Name the mistake whose formula gives every one of the answers.
        for mistake in _size_variants(1, 1, 1, 0, 1):
            if all(got == _size_variants(*setting)[mistake]
                   for got, setting in zip(answers, settings, strict=True)):
                return False, f"{wrong[0]}; {mistake}"
        return False, wrong[0]

    return run_check("Exercise 3.2 - the output size of a convolution", test, verbose)


# --------------------------------------------------------------------------- Exercise 3.3
def check_patchify(fn: Callable, verbose: bool = True,
                   seed: int | None = None) -> CheckResult:
    """Check ``fn(images, patch_size) -> B x N x (C * p * p)`` against ``F.unfold``.

    Patches are taken row by row (left to right, then top to bottom), and each is flattened
    channel first, (C, p, p): the order in which ``conv_proj`` of torchvision's ViT, a
    convolution with kernel = stride = p, reads them. The student's code must not use
    ``F.unfold`` or ``Tensor.unfold`` (the checker cannot see that; the exercise asks for
    ``reshape`` and ``permute``).
    """

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(33 if seed is None else seed + 33)
        for b, c, h, w, p in ((2, 1, 8, 8, 4), (2, 3, 8, 12, 4), (1, 3, 6, 9, 3),
                              (3, 2, 10, 4, 2)):
            x = torch.randn(b, c, h, w, generator=generator)  # B x C x H x W
            expected = F.unfold(x, p, stride=p).transpose(1, 2)  # B x N x (C p p)
            got = _as_tensor(fn(x.clone(), p))
            setting = f"images {b} x {c} x {h} x {w}, patch_size={p}"
            n = (h // p) * (w // p)
            if tuple(got.shape) != tuple(expected.shape):
                return False, (f"with {setting} the answer has shape {tuple(got.shape)}, "
                               f"expected {tuple(expected.shape)}: {n} patches of "
                               f"C * p * p = {c * p * p} numbers each")
            ok, hint = close(got, expected, atol=1e-6, rtol=1e-6)
            if not ok:
                same_set = close(got.sort(dim=2).values, expected.sort(dim=2).values,
                                 atol=1e-6, rtol=1e-6)[0]
                if same_set:
                    return False, (f"with {setting}: each patch holds the right pixels in the "
                                   "wrong order; flatten a patch as (C, p, p), channel first")
                distances = torch.cdist(got, expected.double())  # B x N x N
                if bool((distances.min(dim=2).values < 1e-6).all()):
                    return False, (f"with {setting}: the right patches in the wrong order; "
                                   "number them row by row (left to right, then down)")
                return False, (f"with {setting}: {hint}; a patch must hold a p x p square of "
                               "neighbouring pixels")
        return True, "matches F.unfold(x, p, stride=p).transpose(1, 2), non-square images too"

    return run_check("Exercise 3.3 - image to patches", test, verbose)


# --------------------------------------------------------------------------- Exercise 3.4
def check_attention(fn: Callable, verbose: bool = True,
                    seed: int | None = None) -> CheckResult:
    """Check ``fn(q, k, v, mask=None)`` against ``F.scaled_dot_product_attention``.

    ``q`` is ... x L_q x d, ``k`` ... x L_k x d, ``v`` ... x L_k x d_v and ``mask`` (optional) a
    boolean ... x L_q x L_k tensor, True where a query may look at a key (the convention of
    ``F.scaled_dot_product_attention``); the answer is softmax(q k^T / sqrt(d)) v with masked
    scores set to minus infinity before the softmax. Queries and keys differ in number, so a
    softmax over the wrong axis is caught.
    """

    def test() -> tuple[bool, str]:
        generator = torch.Generator().manual_seed(34 if seed is None else seed + 34)
        for shape_q, l_k, d_v, with_mask in (((2, 5, 16), 7, 8, False),
                                             ((2, 3, 4, 64), 6, 5, False),
                                             ((3, 6, 8), 6, 8, True),
                                             ((2, 2, 5, 32), 9, 4, True)):
            *batch, l_q, d = shape_q
            q = 2 * torch.randn(*batch, l_q, d, generator=generator)  # ... x L_q x d
            k = 2 * torch.randn(*batch, l_k, d, generator=generator)  # ... x L_k x d
            v = torch.randn(*batch, l_k, d_v, generator=generator)  # ... x L_k x d_v
            mask = None
            if with_mask:
                mask = torch.rand(*batch, l_q, l_k, generator=generator) > 0.4  # ... x L_q x L_k
                mask[..., 0] = True  # every query may see at least one key
            expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
            got = _as_tensor(fn(q.clone(), k.clone(), v.clone(), None if mask is None
                                else mask.clone()))
            setting = (f"q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)}"
                       + (", with a mask" if with_mask else ""))
            if tuple(got.shape) != tuple(expected.shape):
                return False, (f"with {setting} the output has shape {tuple(got.shape)}, "
                               f"expected {tuple(expected.shape)}: one mixture of the values per "
                               "query")
            ok, hint = close(got, expected, atol=1e-4, rtol=1e-4)
            if not ok:
                scores = q @ k.transpose(-2, -1)  # ... x L_q x L_k
                if with_mask:
                    scores = scores.masked_fill(~mask, float("-inf"))
                if close(got, scores.softmax(-1) @ v, atol=1e-4, rtol=1e-4)[0]:
                    return False, (f"with {setting}: the scores are not scaled; divide q k^T by "
                                   f"sqrt(d) = sqrt({d}) before the softmax")
                if with_mask:
                    unmasked = F.scaled_dot_product_attention(q, k, v)
                    if close(got, unmasked, atol=1e-4, rtol=1e-4)[0]:
                        return False, f"with {setting}: the mask was ignored"
                return False, (f"with {setting}: {hint}; the softmax runs over the keys (the "
                               "last axis of the scores), and masked scores become -inf, not 0")
        return True, "matches F.scaled_dot_product_attention, with and without a mask"

    return run_check("Exercise 3.4 - scaled dot-product attention with a mask", test, verbose)


__all__ = ["check_attention", "check_conv2d", "check_conv_output_size", "check_patchify"]
