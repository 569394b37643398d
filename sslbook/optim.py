"""Optimisers and learning-rate schedules for self-supervised pretraining.

- :func:`param_groups`: weight decay on matrices and kernels only (``p.ndim >= 2``), as in
  nanoGPT's ``configure_optimizers``; biases and norm parameters get none and are excluded from
  LARS adaptation, as in SimCLR's and BYOL's official code.
- :class:`LARS`: layer-wise adaptive rate scaling (You, Gitman, Ginsburg, arXiv:1708.03888),
  the optimiser of SimCLR (arXiv:2002.05709) and BYOL (arXiv:2006.07733).
- :func:`warmup_cosine`: linear warm-up then cosine decay (SGDR, arXiv:1608.03983, without
  restarts), as nanoGPT's ``get_lr``.
- :func:`scaled_lr`: the linear scaling rule lr = base_lr x batch / 256 (Goyal et al.,
  arXiv:1706.02677), used by SimCLR, BYOL, MoCo and SimSiam.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from torch import nn

OPTIMIZERS = ("sgd", "lars", "adamw")

Params = nn.Module | Iterable[torch.Tensor] | Iterable[dict]


def param_groups(model: Params, weight_decay: float) -> list[dict]:
    """Split trainable parameters into a decayed and a non-decayed group (by ``p.ndim``).

    Returns ``[{"params": ndim >= 2, "weight_decay": weight_decay},
    {"params": ndim < 2, "weight_decay": 0.0, "lars_exclude": True}]``: weights of Linear and
    Conv layers are decayed; biases and BatchNorm/LayerNorm scales and shifts are not.
    Parameters with ``requires_grad=False`` (a momentum encoder, frozen prototypes) are left
    out. ``model`` may be a module, an iterable of tensors, or an iterable of param-group dicts;
    each dict is split in two and keeps its other keys (e.g. SimSiam's ``fix_lr``).
    """
    if isinstance(model, nn.Module):
        groups: list[dict] = [{"params": list(model.parameters())}]
    else:
        items = list(model)
        groups = [dict(g) for g in items] if items and isinstance(items[0], dict) else \
            [{"params": items}]
    out = []
    for group in groups:
        params = [p for p in group.pop("params") if p.requires_grad]
        out.append({**group, "params": [p for p in params if p.ndim >= 2],
                    "weight_decay": weight_decay})
        out.append({**group, "params": [p for p in params if p.ndim < 2],
                    "weight_decay": 0.0, "lars_exclude": True})
    return out


class LARS(torch.optim.Optimizer):
    """SGD with momentum and a layer-wise trust ratio (arXiv:1708.03888, Algorithm 1).

    For each parameter tensor p with gradient g (one "layer" per tensor)::

        g     = g + weight_decay * p
        trust = eta * ||p|| / ||g||          (1 if ||p|| = 0 or ||g|| = 0)
        v     = momentum * v + trust * g
        p     = p - lr * v

    The paper's local learning rate is eta ||w|| / (||grad|| + beta ||w||); like the official
    SimCLR and BYOL ``LARSOptimizer`` we use the norm of the decayed gradient, eta being the
    paper's "trust coefficient". Unlike TensorFlow's version, lr multiplies the momentum buffer
    at the update (PyTorch's SGD convention), so a schedule changing lr acts immediately.

    Excluded parameters skip the trust ratio: plain SGD with momentum, exactly
    ``torch.optim.SGD`` with their group's ``weight_decay`` as given (0 in :func:`param_groups`).
    A parameter is excluded when its group sets ``lars_exclude=True`` (as :func:`param_groups`
    does for biases and norms), or, when the group does not set it, when
    ``exclude_bias_and_norm`` is true and ``p.ndim < 2``. A group's own ``weight_decay``
    overrides the constructor's, as for every torch optimiser.
    """

    def __init__(self, params: Iterable[torch.Tensor] | Iterable[dict], lr: float,
                 momentum: float = 0.9, weight_decay: float = 0.0, eta: float = 0.001,
                 exclude_bias_and_norm: bool = True) -> None:
        if lr < 0 or momentum < 0 or weight_decay < 0 or eta <= 0:
            raise ValueError(f"LARS needs lr >= 0, momentum >= 0, weight_decay >= 0, eta > 0; "
                             f"got lr={lr}, momentum={momentum}, weight_decay={weight_decay}, "
                             f"eta={eta}")
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "eta": eta,
                    "lars_exclude": None}
        super().__init__(params, defaults)
        self.exclude_bias_and_norm = exclude_bias_and_norm

    def _excluded(self, group: dict, p: torch.Tensor) -> bool:
        if group["lars_exclude"] is not None:
            return bool(group["lars_exclude"])
        return self.exclude_bias_and_norm and p.ndim < 2

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["weight_decay"] != 0:
                    g = g.add(p, alpha=group["weight_decay"])
                if not self._excluded(group, p):
                    p_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(g)
                    trust = torch.where((p_norm > 0) & (g_norm > 0),
                                        group["eta"] * p_norm / g_norm, torch.ones_like(p_norm))
                    g = g * trust
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = g.detach().clone()  # v_1 = g_1, as torch SGD
                else:
                    state["momentum_buffer"].mul_(group["momentum"]).add_(g)
                p.add_(state["momentum_buffer"], alpha=-group["lr"])
        return loss


def warmup_cosine(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int,
                  final_lr_fraction: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``warmup_steps``, then cosine decay to ``final_lr_fraction`` of lr.

    Call ``scheduler.step()`` once per optimiser step. The factor at step s is
    (s + 1) / (warmup_steps + 1) during warm-up (small at s = 0, never 0, as nanoGPT's
    ``get_lr``), 1 at s = warmup_steps, then
    final + (1 - final) (1 + cos(pi (s - warmup) / (total - warmup))) / 2, reaching
    ``final_lr_fraction`` at s = total_steps and staying there. SimCLR and BYOL warm up for 10
    epochs (arXiv:2002.05709; arXiv:2006.07733). Groups with ``fix_lr=True`` keep their lr
    (SimSiam's predictor, arXiv:2011.10566; the flag name of its official ``main_simsiam.py``).
    """
    if not 0 <= warmup_steps <= total_steps or total_steps < 1:
        raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1; got "
                         f"warmup_steps={warmup_steps}, total_steps={total_steps}")
    if not 0.0 <= final_lr_fraction <= 1.0:
        raise ValueError(f"final_lr_fraction must be in [0, 1], got {final_lr_fraction}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))  # 1 -> 0
        return final_lr_fraction + (1.0 - final_lr_fraction) * cosine

    lambdas = [(lambda step: 1.0) if group.get("fix_lr") else factor
               for group in optimizer.param_groups]
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


def scaled_lr(lr_per_256: float, batch_size: int) -> float:
    """Linear scaling rule (Goyal et al., arXiv:1706.02677): lr = lr_per_256 * batch / 256."""
    return lr_per_256 * batch_size / 256


def create_optimizer(name: str, model_or_params: Params, lr: float, momentum: float = 0.9,
                     weight_decay: float = 0.0, **kw) -> torch.optim.Optimizer:
    """``"sgd"``, ``"lars"`` or ``"adamw"`` over :func:`param_groups` (no decay on biases/norms).

    ``momentum`` is ignored by AdamW (it uses ``betas``); extra keywords go to the optimiser
    (``eta`` for LARS, ``betas`` for AdamW, ``nesterov`` for SGD).
    """
    groups = param_groups(model_or_params, weight_decay)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, **kw)
    if name == "lars":
        return LARS(groups, lr=lr, momentum=momentum, **kw)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **kw)
    raise ValueError(f"unknown optimizer {name!r}; valid names: {', '.join(map(repr, OPTIMIZERS))}")
