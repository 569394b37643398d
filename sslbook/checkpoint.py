"""Checkpoints: plain dicts of tensors and Python values, written atomically.

A checkpoint holds no pickled classes, so it loads with ``torch.load(path, weights_only=True)``
(what :func:`load_checkpoint` does): the method's name and ``config``, the encoder's ``config``,
``meta`` (data set name ...), the method's ``state_dict`` (encoder, heads, momentum copies,
queues), optimizer and scheduler state, the position (epoch, step within the epoch), the
history and the random number generator states. :func:`restore` rebuilds the method from it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

from sslbook import methods, models

FORMAT = "sslbook-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that cannot be read as an sslbook checkpoint (corrupt, truncated, foreign)."""


def method_name(method: nn.Module) -> str:
    """The registry name of ``method`` (``"simclr"`` ...), else its ``name`` or class name."""
    for name, cls in {**methods.METHODS, **methods.REFERENCES}.items():
        if type(method) is cls:
            return name
    return getattr(method, "name", type(method).__name__.lower())


def save_checkpoint(path: str | os.PathLike, checkpoint: dict) -> None:
    """Write ``checkpoint`` to ``path`` atomically: a temporary file in the same folder, synced,
    then ``os.replace``; a crash at any moment leaves either the old file or the new one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(checkpoint, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint on the CPU with ``weights_only=True``; clear errors for a missing,
    corrupt or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path, or train one first "
                                "(sslbook.train.pretrain(..., checkpoint_path=...) or "
                                "python -m sslbook pretrain --out DIR)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise CheckpointError(f"{path} cannot be read as an sslbook checkpoint: it is another "
                              f"kind of file or a truncated one (torch.load raised "
                              f"{type(err).__name__}); pass the checkpoint.pt that training "
                              "wrote (python -m sslbook pretrain --out DIR writes "
                              "DIR/checkpoint.pt)") from err
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an sslbook checkpoint (no format={FORMAT!r} entry); "
                              "a bare state_dict loads with torch.load + load_state_dict")
    return checkpoint


def rng_state(generator: torch.Generator, device: torch.device) -> dict:
    """This process's random number generator states: torch's, the augmentations', CUDA's."""
    rng = {"torch": torch.get_rng_state(), "augment": generator.get_state()}
    if device.type == "cuda":
        rng["cuda"] = torch.cuda.get_rng_state(device)
    return rng


def training_state(method: nn.Module, optimizer: torch.optim.Optimizer, scheduler,
                   generator: torch.Generator, device: torch.device,
                   rng_ranks: list[dict] | None = None, **position) -> dict:
    """Everything a run needs to continue exactly: weights, optimizer, scheduler, RNG states
    (``rng_ranks``: those of every process of a multi-process run), plus ``position`` (epoch,
    step, history, meta, batch size, world size ...); plain values and tensors."""
    rng = rng_state(generator, device)
    if rng_ranks is not None and len(rng_ranks) > 1:
        rng["ranks"] = rng_ranks
    return {"format": FORMAT, "version": VERSION, "method": method_name(method),
            "method_config": method.config, "encoder_config": method.encoder.config,
            "state_dict": method.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "rng": rng, **position}


def load_training_state(checkpoint: dict, method: nn.Module, optimizer: torch.optim.Optimizer,
                        scheduler, generator: torch.Generator, device: torch.device,
                        rank: int = 0, world_size: int = 1) -> None:
    """Put a :func:`training_state` back into the method, optimizer, scheduler and RNGs.

    A checkpoint of W processes resumed on W restores every process's RNGs (an exact
    continuation); on another number, process 0 continues the first process's streams and the
    others start new ones (seeded from their seed and the position), so the data order and the
    schedule continue exactly and only their augmentations differ."""
    method.load_state_dict(checkpoint["state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    ranks = checkpoint["rng"].get("ranks", [checkpoint["rng"]])
    if len(ranks) == world_size or rank == 0:
        rng = ranks[rank]
        torch.set_rng_state(rng["torch"])
        generator.set_state(rng["augment"])
        if device.type == "cuda" and "cuda" in rng:
            torch.cuda.set_rng_state(rng["cuda"], device)
    else:  # a process the checkpoint did not have
        position = 100_003 * checkpoint["epoch"] + checkpoint["step"]
        generator.manual_seed(generator.initial_seed() + 7_919 * position)
        torch.manual_seed(generator.initial_seed())


def check_same_run(checkpoint: dict, method: nn.Module, path, extend: bool = False,
                   **settings) -> None:
    """The one place that decides whether a checkpoint continues this run. Raises a
    ``ValueError`` naming every difference (method, its config, the encoder config, and
    ``settings``: batch size, epochs, warm-up, optimizer, data ...) and how to go on; with
    ``extend=True`` a different number of epochs is allowed. Settings that an older checkpoint
    does not record are not compared."""
    ours = {"method": method_name(method), "method_config": method.config,
            "encoder_config": getattr(method.encoder, "config", None), **settings}
    wrong = {k: v for k, v in ours.items() if k in checkpoint and checkpoint[k] != v}
    if extend:
        wrong.pop("epochs", None)
    if wrong:
        what = "; ".join(f"{k}: checkpoint {checkpoint[k]!r}, now {v!r}" for k, v in wrong.items())
        hint = ("; to train it to the new number of epochs on purpose, pass extend=True "
                "(CLI: --extend; the cosine schedule is then recomputed for the new length)"
                if set(wrong) <= {"epochs", "warmup_steps"} else "")
        raise ValueError(f"cannot resume from {path}, it is another run ({what}); pass the same "
                         f"settings{hint}, or start over (resume=False; CLI: --overwrite or "
                         "another --out)")


def restore(path: str | os.PathLike, device: str | torch.device | None = None
            ) -> tuple[nn.Module, dict]:
    """Rebuild the method of a checkpoint (``models.create(**encoder_config)``, then
    ``methods.create(name, encoder, **method_config)``), load its weights, move it to ``device``
    (default CPU) and return ``(method in eval mode, checkpoint)``."""
    checkpoint = load_checkpoint(path)
    encoder = models.create(**checkpoint["encoder_config"])
    method = methods.create(checkpoint["method"], encoder, **checkpoint["method_config"])
    method.load_state_dict(checkpoint["state_dict"])
    return method.to(device if device is not None else "cpu").eval(), checkpoint
