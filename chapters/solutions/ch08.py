"""Solutions to the exercises of Chapter 8 (SimCLR)."""

import torch
import torch.nn.functional as F


def my_positive_mask(n):
    """2N x 2N bool: True where rows i and j of cat([z1, z2]) are two views of one image."""
    idx = torch.arange(2 * n)  # 2N
    partner = torch.cat([idx[n:], idx[:n]])  # 2N, i + N for i < N, i - N for i >= N
    return idx.unsqueeze(0) == partner.unsqueeze(1)  # 2N x 2N


def my_nt_xent(z, pos_mask, temperature=0.5):
    """NT-Xent of 2N embeddings z (2N x D) with the positives marked in pos_mask (2N x 2N)."""
    z = F.normalize(z, dim=1)  # 2N x D, cosine similarity = dot product of unit vectors
    logits = z @ z.T / temperature  # 2N x 2N
    self_mask = torch.eye(len(z), dtype=torch.bool)
    logits = logits.masked_fill(self_mask, float("-inf"))  # an anchor is not its own candidate
    labels = pos_mask.float().argmax(dim=1)  # 2N, the column of each anchor's positive
    return F.cross_entropy(logits, labels)  # mean over the 2N anchors
