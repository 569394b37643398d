"""RotNet: predict by how many quarter turns an image was rotated.

Gidaris, Singh, Komodakis, "Unsupervised Representation Learning by Predicting Image
Rotations", ICLR 2018, arXiv:1803.07728.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rotation_batch(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each image rotated by 0, 90, 180 and 270 degrees (4B x C x H x W), and the rotation
    index k (a turn of 90k degrees) of each as the target (4B, int64)."""
    views = torch.cat([torch.rot90(images, k, dims=(2, 3)) for k in range(4)])
    targets = torch.arange(4, device=images.device).repeat_interleave(len(images))
    return views, targets


class RotNet(nn.Module):
    """Encoder + a linear 4-way head; cross-entropy on the rotation of the first view.

    The paper feeds all four rotations of an image in the same batch (Sec. 2.2) and trains with
    SGD, momentum 0.9, weight decay 5e-4, lr 0.1 at batch 128 (Sec. 3.1, CIFAR-10); the head
    here is linear so that the encoder's output is what the rotations are read from.
    """

    name = "rotation"
    default_optimizer = {
        "name": "sgd",
        "lr": 0.2,  # per 256 images: 0.1 at the paper's batch 128
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "warmup_epochs": 0,  # a step schedule, no warm-up
        "source": "RotNet, arXiv:1803.07728, Sec. 3.1 (SGD, batch 128, momentum 0.9, weight "
        "decay 5e-4, lr 0.1)",
    }

    def __init__(self, encoder: nn.Module, num_rotations: int = 4) -> None:
        super().__init__()
        if num_rotations != 4:
            raise ValueError(f"RotNet uses the 4 quarter turns, got num_rotations={num_rotations}")
        self.encoder = encoder
        self.head = nn.Linear(encoder.feature_dim, num_rotations)
        self.config = {"num_rotations": num_rotations}

    def forward(self, views: list[torch.Tensor]) -> torch.Tensor:
        rotated, targets = rotation_batch(views[0])  # only the first view is used
        return F.cross_entropy(self.head(self.encoder(rotated)).float(), targets)

    def on_before_step(self, step: int, total_steps: int) -> None:
        """Nothing to do before the optimizer step."""

    def on_step_end(self, step: int, total_steps: int) -> None:
        """Nothing to do after the optimizer step."""
