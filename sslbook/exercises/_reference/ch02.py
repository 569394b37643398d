"""Reference answer of Chapter 2 (data augmentation): a Gaussian blur with a given sigma per
image (the other exercises of the chapter are checked against :mod:`sslbook.augment` itself)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["gaussian_blur"]


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Blur image i of x (N x C x H x W) with a normalised Gaussian kernel of std ``sigma[i]``
    and odd size ``kernel_size``, separably (rows, then columns), with reflect padding: what
    :func:`sslbook.augment.gaussian_blur` does once it has drawn sigma (SimCLR,
    arXiv:2002.05709, App. A: sigma in [0.1, 2.0], a kernel of about 10% of the side)."""
    n, c, H, W = x.shape
    r = kernel_size // 2
    t = torch.arange(-r, r + 1, dtype=x.dtype)  # k offsets
    kernel = torch.exp(-0.5 * (t / sigma.to(x.dtype)[:, None]) ** 2)  # N x k
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, 0)  # NC x k
    y = F.pad(x.reshape(1, n * c, H, W), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, kernel.view(n * c, 1, 1, kernel_size), groups=n * c)  # along rows
    y = F.conv2d(y, kernel.view(n * c, 1, kernel_size, 1), groups=n * c)  # along columns
    return y.view(n, c, H, W)
