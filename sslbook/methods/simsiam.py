"""SimSiam: a Siamese network that avoids collapse with a predictor and a stop-gradient.

Chen, He, "Exploring Simple Siamese Representation Learning", CVPR 2021, arXiv:2011.10566.
"""

from __future__ import annotations

import torch
from torch import nn

from sslbook.losses import negative_cosine
from sslbook.methods.base import Method
from sslbook.models import prediction_mlp, projection_mlp


class SimSiam(Method):
    """``f`` = encoder + projection MLP, ``h`` = prediction MLP; loss (Eq. 4 with Eq. 3)

        L = D(p1, stopgrad(z2)) / 2 + D(p2, stopgrad(z1)) / 2,   D = negative cosine.

    Defaults (Sec. 3, "Baseline settings"): ``dim = 2048`` projections, a bottleneck predictor
    2048 -> ``pred_dim = 512`` -> 2048. The ImageNet projector has 3 layers, each followed by BN
    (the last BN without affine parameters, as in the official ``builder.py``); for CIFAR the
    paper uses a 2-layer projector (Appendix D), our default for small images: pass
    ``proj_layers=3`` for the ImageNet one. ``stop_gradient=False`` removes the stop-gradient:
    the ablation of Sec. 4.1 / Fig. 2, which collapses; ``use_predictor=False`` removes ``h``
    (Sec. 4.2, Table 1), which collapses too. With more than two views the loss is the
    mean of ``D(p_i, sg(z_j))`` over all ordered pairs ``i != j`` (the formula above for two).

    The paper keeps the predictor's learning rate fixed (no cosine decay; Sec. 4.2 / Table 1):
    :meth:`param_groups` returns the optimizer groups with a ``fix_lr`` flag, as the official
    ``main_simsiam.py`` does; a training loop honours it by skipping the schedule for groups
    whose ``fix_lr`` is true.

    In several processes nothing is gathered (no negatives); BatchNorm is global
    (``sync_batch_norm``), as the official ``main_simsiam.py`` converts it to SyncBatchNorm.
    """

    default_optimizer = {
        "name": "sgd",
        "lr": 0.05,  # per 256 images
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "warmup_epochs": 0,  # 10 only for batches of 1024 and more (Sec. 4.3)
        "source": "SimSiam, arXiv:2011.10566, Sec. 3 (baseline settings: SGD, lr 0.05 x B/256,"
        " momentum 0.9, weight decay 1e-4, cosine decay)",
    }

    def __init__(
        self,
        encoder: nn.Module,
        dim: int = 2048,
        pred_dim: int = 512,
        proj_layers: int = 2,
        stop_gradient: bool = True,
        use_predictor: bool = True,
    ) -> None:
        super().__init__(encoder)
        feature_dim = encoder.feature_dim  # set by sslbook.models.create
        self.projector = projection_mlp(
            feature_dim, dim, dim, num_layers=proj_layers, batch_norm=True, last_bn=True
        )
        self.predictor = (  # h, bottleneck
            prediction_mlp(dim, pred_dim, dim) if use_predictor else nn.Identity())
        self.stop_gradient = stop_gradient
        self.record_config(locals())

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        if len(views) < 2:
            raise ValueError(f"SimSiam needs at least 2 views, got {len(views)}")
        z = [self.projector(self.encoder(x)) for x in views]  # V x (B x D), projections
        p = [self.predictor(zi) for zi in z]  # V x (B x D), predictions
        if self.stop_gradient:
            z = [zi.detach() for zi in z]  # stop-gradient: z is a constant target
        losses = [
            negative_cosine(p[i], z[j])
            for i in range(len(views))
            for j in range(len(views))
            if i != j
        ]
        return sum(losses) / len(losses)  # = D(p1, z2)/2 + D(p2, z1)/2 for two views

    def param_groups(self) -> list[dict]:
        """Optimizer groups: encoder + projector (scheduled lr), predictor (``fix_lr=True``)."""
        return [
            {"params": [*self.encoder.parameters(), *self.projector.parameters()], "fix_lr": False},
            {"params": list(self.predictor.parameters()), "fix_lr": True},
        ]
