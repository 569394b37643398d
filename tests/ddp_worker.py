"""The two-process half of tests/test_distributed.py, run there as

    python -m torch.distributed.run --standalone --nproc_per_node=2 tests/ddp_worker.py OUT

on CPU with gloo. Each process writes what it computed under OUT; the test compares it with one
process on the whole batch. The cases (methods, views, the step) are defined here once and
imported by the test, so both sides run the same code.
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F

from sslbook import distributed, losses, methods, models
from sslbook.train import knn_monitor, pretrain

B = 16  # the global batch; 8 images per process
SMALL = {
    "simclr": {"hidden_dim": 32, "out_dim": 16},
    "moco": {"hidden_dim": 32, "out_dim": 16, "queue_size": 64, "head_batch_norm": True},
    "byol": {"hidden_dim": 32, "out_dim": 16, "tau_base": 0.9},
    "simsiam": {"dim": 32, "pred_dim": 8},
    "swav": {"hidden_dim": 32, "out_dim": 16, "n_prototypes": 10, "freeze_prototypes_steps": 0,
             "queue_length": 16, "queue_start_epochs": 0},
}
# MoCo's BatchNorm groups: one process with 2 chunks of the batch = 2 processes with 1 each
# (and the same key permutation, drawn by process 0 and broadcast)
BN_SPLITS = {1: 2, 2: 1}


def make(name: str, world: int) -> torch.nn.Module:
    torch.manual_seed(0)
    kwargs = {**SMALL[name], **({"bn_splits": BN_SPLITS[world]} if name == "moco" else {})}
    method = methods.create(name, models.create("convnet", channels=1, width=8), **kwargs)
    if name == "swav":  # a full queue, so that Sinkhorn also normalises over its rows
        g = torch.Generator().manual_seed(5)
        method.queue.copy_(F.normalize(torch.randn(method.queue.shape, generator=g), dim=2))
        method.queue_count.fill_(method.queue.shape[1])
    return method


def full_views(name: str) -> list[torch.Tensor]:
    """The views of the global batch: two 28 x 28 (SwAV: and two 16 x 16 small crops)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(B, 1, 28, 28, generator=g)
    views = [(x + 0.1 * torch.randn(x.shape, generator=g)).clamp(0, 1) for _ in range(2)]
    if name == "swav":
        views += [F.interpolate(v, size=16, mode="bilinear") for v in views]
    return views


def one_step(method: torch.nn.Module, model: torch.nn.Module, views: list[torch.Tensor]):
    """One training step; returns the loss of the global batch (mean over the processes)."""
    optimizer = torch.optim.SGD([p for p in method.parameters() if p.requires_grad], lr=0.5)
    torch.manual_seed(1)  # MoCo's key permutation
    method.set_progress(0, 10, 5)
    loss = model(views)
    optimizer.zero_grad()
    loss.backward()
    method.on_before_step(0, 10)
    optimizer.step()
    method.on_step_end(0, 10)
    return distributed.all_reduce(loss.detach()) / distributed.world_size()


# Negative controls: each removes one thing the equivalence needs, and must break it.
BROKEN = {
    "simclr": lambda: mock.patch("sslbook.methods.simclr.info_nce", lambda *a, **k: losses.info_nce(
        *a, **{**k, "gather_distributed": False})),  # negatives from this process only
    "swav": lambda: mock.patch("sslbook.methods.swav.sinkhorn", lambda *a, **k: losses.sinkhorn(
        *a, **{**k, "distributed_batch": False})),  # Sinkhorn on the local batch
    "moco": lambda: mock.patch("sslbook.methods.moco.distributed.broadcast",
                               lambda x, src=0: x if distributed.rank() == 0 else x.flip(0)),
    # ^ each process its own key permutation
    "simsiam": contextlib.nullcontext,  # BatchNorm per process (no SyncBatchNorm)
}


