"""The method contract: what the training loop may ask of every method, in one small class.

A method is an ``nn.Module`` built as ``Method(encoder, **paper_defaults)``; the loop does::

    method.set_progress(step, total_steps, steps_per_epoch)   # where training stands
    loss = method(views); loss.backward()
    method.on_before_step(step, total_steps)   # e.g. SwAV drops its frozen prototypes' grad
    optimizer.step()
    method.on_step_end(step, total_steps)      # e.g. MoCo / BYOL momentum update

``config`` holds the constructor's arguments (``record_config(locals())`` reads them from the
signature, so a new argument cannot be forgotten); ``create(name, encoder, **config)`` rebuilds
the method. ``sync_batch_norm`` says whether BatchNorm should see the global batch when training
runs in several processes (``sslbook.distributed``); each method says why.
"""

from __future__ import annotations

import inspect
import itertools

import torch
from torch import nn


class Method(nn.Module):
    """Base of the self-supervised methods: config, progress and no-op hooks. Nothing else."""

    # the paper's recipe: optimizer, learning rate per 256 images, epochs of linear warm-up
    # (pretrain caps a recipe's warm-up at 10% of a shorter run; absent: 10 epochs)
    default_optimizer: dict = {}
    sync_batch_norm: bool = True  # BatchNorm over the global batch in multi-process training

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.config: dict = {}
        self.step, self.total_steps, self.steps_per_epoch = 0, 0, None

    def record_config(self, arguments: dict) -> None:
        """``config`` = the constructor's arguments, by name from its signature (``encoder``
        excluded), taken from ``arguments`` (its ``locals()``: values resolved from ``None``,
        such as a width that defaults to the encoder's, are recorded resolved). The signature is
        that of the first class in the MRO whose arguments these are (a subclass that adds its
        own arguments records its parent's config)."""
        for cls in type(self).__mro__:
            names = [p for p in inspect.signature(cls.__init__).parameters
                     if p not in ("self", "encoder")]
            if all(name in arguments for name in names):
                self.config = {name: arguments[name] for name in names}
                return
        raise TypeError(f"record_config: pass the constructor's locals(), got {sorted(arguments)}")

    def check_config(self) -> None:
        """Raise if ``config`` misses a constructor argument (a restore would then silently use
        its default)."""
        names = [p for p in inspect.signature(type(self)).parameters if p != "encoder"]
        missing = [n for n in names if n not in self.config]
        if missing:
            raise ValueError(f"{type(self).__name__}.config misses {', '.join(missing)}; build "
                             "it with self.record_config(locals()) at the end of __init__")

    def set_progress(self, step: int, total_steps: int, steps_per_epoch: int | None) -> None:
        """Called by the loop before each step: knobs counted in epochs read it."""
        self.step, self.total_steps, self.steps_per_epoch = step, total_steps, steps_per_epoch

    @property
    def epoch(self) -> float:
        """Epochs done before the current step (1.5 = halfway through the second epoch)."""
        return self.step / self._steps_per_epoch()

    def epochs_to_steps(self, epochs: float) -> int:
        return round(epochs * self._steps_per_epoch())

    def _steps_per_epoch(self) -> int:
        if not self.steps_per_epoch:
            raise ValueError(f"{type(self).__name__} counts a setting in epochs but does not know "
                             "steps_per_epoch: call method.set_progress(step, total_steps, "
                             "steps_per_epoch) before each step (sslbook.train.pretrain does)")
        return self.steps_per_epoch

    def on_before_step(self, step: int, total_steps: int) -> None:
        """After ``backward``, before ``optimizer.step()``: nothing by default."""

    def on_step_end(self, step: int, total_steps: int) -> None:
        """After ``optimizer.step()``: nothing by default."""


def encode_views(encoder: nn.Module, views: list[torch.Tensor]) -> torch.Tensor:
    """Encode views with one forward pass per run of views that share a size (the official
    multi-crop forward of SwAV; SimCLR's two views go through as one batch, so BatchNorm sees
    both); returns (V B) x F in the order of ``views``."""
    runs = itertools.groupby(views, key=lambda v: tuple(v.shape))
    return torch.cat([encoder(torch.cat(list(run))) for _, run in runs])  # (V B) x F
