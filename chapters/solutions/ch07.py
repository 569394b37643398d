"""Solutions to the exercises of Chapter 7 (Self-supervised learning)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1, z2, temperature=0.5):
    """NT-Xent (SimCLR, arXiv:2002.05709, Eq. 1): 2N anchors, each with one positive and the
    2N - 2 other embeddings as negatives, cosine similarities divided by the temperature."""
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # 2N x D, unit rows
    logits = z @ z.T / temperature  # 2N x 2N
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))  # no self
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])  # 2N: partner index
    return F.cross_entropy(logits, positives)


def make_rotation_batch(images):
    """Each image rotated by 0, 90, 180, 270 degrees counter-clockwise, with targets 0-3."""
    views = torch.cat([torch.rot90(images, k, dims=(-2, -1)) for k in range(4)])  # 4B x C x H x W
    targets = torch.arange(4).repeat_interleave(len(images))  # 4B, grouped like the views
    return views, targets


def feature_std(z):
    """Std over samples of the L2-normalised rows, averaged over dimensions (SimSiam Fig. 2)."""
    return F.normalize(z, dim=1).std(dim=0).mean()
