"""Solutions to the exercises of Chapter 2 (functions named as the notebook's stubs)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def my_resized_crop(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor,
                    height: torch.Tensor, width: torch.Tensor, size: int) -> torch.Tensor:
    """Crop box i of image i and resize it to size x size (bilinear), all images at once."""
    n, _, H, W = x.shape
    j = torch.arange(size, dtype=x.dtype) + 0.5  # size: output pixel centres
    u = left[:, None] + j * width[:, None] / size - 0.5  # N x size: source columns
    v = top[:, None] + j * height[:, None] / size - 0.5  # N x size: source rows
    gx = (2 * u + 1) / W - 1  # N x size, normalised to [-1, 1] (align_corners=False)
    gy = (2 * v + 1) / H - 1  # N x size
    grid = torch.stack([gx[:, None, :].expand(n, size, size),  # x varies along columns
                        gy[:, :, None].expand(n, size, size)], dim=-1)  # N x size x size x 2
    return F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border",
                         align_corners=False)  # N x C x size x size


def my_crop_params(n: int, height: int, width: int, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3),
                   generator: torch.Generator | None = None):
    """n boxes (top, left, h, w), one at a time, as torchvision's RandomResizedCrop.get_params."""
    boxes = []
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(n):
        for _ in range(10):
            area = height * width * (scale[0] + (scale[1] - scale[0])
                                     * torch.rand(1, generator=generator).item())
            aspect = math.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0])
                              * torch.rand(1, generator=generator).item())
            w = round(math.sqrt(area * aspect))
            h = round(math.sqrt(area / aspect))
            if 0 < w <= width and 0 < h <= height:
                top = int(torch.randint(0, height - h + 1, (1,), generator=generator))
                left = int(torch.randint(0, width - w + 1, (1,), generator=generator))
                break
        else:  # fallback: the central crop, its aspect ratio clamped to `ratio`
            in_ratio = width / height
            if in_ratio < ratio[0]:
                w, h = width, round(width / ratio[0])
            elif in_ratio > ratio[1]:
                w, h = round(height * ratio[1]), height
            else:
                w, h = width, height
            top, left = (height - h) // 2, (width - w) // 2
        boxes.append((top, left, h, w))
    return tuple(torch.tensor(v) for v in zip(*boxes, strict=True))


def my_gaussian_blur(x, sigma, kernel_size):
    n, c, H, W = x.shape
    r = kernel_size // 2
    offsets = torch.arange(-r, r + 1, dtype=x.dtype)  # k
    kernel = torch.exp(-offsets**2 / (2 * sigma.to(x.dtype)[:, None] ** 2))  # N x k
    kernel = kernel / kernel.sum(dim=1, keepdim=True)  # each kernel sums to 1
    kernel = kernel.repeat_interleave(c, dim=0)  # N*C x k, one per channel of each image
    y = F.pad(x.reshape(1, n * c, H, W), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, kernel.view(n * c, 1, 1, kernel_size), groups=n * c)  # along rows
    y = F.conv2d(y, kernel.view(n * c, 1, kernel_size, 1), groups=n * c)  # along columns
    return y.view(n, c, H, W)


def my_adjust_contrast(x: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """Blend each image with the mean of its own grayscale, then clamp to [0, 1]."""
    if x.shape[1] == 3:
        gray = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]  # N x H x W
    else:
        gray = x[:, 0]  # N x H x W
    mean = gray.mean(dim=(1, 2)).view(-1, 1, 1, 1)  # N x 1 x 1 x 1
    f = factor.view(-1, 1, 1, 1)  # N x 1 x 1 x 1
    return (f * x + (1 - f) * mean).clamp(0.0, 1.0)
