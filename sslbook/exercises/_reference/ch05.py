"""Reference answer of Chapter 5: the confusion matrix (the other checkers compare with
PyTorch's own cross-entropy and with the properties of pair noise)."""

from __future__ import annotations

import torch

__all__ = ["confusion_reference"]


def confusion_reference(predicted: torch.Tensor, labels: torch.Tensor,
                        num_classes: int) -> torch.Tensor:
    """M[i, j] = number of examples of true class i predicted as class j (C x C, int64)."""
    flat = labels.long() * num_classes + predicted.long()  # N
    return torch.bincount(flat, minlength=num_classes ** 2).view(num_classes, num_classes)
