"""Solutions to the exercises of Chapter 3 (functions named as the notebook's stubs)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
           stride: int = 1, padding: int = 0) -> torch.Tensor:
    """Cross-correlation of x (B x C_in x H x W) with weight (C_out x C_in x k x k)."""
    x = F.pad(x, (padding, padding, padding, padding))  # zeros on all four sides
    _, _, h, w = x.shape
    _, _, kh, kw = weight.shape
    h_out, w_out = (h - kh) // stride + 1, (w - kw) // stride + 1
    rows = []
    for i in range(h_out):
        row = []
        for j in range(w_out):
            window = x[:, :, i * stride:i * stride + kh,
                       j * stride:j * stride + kw]  # B x C_in x k x k
            row.append(torch.einsum("bchw,ochw->bo", window, weight))  # B x C_out
        rows.append(torch.stack(row, dim=-1))  # B x C_out x W_out
    out = torch.stack(rows, dim=-2)  # B x C_out x H_out x W_out
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0,
                     dilation: int = 1) -> int:
    """floor((size + 2 padding - dilation (kernel_size - 1) - 1) / stride) + 1."""
    span = dilation * (kernel_size - 1) + 1  # pixels one window covers
    return (size + 2 * padding - span) // stride + 1


def patchify_reshape(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """B x C x H x W -> B x N x (C p p), patches row by row, each flattened as (C, p, p)."""
    b, c, h, w = images.shape
    p = patch_size
    x = images.reshape(b, c, h // p, p, w // p, p)  # B x C x rows x p x cols x p
    x = x.permute(0, 2, 4, 1, 3, 5)  # B x rows x cols x C x p x p
    return x.reshape(b, (h // p) * (w // p), c * p * p)  # B x N x (C p p)


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v; where mask is False a score becomes -inf (never attended)."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # ... x L_q x L_k
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v  # ... x L_q x d_v
