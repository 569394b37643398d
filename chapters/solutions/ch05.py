"""Solutions to the exercises of Chapter 5 (supervised learning)."""

from __future__ import annotations

import torch


def my_cross_entropy(logits: torch.Tensor, targets: torch.Tensor,
                  smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy against (1 - eps) one_hot + eps / C (arXiv:1512.00567, Sec. 7)."""
    shifted = logits - logits.max(dim=1, keepdim=True).values  # B x C, row maximum 0
    log_p = shifted - shifted.exp().sum(dim=1, keepdim=True).log()  # B x C
    num_classes = logits.shape[1]
    target = torch.full_like(log_p, smoothing / num_classes)  # B x C
    target[torch.arange(len(targets)), targets] += 1 - smoothing
    return -(target * log_p).sum(dim=1).mean()


def my_pair_noise(labels: torch.Tensor, fraction: float, pairs: torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """In every class c, exactly round(fraction * n_c) random examples get the label pairs[c]."""
    noisy = labels.clone()
    for c in labels.unique().tolist():
        members = torch.nonzero(labels == c).flatten()
        n_flip = round(fraction * len(members))
        chosen = members[torch.randperm(len(members), generator=generator)[:n_flip]]
        noisy[chosen] = pairs[c]
    return noisy


def my_confusion_matrix(predicted: torch.Tensor, labels: torch.Tensor,
                     num_classes: int) -> torch.Tensor:
    """M[i, j] = number of examples of true class i predicted as class j."""
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.long)
    matrix.index_put_((labels.long(), predicted.long()), torch.ones(len(labels),
                      dtype=torch.long), accumulate=True)
    return matrix
