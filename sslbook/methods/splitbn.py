"""Split BatchNorm: per-sub-batch BatchNorm statistics in one forward (MoCo's shuffle BN on one
device, as ``SplitBatchNorm`` in the official MoCo CIFAR-10 demo).

Inside ``with splitting(n, *modules)``, in training mode, the batch is cut into ``n``
contiguous chunks (as ``x.chunk(n)``) and each chunk is normalised with its own mean and
variance. The running statistics receive the ``n`` momentum updates that ``n`` separate
forwards of the chunks would give, in closed form
(``r <- (1 - m)^n r + sum_s m (1 - m)^(n-1-s) stat_s``), so one forward through split layers
equals one encoder forward per chunk, to float rounding (loss and running
statistics to 1e-6, gradients to 1e-5: ``tests/test_gpu_ready.py``; on CUDA:
``benchmarks/gpu_checks.py``). Outside ``splitting`` and in evaluation mode the layers are
plain BatchNorm (the encoder used elsewhere behaves as before); they are subclasses of
``nn.BatchNorm1d/2d`` with the same parameters and buffers, so state-dict keys do not change.
Batches that do not divide into ``n`` equal chunks take one BatchNorm call per chunk (same
result, more kernels).
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class SplitBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm with statistics per chunk in training mode when ``splits > 1``."""

    def __init__(self, bn: nn.modules.batchnorm._BatchNorm, splits: int = 1) -> None:
        super().__init__(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
        if bn.momentum is None:
            raise ValueError("SplitBatchNorm needs a BatchNorm with a momentum (not None)")
        state = bn.state_dict()
        self.load_state_dict(state)
        if state:
            self.to(next(iter(state.values())).device)
        self.train(bn.training)
        self.splits = splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        S, n = self.splits, x.shape[0]
        if not self.training or S == 1:
            return super().forward(x)
        if n % S:  # unequal chunks: one BatchNorm call per chunk, as x.chunk gives them
            return torch.cat([super(SplitBatchNorm, self).forward(c) for c in x.chunk(S)])
        xs = x.float().unflatten(0, (S, n // S))  # S x n x C x ...
        dims = [1, *range(3, xs.dim())]  # all but the chunk and the channel
        var, mean = torch.var_mean(xs, dim=dims, keepdim=True, correction=0)  # S x 1 x C x 1..
        y = (xs - mean) * torch.rsqrt(var + self.eps)
        if self.affine:
            shape = [1, 1, -1] + [1] * (xs.dim() - 3)
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            self._update_running(mean.view(S, -1), var.view(S, -1), xs[0].numel() // x.shape[1])
        return y.flatten(0, 1).to(x.dtype)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, var: torch.Tensor, count: int) -> None:
        """The S sequential updates ``r <- (1 - m) r + m stat_s`` in closed form; the running
        variance takes the unbiased variance of each chunk, as BatchNorm does."""
        S, m = self.splits, self.momentum
        w = m * (1 - m) ** torch.arange(S - 1, -1, -1, device=mean.device, dtype=mean.dtype)
        unbiased = var * (count / (count - 1))
        self.running_mean.mul_((1 - m) ** S).add_((w[:, None] * mean).sum(0))
        self.running_var.mul_((1 - m) ** S).add_((w[:, None] * unbiased).sum(0))
        self.num_batches_tracked.add_(S)


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
