"""Multi-process training (sslbook.distributed) proven equal to one process, on CPU with gloo.

One torchrun launch with 2 processes (tests/ddp_worker.py) computes, for every method, one
training step on half of a global batch each; this process computes the same step on the whole
batch and the two must give the same loss and the same parameter update (to 1e-5). The same
launch checks synchronised BatchNorm against whole-batch BatchNorm, that each image is seen once
per epoch, checkpoints that move between 1 and 2 processes, and the gathered kNN monitor. nccl
(several GPUs) is not tested: no test machine has more than one GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import ddp_worker as W
import pytest
import torch

from sslbook import distributed, methods
from sslbook.checkpoint import load_checkpoint, restore
from sslbook.train import knn_monitor, pretrain

ROOT = Path(__file__).resolve().parents[1]


def torchrun(*args: str, timeout: float = 150) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", *args], env=env, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """The outputs of the two processes (one launch for every test in this file)."""
    out = tmp_path_factory.mktemp("ddp")
    method = W.make("simclr", 1)  # a one-process checkpoint, for the 2 processes to resume
    pretrain(method, W.tiny_images(), augment=W.crop_jitter, max_minutes=0,
             checkpoint_path=out / "one.pt", **W.RUN)
    start = time.perf_counter()
    done = torchrun("tests/ddp_worker.py", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.perf_counter() - start < 90  # the launch for all five methods
    return out


def load(out: Path, name: str, rank: int = 0) -> dict:
    return torch.load(out / f"{name}_rank{rank}.pt", weights_only=False)


@pytest.mark.parametrize("dims", [4, 2])
def test_sync_batchnorm_equals_batchnorm_on_the_whole_batch(two, dims):
    shape = (8, 3, 5, 5) if dims == 4 else (8, 6)
    g = torch.Generator().manual_seed(4)
    x, w = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    bn = torch.nn.BatchNorm2d(3) if dims == 4 else torch.nn.BatchNorm1d(6)
    x.requires_grad_()
    y = bn(x)
    (y * w).sum().backward()
    parts = [load(two, f"syncbn{dims}", r) for r in (0, 1)]
    torch.testing.assert_close(torch.cat([p["y"] for p in parts]), y.detach())
    torch.testing.assert_close(torch.cat([p["x_grad"] for p in parts]), x.grad)
    for p in parts:
        torch.testing.assert_close(p["weight_grad"], bn.weight.grad)
        torch.testing.assert_close(p["bias_grad"], bn.bias.grad)
        torch.testing.assert_close(p["running_mean"], bn.running_mean)
        torch.testing.assert_close(p["running_var"], bn.running_var)
    # power: BatchNorm of each half alone is not the same
    halves = torch.cat([torch.nn.functional.batch_norm(h, None, None, training=True)
                        for h in x.detach().chunk(2)])
    assert not torch.allclose(halves, y.detach(), atol=1e-3)


@pytest.mark.parametrize("name", list(methods.METHODS))
def test_one_step_on_two_processes_equals_one_process_on_the_whole_batch(two, name):
    method = W.make(name, 1)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    loss = W.one_step(method, method, W.full_views(name))
    ranks = [load(two, name, r) for r in (0, 1)]
    for got in ranks:
        torch.testing.assert_close(got["loss"], loss, rtol=1e-5, atol=1e-5)
    moved = 0.0
    for key, value in method.state_dict().items():
        if not value.dtype.is_floating_point:
            continue
        if name == "moco" and "running" in key:  # per-process BN: statistics of its half
            continue
        for got in ranks:
            torch.testing.assert_close(got["state"][key] - before[key], value - before[key],
                                       rtol=1e-4, atol=1e-5, msg=f"{name}: {key}")
        moved = max(moved, float((value - before[key]).abs().max()))
    assert moved > 1e-3  # power: the step changed the weights


@pytest.mark.parametrize("name", list(W.BROKEN))
def test_negative_controls_break_the_equality(two, name):
    """Negatives of one process only, Sinkhorn on the local batch, one key permutation per
    process, BatchNorm per process: each alone makes two processes differ from one."""
    method = W.make(name, 1)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    loss = W.one_step(method, method, W.full_views(name))
    got = load(two, f"broken-{name}")
    same_loss = torch.allclose(got["loss"], loss, rtol=1e-5, atol=1e-5)
    same_update = all(torch.allclose(got["state"][k] - before[k], v - before[k], rtol=1e-4,
                                     atol=1e-5)
                      for k, v in method.state_dict().items()
                      if v.dtype.is_floating_point and "running" not in k)
    assert not (same_loss and same_update)


def test_each_image_once_per_epoch_across_processes(two):
    seen = [load(two, "seen", r)["seen"] for r in (0, 1)]
    ids = [i for rank in seen for batch in rank for i in batch]
    assert sorted(ids) == list(range(64))  # 4 global batches of 16 = all 64 images, once
    for step in range(4):  # the two halves of one global batch are different images
        assert not set(seen[0][step]) & set(seen[1][step])


def test_checkpoints_move_between_one_and_two_processes(two):
    ordered_lr = load(two, "pretrain")["ordered_lr"]
    # two processes -> one: resumes at step 1 and continues the schedule
    ckpt = load_checkpoint(two / "two.pt")
    assert ckpt["world_size"] == 2 and len(ckpt["rng"]["ranks"]) == 2
    assert (ckpt["epoch"], ckpt["step"]) == (0, 1)
    history = pretrain(W.make("simclr", 1), W.tiny_images(), augment=W.crop_jitter,
                       resume=True, checkpoint_path=two / "two.pt", **W.RUN)
    assert history["world_size"] == 1 and len(history["loss"]) == 8
    assert history["loss"][0] == ckpt["history"]["loss"][0]
    assert history["lr"] == pytest.approx(ordered_lr)
    assert load_checkpoint(two / "two.pt")["world_size"] == 1
    # one process -> two: the workers resumed one.pt
    resumed = load(two, "pretrain")["resumed_history"]
    assert resumed["world_size"] == 2 and len(resumed["loss"]) == 8
    assert resumed["lr"] == pytest.approx(ordered_lr)
    assert load_checkpoint(two / "one.pt")["world_size"] == 2
    method, _ = restore(two / "one.pt")  # loads in one process
    assert all(torch.isfinite(p).all() for p in method.parameters())


def test_knn_monitor_gathers_the_features_of_both_processes(two):
    ranks = [load(two, "pretrain", r) for r in (0, 1)]
    assert ranks[0]["knn"] == ranks[1]["knn"]  # every process computes the same accuracy
    encoder = W.make("simclr", 1).encoder
    encoder.load_state_dict(ranks[0]["encoder"])  # the encoder the workers measured
    assert knn_monitor(encoder, W.knn_data(W.tiny_images())) == pytest.approx(
        ranks[0]["knn"], abs=1 / 24 + 1e-9)  # at most one of 24 test images may flip


def test_one_process_helpers_are_the_identity():
    x = torch.randn(4, 3, requires_grad=True)
    assert distributed.world_size() == 1 and distributed.rank() == 0 and distributed.is_main()
    assert distributed.gather(x) is x and distributed.shard(x) is x
    assert distributed.all_reduce(x) is x and distributed.gather_objects(1) == [1]
    bn = torch.nn.Sequential(torch.nn.BatchNorm1d(3))
    sync = distributed.convert_sync_batchnorm(bn)
    assert isinstance(sync[0], distributed.SyncBatchNorm)
    torch.testing.assert_close(sync(x), torch.nn.functional.batch_norm(x, None, None,
                                                                       training=True))


def test_torchrun_cli_runs_and_resumes(tmp_path):
    """``torchrun --standalone --nproc_per_node=2 -m sslbook pretrain ... --device cpu``."""
    out = tmp_path / "run"
    argv = ["-m", "sslbook", "pretrain", "--method", "simclr", "--subset", "256",
            "--batch-size", "64", "--epochs", "2", "--device", "cpu", "--out", str(out),
            "--no-progress"]
    first = torchrun(*argv, "--max-minutes", "0")  # stops (and checkpoints) after one step
    assert first.returncode == 0, first.stderr[-3000:]
    assert load_checkpoint(out / "checkpoint.pt")["step"] == 1
    done = torchrun(*argv, "--resume")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("wrote") == 1  # one process reports
    history = json.loads((out / "history.json").read_text())
    assert history["world_size"] == 2 and history["epochs_done"] == 2
    assert len(history["loss"]) == 8 and [k["epoch"] for k in history["knn"]] == [1, 2]
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["world_size"] == 2 and (ckpt["epoch"], ckpt["step"]) == (2, 0)
