"""Several processes (GPUs or CPU workers) training one model: the few collectives the methods
and the loop need, each a no-op in a single process.

Launch with ``torchrun --nproc_per_node=N -m sslbook pretrain ...``: torchrun starts N processes
and sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; :func:`init` joins them (nccl on GPUs, gloo
on CPUs). Each process trains on its share of every global batch; DistributedDataParallel
averages the gradients. What the losses must add (the SimCLR paper Sec. 2.2; lightly#1528,
fixed by lightly#1531, was a gather whose backward did not sum the processes' gradients):

- :func:`gather` concatenates a tensor from every process *with gradients*, so that NT-Xent's
  negatives are the global batch and each process's loss also trains the others' features;
- :func:`all_reduce` sums *with gradients* (Sinkhorn over the global batch, synchronised BN);
- :class:`SyncBatchNorm` computes BatchNorm statistics over the global batch. It runs on CPU
  tensors (``torch.nn.SyncBatchNorm`` does not), so the equivalence with one process is tested
  on CPU with gloo. nccl is not tested here: the test machines have one GPU at most.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["SyncBatchNorm", "agree", "all_reduce", "broadcast", "convert_sync_batchnorm",
           "gather", "gather_objects", "gather_rows", "init", "is_main", "rank", "shard",
           "world_size"]


def world_size() -> int:
    """Number of processes (1 without torch.distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    """This process's index, 0 .. world_size() - 1."""
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True in the process that logs, shows progress and writes checkpoints."""
    return rank() == 0


def init(device: str | torch.device | None = None) -> torch.device:
    """Join the processes torchrun started (env ``WORLD_SIZE`` > 1) and return this process's
    device: ``cuda:LOCAL_RANK`` with nccl, or the CPU with gloo. Without torchrun: ``device``."""
    want = torch.device(device) if device is not None else None
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return want if want is not None else torch.device("cpu")
    cuda = want.type == "cuda" if want is not None else torch.cuda.is_available()
    if cuda:
        want = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(want)
    dist.init_process_group("nccl" if cuda else "gloo")
    return want if cuda else torch.device("cpu")


class _Gather(torch.autograd.Function):
    """all_gather whose backward sends each process the gradient of its own rows, summed over
    the processes (every process's loss used them)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(world_size())]
        dist.all_gather(parts, x.contiguous())
        ctx.rows = x.shape[0]
        return torch.cat(parts)  # (W N) x ...

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous()
        dist.all_reduce(grad)  # sum of every process's gradient on the gathered rows
        return grad[rank() * ctx.rows:(rank() + 1) * ctx.rows]


class _AllReduce(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, op) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x, op=op)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous().clone()
        dist.all_reduce(grad)  # d(sum_r L_r)/dx: every process's loss saw the sum
        return grad, None


def gather(x: torch.Tensor) -> torch.Tensor:
    """The rows of ``x`` from every process, in rank order: (W N) x ...; gradients flow back to
    the process that owns each row. ``x`` itself in one process."""
    if world_size() == 1:
        return x
    if x.requires_grad and torch.is_grad_enabled():
        return _Gather.apply(x)
    parts = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


def shard(x: torch.Tensor) -> torch.Tensor:
    """This process's share of the rows of ``x`` (``tensor_split``; inverse of :func:`gather`)."""
    return torch.tensor_split(x, world_size())[rank()] if world_size() > 1 else x


def all_reduce(x: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Sum (``op="sum"``, with gradients) or maximum (``"max"``) over the processes."""
    if world_size() == 1:
        return x
    reduce_op = {"sum": dist.ReduceOp.SUM, "max": dist.ReduceOp.MAX}[op]
    if op == "sum" and x.requires_grad and torch.is_grad_enabled():
        return _AllReduce.apply(x, reduce_op)
    x = x.clone()
    dist.all_reduce(x, op=reduce_op)
    return x


def broadcast(x: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Process ``src``'s ``x`` in every process (e.g. one random permutation for all)."""
    if world_size() > 1:
        x = x.contiguous()
        dist.broadcast(x, src)
    return x


def gather_objects(obj) -> list:
    """``[obj of process 0, obj of process 1, ...]`` (picklable Python objects): ``[obj]`` alone."""
    if world_size() == 1:
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def agree(*flags: bool) -> tuple[bool, ...]:
    """Process 0's flags in every process (decisions that must be collective, e.g. to save)."""
    if world_size() == 1:
        return flags
    out = [list(flags)]
    dist.broadcast_object_list(out, src=0)
    return tuple(out[0])


@torch.no_grad()
def gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate shards of unequal length (``torch.tensor_split`` of a whole): pad, gather,
    trim. For evaluation features; no gradients."""
    if world_size() == 1:
        return x
    sizes = [torch.zeros((), dtype=torch.long, device=x.device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor(x.shape[0], device=x.device))
    longest = int(max(sizes))
    padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[:x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:int(n)] for p, n in zip(parts, sizes, strict=True)])


class SyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm whose training statistics are those of the global batch: the per-channel sums
    of every process are all-reduced (with gradients), then used as plain BatchNorm would use
    the whole batch. Any input dimension (N x C, N x C x H x W ...); in one process, or in eval
    mode, it is exactly ``nn.BatchNorm``. Same parameters and buffers, so checkpoints load in
    either."""

    def _check_input_dim(self, x: torch.Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"SyncBatchNorm expects N x C x ..., got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and world_size() > 1):
            return super().forward(x)
        dims = [0, *range(2, x.dim())]  # every axis but the channels
        shape = [1, -1] + [1] * (x.dim() - 2)
        count = all_reduce(torch.tensor(float(x.numel() // x.shape[1]), device=x.device))
        xf = x.float()
        mean = all_reduce(xf.sum(dims)) / count  # C, global mean
        var = all_reduce(((xf - mean.view(shape)) ** 2).sum(dims)) / count  # C, biased
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                     else self.momentum)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), m)
                unbiased = var * count / max(float(count) - 1, 1.0)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), m)
        y = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y.to(x.dtype)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``nn.BatchNorm1d/2d/3d`` in ``module`` by :class:`SyncBatchNorm`, keeping
    its parameters and statistics (in place for children; returns the module)."""
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module,
                                                                              SyncBatchNorm):
        sync = SyncBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                             module.track_running_stats)
        for name, tensor in [*module.named_parameters(recurse=False),
                             *module.named_buffers(recurse=False)]:
            setattr(sync, name, tensor)  # the same tensors: nothing is copied or moved
        return sync.train(module.training)
    for name, child in module.named_children():
        converted = convert_sync_batchnorm(child)
        if converted is not child:
            setattr(module, name, converted)
    return module
