"""SwAV: predict the cluster code of one view from another view ("swapped prediction").

Caron, Misra, Mairal, Goyal, Bojanowski, Joulin, "Unsupervised Learning of Visual Features by
Contrasting Cluster Assignments", NeurIPS 2020, arXiv:2006.09882.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn

from sslbook import distributed
from sslbook.losses import sinkhorn, swav_loss_multicrop
from sslbook.methods.base import Method, encode_views
from sslbook.models import projection_mlp


class SwAV(Method):
    """Encoder + projector -> normalised ``z``; scores ``z . c_k`` against K unit prototypes.

    Codes ``q`` come from Sinkhorn-Knopp on the scores of the large crops
    (``views[:n_large_crops]``, no gradient); every other crop, large or small (multi-crop,
    Sec. 3.2), predicts them with ``softmax(scores / temperature)`` (Eq. 1-2,
    :func:`sslbook.losses.swav_loss_multicrop`). Defaults from the paper and the official
    ``main_swav.py``: projector 2048 -> 128, 3000 prototypes, temperature 0.1, epsilon 0.05,
    3 Sinkhorn iterations.

    Prototypes are renormalised to unit rows at construction and after every optimizer step
    (``on_step_end``), as the official code does at the start of each iteration. They are frozen
    for the first ``freeze_prototypes_epochs`` (the paper's first epoch, App. A; a run written
    before epochs counted ``freeze_prototypes_steps`` steps, which, when given, wins):
    ``on_before_step`` drops their gradient, so the optimizer skips them. For small batches (the
    official small-batch recipe: batch 256, queue 3840) a queue of the last ``queue_length``
    projections of each large crop is appended to the batch before Sinkhorn, so that the
    equipartition is taken over more samples; it is used from epoch ``queue_start_epochs``
    (``epoch_queue_starts = 15`` officially) once full. In several processes Sinkhorn
    normalises over the global batch, the queue holds the projections of all processes and
    each process appends its share of it; BatchNorm is global (the official ``--sync_bn``).
    """

    default_optimizer = {
        "name": "lars",
        "lr": 0.3,  # per 256 images: 4.8 at batch 4096
        "momentum": 0.9,
        "weight_decay": 1e-6,
        "warmup_epochs": 10,  # the batch-4096 recipe; the official batch-256 script has 0
        "source": "SwAV, arXiv:2006.09882, Appendix A (LARS, lr 4.8 at batch 4096, cosine to"
        " 0.0048, weight decay 1e-6) and the official main_swav.py and"
        " scripts/swav_800ep_pretrain.sh (batch 4096, --warmup_epochs 10;"
        " swav_400ep_bs256_pretrain.sh has --warmup_epochs 0)",
    }

    def __init__(
        self,
        encoder: nn.Module,
        hidden_dim: int = 2048,
        out_dim: int = 128,
        n_prototypes: int = 3000,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        freeze_prototypes_steps: int | None = None,
        queue_length: int = 0,
        n_large_crops: int = 2,
        freeze_prototypes_epochs: float = 1.0,
        queue_start_epochs: float = 15.0,
    ) -> None:
        super().__init__(encoder)
        if n_large_crops < 1:
            raise ValueError(f"n_large_crops must be >= 1, got {n_large_crops}")
        feature_dim = encoder.feature_dim  # set by sslbook.models.create
        self.projector = projection_mlp(feature_dim, hidden_dim, out_dim, num_layers=2)
        self.prototypes = nn.Linear(out_dim, n_prototypes, bias=False)  # C: K x D
        self._normalize_prototypes()
        # past projections of the large crops: n_large_crops x L x D
        self.register_buffer("queue", torch.zeros(n_large_crops, queue_length, out_dim))
        self.register_buffer("queue_count", torch.zeros((), dtype=torch.long))
        self.temperature, self.epsilon, self.sinkhorn_iterations = (
            temperature, epsilon, sinkhorn_iterations
        )  # fmt: skip
        self.n_large_crops, self.used_queue = n_large_crops, False
        self.record_config(locals())

    @torch.no_grad()
    def _normalize_prototypes(self) -> None:
        w = self.prototypes.weight  # K x D
        w.copy_(F.normalize(w, dim=1))

    def prototype_scores(self, z: torch.Tensor) -> torch.Tensor:
        """``z . c_k`` in float32 with autocast off, also under bf16/fp16 autocast: Sinkhorn
        takes ``exp(score / 0.05)``, where bf16's 8 mantissa bits would blur the codes (the
        library's rule for similarity matmuls, see :mod:`sslbook.losses`)."""
        device = z.device.type
        with torch.autocast(device, enabled=False) if torch.amp.is_autocast_available(device) \
                else contextlib.nullcontext():
            return F.linear(z.float(), self.prototypes.weight.float())  # N x K

    def freeze_steps(self) -> int:
        """Steps with frozen prototypes: ``freeze_prototypes_steps`` if given, else the epochs."""
        steps = self.config["freeze_prototypes_steps"]
        return self.epochs_to_steps(self.config["freeze_prototypes_epochs"]) if steps is None \
            else steps

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        n_views, n_large = len(views), self.n_large_crops
        if n_views < max(2, n_large):
            raise ValueError(f"SwAV needs >= max(2, n_large_crops={n_large}) views, got {n_views}")
        B = views[0].shape[0]
        if any(v.shape[0] != B for v in views):
            raise ValueError("all views must hold the same B images: batch sizes differ")
        h = encode_views(self.encoder, views)  # one encoder pass per crop size (official)
        z = F.normalize(self.projector(h).float(), dim=1)  # (V B) x D, float32
        scores = self.prototype_scores(z).chunk(n_views)  # V x (B x K): z . c_k, fp32
        length = self.queue.shape[1]
        self.used_queue = length > 0 and int(self.queue_count) >= length and (
            self.config["queue_start_epochs"] == 0
            or self.epoch >= self.config["queue_start_epochs"])
        codes = []
        with torch.no_grad():  # codes are targets: no gradient through Sinkhorn
            for i in range(n_large):
                s = scores[i].detach()  # B x K
                if self.used_queue:  # this process's share of the queue: L / W rows
                    s = torch.cat([s, self.prototype_scores(distributed.shard(self.queue[i]))])
                codes.append(sinkhorn(s, self.epsilon, self.sinkhorn_iterations,
                                      distributed_batch=True)[:B])  # B x K, global batch
        loss = swav_loss_multicrop(scores, n_large, self.temperature, codes=codes)
        if self.training and length > 0:
            z_large = z[: n_large * B].detach().view(n_large, B, -1)
            self._enqueue(distributed.gather(z_large.transpose(0, 1)).transpose(0, 1))
        return loss

    @torch.no_grad()
    def _enqueue(self, z_large: torch.Tensor) -> None:
        """Newest projections first; the oldest fall off the end (n_large x L x D)."""
        length = self.queue.shape[1]
        self.queue.copy_(torch.cat([z_large.to(self.queue.dtype), self.queue], dim=1)[:, :length])
        self.queue_count.add_(z_large.shape[1]).clamp_(max=length)

    def on_before_step(self, step: int, total_steps: int) -> None:
        """Freeze the prototypes for the first epoch (``freeze_steps()`` steps)."""
        if step < self.freeze_steps():
            self.prototypes.weight.grad = None  # the optimizer skips parameters without grad

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Project the prototypes back onto the unit sphere."""
        self._normalize_prototypes()
