"""MoCo: contrast queries against a queue of keys from a momentum encoder.

He, Fan, Wu, Xie, Girshick, "Momentum Contrast for Unsupervised Visual Representation Learning",
CVPR 2020, arXiv:1911.05722 (v1); Chen, Fan, Girshick, He, "Improved Baselines with Momentum
Contrastive Learning", arXiv:2003.04297 (v2: MLP head, temperature 0.2).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from sslbook import distributed
from sslbook.losses import info_nce_queue
from sslbook.methods.base import Method
from sslbook.methods.momentum import copy_frozen, update_momentum
from sslbook.methods.splitbn import split_batchnorm, splitting
from sslbook.models import projection_mlp


class MoCo(Method):
    """Query encoder ``f_q`` (trained) and key encoder ``f_k`` (EMA of ``f_q``), queue of keys.

    Two defaults are the small-data ones: the paper's queue holds ``K = 65536`` keys and its
    momentum is ``m = 0.999`` (arXiv:1911.05722, Sec. 4); we default to ``queue_size = 4096``
    and ``momentum = 0.99``, the values of the official CIFAR-10 demo (which also uses T = 0.1).
    ``temperature=None`` picks 0.2 for v2 (arXiv:2003.04297, Sec. 2) and 0.07 for v1.
    v1 has a linear head, v2 an MLP head fc-ReLU-fc without BatchNorm (``hidden_dim``
    defaults to the encoder width, 2048 for ResNet-50). ``head_batch_norm=True`` puts BN in its
    hidden layer, fc-BN-ReLU-fc, as SimCLR's head and MoCo v3's (Chen, Xie, He, "An Empirical
    Study of Training Self-Supervised Vision Transformers", ICCV 2021, arXiv:2104.02057, which
    has BN in every head layer).

    ``symmetric=True`` (the demo's ``--symmetric`` option; MoCo v3) sums the two directions,
    ``q(view 0) -> k(view 1)`` and ``q(view 1) -> k(view 0)``, and enqueues both key batches
    (2B keys per step); ``symmetric=False`` is the v1/v2 loss: queries from view 0 only.

    Shuffle BN (Sec. 3.3). BatchNorm statistics are shared by the samples of a batch, so a
    query and its positive key can "cheat": if both are normalised with statistics of the same
    images, the model can match them through these statistics instead of through the image
    content, and the loss drops without good features. MoCo computes BN per GPU and shuffles the
    key batch across GPUs. On one device we do the same with ``bn_splits`` sub-batches (the
    demo's SplitBatchNorm, :mod:`sslbook.methods.splitbn`: the BatchNorm layers of the encoders
    and heads take their statistics per contiguous chunk, in one forward): keys are shuffled,
    normalised per chunk, and unshuffled, so the statistics for ``q_i`` and ``k_i`` come from
    different (random) subsets of the batch. ``bn_splits=1`` is plain BN over the whole batch; a
    network without BatchNorm is not split at all; ``shuffle_bn=False`` keeps the chunks but
    not the shuffle (the leaky ablation of Sec. 3.3).

    In several processes this is the paper's own shuffle BN: BatchNorm stays per process
    (``sync_batch_norm = False``; global statistics would let ``q_i`` and ``k_i`` share them
    again), the key images of all processes are gathered, shuffled with one permutation, encoded
    ``bn_splits`` chunks per process, gathered back and unshuffled; W processes thus make
    W x ``bn_splits`` BatchNorm groups. The queue receives the keys of all processes.
    """

    sync_batch_norm = False  # shuffle BN needs per-process statistics (Sec. 3.3)

    default_optimizer = {
        "name": "sgd",
        "lr": 0.03,  # per 256 images
        "momentum": 0.9,
        "weight_decay": 1e-4,
        "warmup_epochs": 0,  # none in v1 (step schedule) or v2 (cosine), as main_moco.py
        "source": "MoCo, arXiv:1911.05722, Sec. 4.1 (SGD, lr 0.03 at batch 256, momentum 0.9,"
        " weight decay 1e-4); v2 adds a cosine schedule (arXiv:2003.04297), no warm-up",
    }

    def __init__(
        self,
        encoder: nn.Module,
        version: int = 2,
        hidden_dim: int | None = None,
        out_dim: int = 128,
        queue_size: int = 4096,
        momentum: float = 0.99,
        temperature: float | None = None,
        symmetric: bool = True,
        shuffle_bn: bool = True,
        bn_splits: int = 8,
        head_batch_norm: bool = False,
    ) -> None:
        super().__init__(encoder)  # f_q
        if version not in (1, 2):
            raise ValueError(f"version must be 1 or 2, got {version}")
        if version == 1 and head_batch_norm:
            raise ValueError("head_batch_norm needs the MLP head of version 2 (v1's is linear)")
        if bn_splits < 1:
            raise ValueError(f"bn_splits must be >= 1, got {bn_splits}")
        feature_dim = encoder.feature_dim  # set by sslbook.models.create
        hidden_dim = feature_dim if hidden_dim is None else hidden_dim
        temperature = (0.2 if version == 2 else 0.07) if temperature is None else temperature
        if version == 1:
            self.projector = nn.Linear(feature_dim, out_dim)
        else:
            self.projector = projection_mlp(feature_dim, hidden_dim, out_dim,
                                            batch_norm=head_batch_norm)
        # BatchNorm statistics per chunk in all BN layers (none: no split); the copies inherit it
        self.split = bn_splits > 1 and sum(split_batchnorm(m)
                                           for m in (self.encoder, self.projector)) > 0
        self.encoder_k = copy_frozen(self.encoder)  # f_k, never receives gradients
        self.projector_k = copy_frozen(self.projector)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, out_dim), dim=1))  # KxD
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))
        self.momentum, self.temperature = momentum, temperature
        self.symmetric, self.shuffle_bn, self.bn_splits = symmetric, shuffle_bn, bn_splits
        self.record_config(locals())

    def _split_forward(self, encoder: nn.Module, projector: nn.Module, x: torch.Tensor):
        """``projector(encoder(x))`` in one forward, BN statistics per chunk of ``bn_splits``."""
        with splitting(self.bn_splits if self.split else 1, encoder, projector):
            return projector(encoder(x))  # N x D

    def _query(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self._split_forward(self.encoder, self.projector, x), dim=1)  # N x D

    @torch.no_grad()  # keys: no gradient to the key encoder
    def _key(self, x: torch.Tensor) -> torch.Tensor:
        if not self.shuffle_bn:
            k = self._split_forward(self.encoder_k, self.projector_k, x)  # N x D
            return F.normalize(k.float(), dim=1)  # N x D, float32 even under autocast
        x = distributed.gather(x)  # (W N) x ...: the key images of every process
        perm = distributed.broadcast(torch.randperm(x.shape[0], device=x.device))  # one for all
        k = self._split_forward(self.encoder_k, self.projector_k, distributed.shard(x[perm]))
        k = distributed.gather(k)[torch.argsort(perm)]  # (W N) x D, unshuffled: k[i] is image i
        return F.normalize(distributed.shard(k).float(), dim=1)  # N x D, this process's keys

    @torch.no_grad()
    def _dequeue_and_enqueue(self, k: torch.Tensor) -> None:
        n, size = k.shape[0], self.queue.shape[0]
        if n > size:
            raise ValueError(f"{n} keys per step do not fit a queue of {size}; raise queue_size")
        idx = (self.queue_ptr + torch.arange(n, device=k.device)) % size  # wraps at the end
        self.queue[idx] = k.to(self.queue.dtype)  # replace the oldest keys (no host sync)
        self.queue_ptr.copy_((self.queue_ptr + n) % size)

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        if len(views) != 2:
            raise ValueError(f"MoCo takes exactly 2 views (query and key), got {len(views)}")
        x1, x2 = views
        if self.training and self.split and x1.shape[0] < 2 * self.bn_splits:
            raise ValueError(
                f"batch of {x1.shape[0]} is too small for bn_splits={self.bn_splits}: each "
                "BatchNorm chunk needs >= 2 images; lower bn_splits or raise the batch size"
            )
        queue = self.queue.clone().detach()  # K x D, negatives of this step
        q1, k2 = self._query(x1), self._key(x2)  # N x D each
        loss = info_nce_queue(q1, k2, queue, temperature=self.temperature)
        keys = [k2]
        if self.symmetric:
            q2, k1 = self._query(x2), self._key(x1)  # N x D each
            loss = loss + info_nce_queue(q2, k1, queue, temperature=self.temperature)
            keys.append(k1)
        if self.training:  # enqueue after the loss, the keys of every process
            self._dequeue_and_enqueue(torch.cat([distributed.gather(k) for k in keys]))
        return loss

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Momentum update of the key encoder (Eq. 2): ``theta_k = m theta_k + (1-m) theta_q``."""
        update_momentum(self.encoder, self.encoder_k, self.momentum)
        update_momentum(self.projector, self.projector_k, self.momentum)
