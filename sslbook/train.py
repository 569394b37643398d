"""Pretraining: one plain loop, :func:`pretrain`, shared by every method.

Each step samples a batch, draws the views on the training device, and then::

    method.set_progress(step, total, steps_per_epoch)
    loss = method(views); loss.backward()
    method.on_before_step(step, total); optimizer.step(); scheduler.step()
    method.on_step_end(step, total)

Under torchrun (``torch.distributed`` initialised, :mod:`sslbook.distributed`) every process
takes its share of each global batch of ``batch_size`` images (each image once per epoch over
all processes), the method's BatchNorm becomes global where it says so
(``method.sync_batch_norm``), DistributedDataParallel averages the gradients, and only the
first process shows progress and writes checkpoints; a checkpoint resumes on any number of
processes.

The default optimizer is the method's paper optimizer (``method.default_optimizer``) with the
linear scaling rule lr = base_lr x batch / 256 (arXiv:1706.02677), under a linear warm-up then
cosine schedule (SimCLR arXiv:2002.05709, App. B.1), the warm-up's length from the method's
recipe. Checkpoints (:mod:`sslbook.checkpoint`)
let an interrupted run continue exactly where it stopped.

On a GPU (``precision``, ``compile``, ``sync_every``): autocast in bf16 where the GPU has it
natively, else fp32, or fp16 with a ``GradScaler``; the losses stay on the device and are read
(and checked for finiteness) once per ``sync_every`` steps and before every checkpoint, so a step
does not wait for the GPU. CPU tests: tests/test_gpu_ready.py (precisions on the CPU, resume
with a scaler, the window check, ``compile`` with the eager backend); on CUDA:
benchmarks/gpu_checks.py (syncs per step, each precision, compile time and speed).
"""

from __future__ import annotations

import math
import os
import time

import torch
from torch import nn
from tqdm.auto import tqdm

from sslbook import checkpoint, default_device, distributed, evaluate, optim
from sslbook.checkpoint import load_checkpoint, restore

__all__ = ["build_optimizer", "knn_monitor", "load_checkpoint", "pretrain", "restore"]

CAUSES = ("learning rate too high, temperature too low, bf16 overflow under autocast, or inputs "
          "outside [0, 1] (pass uint8 images or floats in [0, 1])")
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_precision(precision: str | None, device: torch.device) -> str:
    """``None``: bf16 on a GPU with native bf16 (not a T4), else fp32. bf16 asked for on a GPU
    without it is refused with the fix; fp16 runs with a ``GradScaler``."""
    device = torch.device(device)
    native_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported(including_emulation=False)
    if precision is None:
        return "bf16" if native_bf16 else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16" and device.type == "cuda" and not native_bf16:
        raise ValueError(f"{torch.cuda.get_device_name(device)} has no native bf16 (e.g. a T4): "
                         "use precision fp16 (CLI: --precision fp16) or fp32")
    return precision


def compile_encoders(method: nn.Module, backend: str = "inductor") -> list[str]:
    """``torch.compile`` in place (``nn.Module.compile``, state-dict keys unchanged) the
    method's encoders: ``encoder`` and its momentum copies, the children with a
    ``feature_dim``. They hold nearly all the compute and are pure tensor functions; the
    methods' own forwards keep Python control flow (queues, shuffles, Sinkhorn) that would
    break the graph. Returns the names of the compiled children."""
    names = [name for name, m in method.named_children() if hasattr(m, "feature_dim")]
    for name in names:
        getattr(method, name).compile(backend=backend)
    return names


def build_optimizer(method: nn.Module, batch_size: int, lr: float | None = None,
                    overrides: dict | None = None) -> torch.optim.Optimizer:
    """``method.default_optimizer`` with lr = (``lr`` or the paper's lr per 256) x batch / 256,
    over ``method.param_groups()`` when the method has it (SimSiam's fixed-lr predictor).
    ``overrides`` replaces fields of the paper's spec (``name``, ``lr``, ``momentum``,
    ``weight_decay``), e.g. ``{"name": "sgd", "lr": 0.2}`` for a short run."""
    spec = {**method.default_optimizer, **(overrides or {})}
    params = method.param_groups() if hasattr(method, "param_groups") else method
    base_lr = spec["lr"] if lr is None else lr
    return optim.create_optimizer(spec["name"], params, optim.scaled_lr(base_lr, batch_size),
                                  momentum=spec.get("momentum", 0.9),
                                  weight_decay=spec.get("weight_decay", 0.0))


