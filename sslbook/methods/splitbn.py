"""Split BatchNorm: per-sub-batch BatchNorm statistics in one forward of the network (MoCo's
shuffle BN on one device, as ``SplitBatchNorm`` in the official MoCo CIFAR-10 demo).

Inside ``with splitting(n, *modules)``, in training mode, each split layer cuts its input into
``n`` contiguous chunks (as ``x.chunk(n)``) and normalises each with its own mean and variance,
one BatchNorm call per chunk. The convolutions and linear layers run once on the whole batch;
the running statistics receive the ``n`` momentum updates, in order, that ``n`` forwards of the
network on the chunks gave. So one forward equals one forward per chunk: loss and running
statistics to 1e-6 (equal on the CPU in the tests), gradients to 1e-5 (the batched
convolutions sum in another order; ``tests/test_gpu_ready.py``; on CUDA
``benchmarks/gpu_checks.py``).

Why a call per chunk and not the demo's single call on an (N/n) x (n C) x H x W view: the demo
groups samples i, i + n, ... (strided), while the chunks are contiguous; regrouping them takes
two copies per layer, and that, like normalising with hand-written ops and the running
statistics in closed form, made a MoCo step on the CPU about 2x slower than the old forward per
chunk (1.4-1.6 s against 0.7 s; batch 256, 8 splits, the book's convnet, a loaded 2-core
machine). The call per chunk is exact (loss and running statistics equal to the old forward's)
and costs about 20% more than it on that CPU (470 against 390 ms: the chunks' outputs are
concatenated once per layer); on a GPU it replaces n small-batch forwards of the whole network.

Outside ``splitting`` and in evaluation mode the layers are plain BatchNorm (the encoder used
elsewhere behaves as before). They subclass ``nn.BatchNorm1d/2d`` with the same parameters and
buffers, so ``isinstance`` checks and state-dict keys do not change.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class SplitBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm with statistics per chunk in training mode when ``splits > 1``."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm) -> None:
        super().__init__(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        state = bn.state_dict()
        self.load_state_dict(state)
        if state:
            self.to(next(iter(state.values())).device)
        self.train(bn.training)
        self.splits = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.splits == 1:
            return super().forward(x)
        plain = super().forward  # plain BatchNorm, one call per chunk
        return torch.cat([plain(chunk) for chunk in x.chunk(self.splits)])


class SplitBatchNorm1d(SplitBatchNorm, nn.BatchNorm1d):
    pass


class SplitBatchNorm2d(SplitBatchNorm, nn.BatchNorm2d):
    pass


def split_batchnorm(module: nn.Module) -> int:
    """Replace, in place, every ``BatchNorm1d/2d`` inside ``module`` by its split version with
    the same weights and buffers (plain BatchNorm until :func:`splitting`); returns how many."""
    count = 0
    for name, child in module.named_children():
        if isinstance(child, SplitBatchNorm):
            count += 1
        elif isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            cls = SplitBatchNorm1d if isinstance(child, nn.BatchNorm1d) else SplitBatchNorm2d
            setattr(module, name, cls(child))
            count += 1
        else:
            count += split_batchnorm(child)
    return count


@contextlib.contextmanager
def splitting(n: int, *modules: nn.Module):
    """Within the block, the split BatchNorm layers of ``modules`` use ``n`` chunks."""
    layers = [m for module in modules for m in module.modules() if isinstance(m, SplitBatchNorm)]
    for layer in layers:
        layer.splits = n
    try:
        yield
    finally:
        for layer in layers:
            layer.splits = 1
