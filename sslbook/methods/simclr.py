"""SimCLR: contrast each view against the other images of the batch.

Chen, Kornblith, Norouzi, Hinton, "A Simple Framework for Contrastive Learning of Visual
Representations", ICML 2020, arXiv:2002.05709.
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from sslbook.losses import info_nce
from sslbook.methods.base import Method, encode_views
from sslbook.models import projection_mlp


class SimCLR(Method):
    """Shared encoder ``f`` + projection head ``g``; NT-Xent loss on ``z = g(f(x))``.

    Defaults follow the paper: the head is an MLP with one hidden layer as wide as the encoder
    output (2048 -> 2048 -> 128 for ResNet-50, Sec. 2.1 and Sec. 4.2) and ``out_dim = 128``;
    ``temperature = 0.5`` is the official CIFAR-10 recipe (the ImageNet default is 0.1).

    With more than two views the loss is the mean of ``info_nce`` over all pairs of views.
    All views of the same size go through the encoder as one batch and all views through the
    head as one batch, as in the official code, so BatchNorm sees both views together.

    In several processes the negatives are the global batch (``gather_distributed``, gathered
    with gradients) and BatchNorm is global (``sync_batch_norm``): the paper aggregates the BN
    mean and variance over all devices (Sec. 2.2, "Global BN"), so that a positive pair cannot
    be matched through the statistics of its own device.
    """

    default_optimizer = {
        "name": "lars",
        "lr": 0.3,  # per 256 images: 4.8 at batch 4096
        "momentum": 0.9,
        "weight_decay": 1e-6,
        "warmup_epochs": 10,
        "source": "SimCLR, arXiv:2002.05709, Sec. 2.3 (default setting: LARS, lr 0.3 x B/256,"
        " weight decay 1e-6, 10 warmup epochs then cosine)",
    }

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int | None = None,
        out_dim: int = 128,
        temperature: float = 0.5,
    ) -> None:
        super().__init__(encoder)
        feature_dim = encoder.feature_dim  # set by sslbook.models.create
        hidden_dim = feature_dim if hidden_dim is None else hidden_dim
        self.projector = projection_mlp(feature_dim, hidden_dim, out_dim, num_layers=2)
        self.temperature = temperature
        self.record_config(locals())

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        if len(views) < 2:
            raise ValueError(f"SimCLR needs at least 2 views, got {len(views)}")
        h = encode_views(self.encoder, views)  # (V B) x F
        z = self.projector(h).chunk(len(views))  # V x (B x D); the head's BatchNorm sees V B rows
        pairs = list(itertools.combinations(range(len(z)), 2))
        loss = sum(info_nce(z[i], z[j], temperature=self.temperature, gather_distributed=True)
                   for i, j in pairs)  # negatives from every process
        return loss / len(pairs)
