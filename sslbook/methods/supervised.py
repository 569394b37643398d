"""Supervised pretraining: encoder + linear classifier, cross-entropy on human labels.

The reference every self-supervised encoder is compared with (SimCLR, arXiv:2002.05709,
Sec. 6, "supervised baseline"). It runs in :func:`sslbook.train.pretrain` like the methods,
which then passes the batch's labels: ``loss = method(views, labels)``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Supervised(nn.Module):
    """Encoder + linear classifier; cross-entropy of the first view against its label."""

    name = "supervised"
    needs_labels = True
    default_optimizer = {
        "name": "sgd",
        "lr": 0.1,  # per 256 images (Goyal et al., arXiv:1706.02677, Sec. 5.1)
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "warmup_epochs": 0,  # Goyal et al. ramp up to k x the batch-256 lr (Sec. 2.2)
        "source": "Goyal et al., arXiv:1706.02677 (SGD, momentum 0.9, lr 0.1 x B/256); weight "
        "decay 5e-4 as in the CIFAR recipes",
    }

    def __init__(self, encoder: nn.Module, num_classes: int = 10) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(encoder.feature_dim, num_classes)
        self.config = {"num_classes": num_classes}

    def forward(self, views: list[torch.Tensor], labels: torch.Tensor | None = None
                ) -> torch.Tensor:
        if labels is None:
            raise ValueError("Supervised needs labels: pretrain(..., labels=train_labels)")
        return F.cross_entropy(self.classifier(self.encoder(views[0])).float(), labels)

    def on_before_step(self, step: int, total_steps: int) -> None:
        """Nothing to do before the optimizer step."""

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Nothing to do after the optimizer step."""