def tiny_images() -> torch.Tensor:
    """64 uint8 images whose first pixel is their index (to see who trained on what)."""
    x = (torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(2)) * 255).byte()
    x[:, 0, 0, 0] = torch.arange(64, dtype=torch.uint8)
    return x


def crop_jitter(x: torch.Tensor, generator: torch.Generator) -> list[torch.Tensor]:
    x = x.float() / 255
    return [(x + 0.05 * torch.randn(x.shape, generator=generator)).clamp(0, 1) for _ in range(2)]


def knn_data(x: torch.Tensor) -> tuple:
    return x[:40], torch.arange(40) % 3, x[40:], torch.arange(24) % 3


RUN = {"epochs": 2, "batch_size": B, "device": "cpu", "progress": False, "seed": 3}


def main(out: Path) -> None:
    distributed.init("cpu")
    rank, world = distributed.rank(), distributed.world_size()
    assert world == 2, world

    # 1. synchronised BatchNorm, 4-d and 2-d, against the whole batch in one process
    for shape in ((8, 3, 5, 5), (8, 6)):
        g = torch.Generator().manual_seed(4)
        x, w = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
        bn = distributed.convert_sync_batchnorm(torch.nn.BatchNorm2d(3) if len(shape) == 4
                                                else torch.nn.BatchNorm1d(6))
        mine = distributed.shard(x).clone().requires_grad_()
        y = bn(mine)
        (y * distributed.shard(w)).sum().backward()
        torch.save({"y": y.detach(), "x_grad": mine.grad,
                    "weight_grad": distributed.all_reduce(bn.weight.grad),
                    "bias_grad": distributed.all_reduce(bn.bias.grad),
                    "running_mean": bn.running_mean, "running_var": bn.running_var},
                   out / f"syncbn{len(shape)}_rank{rank}.pt")

    # 2. one training step of each method on half of the global batch
    for name in methods.METHODS:
        method = make(name, world)
        if method.sync_batch_norm:
            distributed.convert_sync_batchnorm(method)
        model = torch.nn.parallel.DistributedDataParallel(method, broadcast_buffers=False)
        views = [distributed.shard(v) for v in full_views(name)]
        loss = one_step(method, model, views)
        torch.save({"loss": loss, "state": method.state_dict()}, out / f"{name}_rank{rank}.pt")

    # 2b. the negative controls
    for name, broken in BROKEN.items():
        method = make(name, world)
        if method.sync_batch_norm and name != "simsiam":
            distributed.convert_sync_batchnorm(method)
        model = torch.nn.parallel.DistributedDataParallel(method, broadcast_buffers=False)
        with broken():
            loss = one_step(method, model, [distributed.shard(v) for v in full_views(name)])
        torch.save({"loss": loss, "state": method.state_dict()},
                   out / f"broken-{name}_rank{rank}.pt")

    # 3. pretrain: each image once per epoch; resume 1 -> 2; a checkpoint for 2 -> 1
    seen = []

    def recording(x, generator):
        seen.append(x[:, 0, 0, 0].long().tolist())
        return crop_jitter(x, generator)

    images = tiny_images()
    method = make("simclr", world)
    pretrain(method, images, augment=recording, max_minutes=0,  # stops after its first step
             checkpoint_path=out / "two.pt", **RUN)
    method = make("simclr", world)
    ordered = pretrain(method, images, augment=recording, **RUN)
    torch.save({"seen": seen[1:1 + len(images) // B]}, out / f"seen_rank{rank}.pt")
    resumed = pretrain(make("simclr", world), images, augment=crop_jitter, resume=True,
                       checkpoint_path=out / "one.pt", **RUN)  # written by one process
    knn = knn_monitor(method.encoder, knn_data(images))
    torch.save({"resumed_history": resumed, "ordered_lr": ordered["lr"], "knn": knn,
                "encoder": method.encoder.state_dict()},
               out / f"pretrain_rank{rank}.pt")


if __name__ == "__main__":
    try:
        main(Path(sys.argv[1]))
    finally:  # leave the process group before exit: gloo can abort in its destructor otherwise
        if torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()