def knn_monitor(encoder: nn.Module, knn_data: tuple, k: int = 200, temperature: float = 0.1
                ) -> float:
    """Weighted kNN accuracy (InstDisc, arXiv:1805.01978) of ``encoder`` on
    ``knn_data = (train_images, train_labels, test_images, test_labels)``. In several
    processes each encodes its share of the images and the features are gathered."""
    train_x, train_y, test_x, test_y = knn_data

    def features(x: torch.Tensor) -> torch.Tensor:
        share = torch.tensor_split(x, distributed.world_size())[distributed.rank()]
        f = evaluate.features(encoder, share)  # on the CPU; nccl gathers on the GPU
        return distributed.gather_rows(f.to(next(encoder.parameters()).device)).cpu()

    return evaluate.knn_accuracy(features(train_x), train_y, features(test_x), test_y, k,
                                 temperature)


def pretrain(method: nn.Module, images: torch.Tensor, *, epochs: int, batch_size: int, augment,
             optimizer: torch.optim.Optimizer | None = None, lr: float | None = None,
             device: str | torch.device | None = None, checkpoint_path: str | None = None,
             resume: bool = False, knn_data: tuple | None = None, knn_every: int = 1,
             seed: int = 0, meta: dict | None = None, warmup_epochs: float | None = None,
             progress: bool = True, max_minutes: float | None = None,
             checkpoint_minutes: float = 5.0, checkpoint_every_steps: int | None = None,
             labels: torch.Tensor | None = None, monitor=None, monitor_every: int | None = None,
             extend: bool = False, precision: str | None = None, compile: bool | str = False,
             sync_every: int = 50) -> dict:
    """Train ``method`` on uint8 ``images`` (N x C x H x W) with ``augment(x, generator)`` views.

    ``optimizer=None`` builds :func:`build_optimizer` (``lr``: lr per 256 images); a given
    optimizer is used as is. Either way :func:`sslbook.optim.warmup_cosine` schedules it, with
    ``warmup_epochs`` of linear warm-up (default: the method's recipe,
    ``method.default_optimizer["warmup_epochs"]`` — 10 epochs for SimCLR, BYOL and SwAV, none
    for MoCo v2 and SimSiam at batch 256 — at most 10% of a shorter run; 10 epochs where the
    recipe says nothing). The state goes to
    ``checkpoint_path`` every epoch, every ``checkpoint_minutes`` (or
    ``checkpoint_every_steps``) and when ``max_minutes`` run out; ``resume=True`` continues
    from it if it exists, giving the losses of an uninterrupted run; a checkpoint of another run
    (method, its config, batch size, epochs, warm-up, optimizer, data) is refused with a
    ``ValueError`` that names every difference, except that ``extend=True`` continues it to a new
    number of ``epochs`` (the cosine schedule is recomputed for the new length, so the learning
    rate jumps; the warm-up already done is kept). ``seed`` seeds torch, the
    batch order and the augmentations. ``knn_data = (train_x, train_y, test_x, test_y)`` adds a
    kNN accuracy every ``knn_every`` epochs; ``monitor(method) -> dict`` adds its values to
    ``history["monitor"]`` after every epoch (e.g. a validation accuracy), and with
    ``monitor_every`` also after every that many steps (entries with a ``step``: how fast a
    collapse happens). ``labels`` (N,
    for :class:`sslbook.methods.Supervised`) are passed as ``method(views, labels)``. Returns
    the history: ``loss`` and ``lr`` per step,
    ``knn`` ([{"epoch", "accuracy"}]), ``images_per_second`` (of this call), ``wall_seconds``,
    ``epochs_done`` (below ``epochs`` when ``max_minutes`` ran out) and ``world_size`` (the
    processes of this call; ``batch_size`` is the global batch, split among them).

    ``precision``: ``"fp32"``, ``"bf16"`` or ``"fp16"`` autocast (fp16 with a GradScaler, whose
    state the checkpoint keeps); ``None`` is bf16 on a GPU with native bf16, else fp32.
    ``compile=True`` (or a backend name) compiles the encoders (:func:`compile_encoders`).
    The losses are read from the device every ``sync_every`` steps and before each checkpoint;
    a non-finite one raises ``FloatingPointError`` then, naming its step (the weights of the
    steps in between were updated; the last checkpoint holds finite weights).
    """
    device = torch.device(device if device is not None else default_device())
    cuda, n = device.type == "cuda", len(images)
    spe = n // batch_size  # steps per epoch (drop_last)
    if batch_size < 2 or spe < 1 or epochs < 1:
        raise ValueError(f"need 2 <= batch_size <= len(images) = {n} and epochs >= 1; got "
                         f"batch_size={batch_size}, epochs={epochs}")
    world, rank = distributed.world_size(), distributed.rank()
    if batch_size % world:
        raise ValueError(f"batch_size {batch_size} does not split among {world} processes; "
                         f"pass a multiple of {world}")
    local = batch_size // world  # this process's share of each global batch
    if labels is not None and len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries for {n} images; pass one per image")
    if sync_every < 1:
        raise ValueError(f"sync_every must be >= 1, got {sync_every}")
    precision = resolve_precision(precision, device)
    if optimizer is not None and lr is not None:
        raise ValueError("lr sets the default optimizer's lr; with your own optimizer, set the "
                         "lr in it and leave lr=None")
    total = epochs * spe
    if world > 1 and getattr(method, "sync_batch_norm", True):
        distributed.convert_sync_batchnorm(method)  # BatchNorm over the global batch
    method.to(device, memory_format=torch.channels_last)  # NHWC: faster convs on the CPU too
    if compile:
        compile_encoders(method, compile if isinstance(compile, str) else "inductor")
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    images = images.to(device) if cuda else images  # small uint8 sets fit on the GPU at once
    if optimizer is None:
        optimizer = build_optimizer(method, batch_size, lr)
    ckpt = None
    if resume and checkpoint_path is not None and os.path.exists(checkpoint_path):
        ckpt = load_checkpoint(checkpoint_path)
    if warmup_epochs is None:  # the method's recipe, at most 10% of a shorter run
        recipe = getattr(method, "default_optimizer", {}).get("warmup_epochs", 10)
        warmup = min(round(recipe * spe), round(0.1 * total))
    else:
        warmup = round(warmup_epochs * spe)
    if extend and ckpt is not None and "warmup_steps" in ckpt:
        warmup = ckpt["warmup_steps"]  # the warm-up already done stays as it was
    scheduler = optim.warmup_cosine(optimizer, warmup, total)
    # augmentation parameters, on the CPU: one stream per process (the first is the seed's)
    generator = torch.Generator().manual_seed(seed + 1_000_003 * rank)
    history = {"loss": [], "lr": [], "knn": [], "monitor": [], "images_per_second": 0.0,
               "wall_seconds": 0.0, "epochs_done": 0}
    group = optimizer.param_groups[0]
    start, run = (0, 0), {"batch_size": batch_size, "num_images": n, "seed": seed,
                          "epochs": epochs, "warmup_steps": warmup,
                          "dataset": (meta or {}).get("dataset"),
                          "optimizer_settings": {"name": type(optimizer).__name__,
                                        "lr": group.get("initial_lr", group["lr"]),
                                        "momentum": group.get("momentum"),
                                        "weight_decay": group.get("weight_decay")}}
    if ckpt is not None:
        checkpoint.check_same_run(ckpt, method, checkpoint_path, extend=extend, **run)
        checkpoint.load_training_state(ckpt, method, optimizer, scheduler, generator, device,
                                       rank=rank, world_size=world)
        if "scaler" in ckpt and scaler.is_enabled():  # older checkpoints have none
            scaler.load_state_dict(ckpt["scaler"])
        history, start = ckpt["history"], (ckpt["epoch"], ckpt["step"])
    else:
        torch.manual_seed(seed)
    history["world_size"] = world
    model = method  # what the forward pass goes through
    if world > 1:
        model = nn.parallel.DistributedDataParallel(
            method, device_ids=[device.index] if cuda else None, broadcast_buffers=False)
    wall_before, t0, train_seconds, steps = history["wall_seconds"], time.perf_counter(), 0.0, 0
    pending: list[torch.Tensor] = []  # the losses not yet read from the device
    window = {"t": time.perf_counter(), "steps": 0}

    def read_losses() -> None:  # one host sync for the window: check, record, show
        if not pending:
            return
        values = torch.stack(pending).tolist()
        first, last = len(history["loss"]), len(history["loss"]) + len(values) - 1
        pending.clear()
        for j, value in enumerate(values):
            if not math.isfinite(value):
                s, lr_s = first + j, history["lr"][first + j]
                raise FloatingPointError(
                    f"loss is {value} at step {s} (epoch {s // spe}, batch {s % spe}, lr "
                    f"{lr_s:.3g}), read with the losses of steps {first}-{last} (every "
                    f"{sync_every} steps): later steps may have updated the weights; the last "
                    f"checkpoint holds finite ones. Likely causes: {CAUSES}")
        history["loss"].extend(values)
        now = time.perf_counter()
        bar.set_postfix(loss=f"{values[-1]:.3f}", refresh=False,
                        img_s=f"{window['steps'] * batch_size / (now - window['t']):.0f}")
        window.update(t=now, steps=0)

    def clock() -> None:  # the history's timings
        history["wall_seconds"] = wall_before + time.perf_counter() - t0
        if steps:
            history["images_per_second"] = steps * batch_size / train_seconds

    def save(epoch: int, step: int) -> None:
        read_losses()
        clock()
        if checkpoint_path is None:
            return
        if not all(p.isfinite().all() for p in method.parameters()):
            raise FloatingPointError(f"non-finite weights at epoch {epoch}, step {step}; "
                                     f"{checkpoint_path} was left as it was. Causes: {CAUSES}")
        rng_ranks = distributed.gather_objects(checkpoint.rng_state(generator, device))
        if distributed.is_main():  # one writer
            state = checkpoint.training_state(
                method, optimizer, scheduler, generator, device, epoch=epoch, step=step,
                history=history, meta=meta or {}, precision=precision, world_size=world,
                rng_ranks=rng_ranks, **run)
            if scaler.is_enabled():
                state["scaler"] = scaler.state_dict()
            checkpoint.save_checkpoint(checkpoint_path, state)

    name = checkpoint.method_name(method)
    bar = tqdm(total=total, initial=start[0] * spe + start[1],
               disable=not progress or not distributed.is_main(), unit="step", desc=name)
    last_save, out_of_time = time.perf_counter(), False
    for epoch in range(start[0], epochs):
        method.train()
        rng = torch.Generator().manual_seed(seed * 100_003 + epoch)  # an order per (seed, epoch)
        order = torch.randperm(n, generator=rng).to(images.device)
        for i in range(start[1] if epoch == start[0] else 0, spe):
            step = epoch * spe + i
            if monitor is not None and monitor_every and step and step % monitor_every == 0:
                history["monitor"].append({"step": step, "epoch": step / spe, **monitor(method)})
                method.train()
            tic = time.perf_counter()
            first = i * batch_size + rank * local  # this process's share of global batch i
            idx = order[first:first + local]
            x = images[idx]  # B x C x H x W, uint8
            views = augment(x.to(device), generator=generator)  # V x (B x C x H x W)
            views = [v.contiguous(memory_format=torch.channels_last) for v in views]
            if hasattr(method, "set_progress"):
                method.set_progress(step, total, spe)
            with torch.autocast(device.type, dtype=PRECISIONS[precision],
                                enabled=precision != "fp32"):
                if labels is None:
                    loss = model(views)
                else:
                    loss = model(views, labels[idx.to(labels.device)].to(device))
            # read later: loss.item() would wait for the GPU; several processes: the global mean
            pending.append(loss.detach() if world == 1 else
                           distributed.all_reduce(loss.detach()) / world)
            history["lr"].append(optimizer.param_groups[0]["lr"])
            if len(pending) >= sync_every:  # before backward: this step's update is not made
                read_losses()
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # the hooks see true gradients (no-op unless fp16)
            method.on_before_step(step, total)
            scaler.step(optimizer)  # fp16: skipped when a gradient is inf/nan
            scaler.update()
            scheduler.step()
            method.on_step_end(step, total)
            now, steps = time.perf_counter(), steps + 1
            window["steps"] += 1
            train_seconds += now - tic
            bar.update()
            out_of_time = max_minutes is not None and now - t0 >= 60 * max_minutes
            due = now - last_save >= 60 * checkpoint_minutes or (
                checkpoint_every_steps is not None and (step + 1) % checkpoint_every_steps == 0)
            if world > 1:  # the first process's clock decides for all (saving is collective)
                due, out_of_time = distributed.agree(due, out_of_time)
            if (due or out_of_time) and i + 1 < spe:  # mid-epoch (the epoch end saves below)
                save(epoch, i + 1)
                last_save = time.perf_counter()
                if out_of_time:
                    break
        else:  # the epoch is complete
            history["epochs_done"] = epoch + 1
            if knn_data is not None and ((epoch + 1) % knn_every == 0 or epoch + 1 == epochs):
                accuracy = knn_monitor(method.encoder, knn_data)
                history["knn"].append({"epoch": epoch + 1, "accuracy": accuracy})
                bar.set_description(f"{name} (kNN {accuracy:.3f})")
            if monitor is not None:
                history.setdefault("monitor", []).append({"epoch": epoch + 1, **monitor(method)})
                method.train()
            save(epoch + 1, 0)
            last_save = time.perf_counter()
        if out_of_time:
            break
    read_losses()
    bar.close()
    clock()
    return history
