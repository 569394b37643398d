"""BYOL: predict a slowly moving target network's projection of another view.

Grill et al., "Bootstrap Your Own Latent: A New Approach to Self-Supervised Learning",
NeurIPS 2020, arXiv:2006.07733.
"""

from __future__ import annotations

import torch
from torch import nn

from sslbook.losses import negative_cosine
from sslbook.methods.base import Method
from sslbook.methods.momentum import copy_frozen, cosine_tau, update_momentum
from sslbook.models import prediction_mlp, projection_mlp


class BYOL(Method):
    """Online network (encoder, projector, predictor) and target network (EMA copy, no predictor).

    Defaults from the paper (Sec. 3.3): projector and predictor are MLPs 4096 -> 256 with
    BatchNorm after the hidden layer; the target decay starts at ``tau_base`` and follows a
    cosine schedule to 1. ``tau_base = 0.99`` is the paper's value for runs of at most 300
    epochs (0.996 for 1000 epochs). ``tau_schedule="constant"`` keeps ``tau = tau_base``;
    with ``tau_base=0`` the target is a copy of the online network after every step.

    The loss is the paper's symmetrised ``L + L~`` (Eq. 2): for views ``v, v'``,
    ``||p/|p| - z'/|z'| ||^2 = 2 - 2 cos(p, z')`` with ``z'`` from the target network (no
    gradient), plus the same with the views swapped. With more than two views it is averaged
    over the pairs of views. ``use_predictor=False`` compares the online projection with the
    target directly: the ablation of Sec. 5 / Table 5, which collapses.

    In several processes nothing is gathered: each image's loss needs only its own two views,
    no negatives. BatchNorm is global (``sync_batch_norm``), as in the paper's cross-replica
    BatchNorm of the official JAX code.
    """

    default_optimizer = {
        "name": "lars",
        "lr": 0.2,  # per 256 images (0.45 for runs of at most 100 epochs)
        "momentum": 0.9,
        "weight_decay": 1.5e-6,
        "warmup_epochs": 10,
        "source": "BYOL, arXiv:2006.07733, Sec. 3.3 (LARS, lr 0.2 x B/256, weight decay 1.5e-6,"
        " 10 warmup epochs then cosine)",
    }

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 4096,
        out_dim: int = 256,
        tau_base: float = 0.99,
        tau_schedule: str = "cosine",
        use_predictor: bool = True,
    ) -> None:
        super().__init__(encoder)  # f_theta
        if tau_schedule not in ("cosine", "constant"):
            raise ValueError(f"tau_schedule must be 'cosine' or 'constant', got {tau_schedule!r}")
        if not 0.0 <= tau_base <= 1.0:
            raise ValueError(f"tau_base must lie in [0, 1], got {tau_base}")
        feature_dim = encoder.feature_dim  # set by sslbook.models.create
        self.projector = projection_mlp(feature_dim, hidden_dim, out_dim, num_layers=2)  # g
        self.predictor = (
            prediction_mlp(out_dim, hidden_dim, out_dim) if use_predictor else nn.Identity()  # q
        )
        self.target_encoder = copy_frozen(self.encoder)  # f_xi, never receives gradients
        self.target_projector = copy_frozen(self.projector)  # g_xi
        self.tau_base, self.tau_schedule = tau_base, tau_schedule
        self.tau = tau_base  # decay used by the latest update (for logging)
        self.record_config(locals())

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        if len(views) < 2:
            raise ValueError(f"BYOL needs at least 2 views, got {len(views)}")
        p = [self.predictor(self.projector(self.encoder(x))) for x in views]  # V x (B x D)
        with torch.no_grad():  # stop-gradient: targets come from the EMA network
            z_t = [self.target_projector(self.target_encoder(x)) for x in views]  # V x (B x D)
        losses = [
            2 + 2 * negative_cosine(p[i], z_t[j].detach())  # 2 - 2 cos(p_i, sg(z'_j))
            for i in range(len(views))
            for j in range(len(views))
            if i != j
        ]
        return 2 * sum(losses) / len(losses)  # L + L~ for two views; pair mean beyond

    def on_step_end(self, step: int, total_steps: int) -> None:
        """EMA update of the target: ``xi = tau xi + (1 - tau) theta`` (Sec. 3.1)."""
        if self.tau_schedule == "cosine":
            self.tau = cosine_tau(step, total_steps, self.tau_base)
        else:
            self.tau = self.tau_base
        update_momentum(self.encoder, self.target_encoder, self.tau)
        update_momentum(self.projector, self.target_projector, self.tau)
