"""Encoders and MLP heads.

Every encoder takes float images in [0, 1] (B x C x H x W), normalises them in its first layer
(:class:`Normalize`, mean and std stored as buffers) and returns a feature vector B x feature_dim.
Build one with :func:`create`; rebuild the same architecture with ``create(**encoder.config)``.

Backbones: :func:`convnet` (a small CNN measured for CPU training on Fashion-MNIST),
:func:`resnet18` (ResNet, He et al. arXiv:1512.03385, with the CIFAR stem used by SimCLR,
arXiv:2002.05709 Appendix B.9) and :func:`vit_tiny` (ViT, Dosovitskiy et al. arXiv:2010.11929).
Heads: :func:`projection_mlp` (SimCLR, MoCo v2, BYOL, SimSiam) and :func:`prediction_mlp`
(BYOL, SimSiam), each a ``nn.Sequential`` built from (in, out, norm, activation) blocks.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import torch
import torchvision
from torch import nn

ARCHS = ("convnet", "resnet18", "vit_tiny")


# --------------------------------------------------------------------------- normalisation
class Normalize(nn.Module):
    """``(x - mean) / std`` per channel; mean and std are buffers shaped 1 x C x 1 x 1.

    They are buffers, not parameters: they travel with ``.to(device)`` and ``state_dict()`` but
    are never trained. Inputs must be floating point in [0, 1]. A uint8 batch raises a
    ``TypeError`` rather than being converted silently: converting here would hide a forgotten
    ``/ 255`` elsewhere (for example an augmentation that already returned floats in [0, 255]).
    """

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t = torch.as_tensor(mean, dtype=torch.float32).flatten()
        std_t = torch.as_tensor(std, dtype=torch.float32).flatten()
        if mean_t.numel() != std_t.numel():
            raise ValueError(f"mean has {mean_t.numel()} values but std has {std_t.numel()}; "
                             "give one value per channel to both")
        if not bool((std_t > 0).all()):
            raise ValueError(f"std must be positive, got {std_t.tolist()}")
        self.register_buffer("mean", mean_t.view(1, -1, 1, 1))  # 1 x C x 1 x 1
        self.register_buffer("std", std_t.view(1, -1, 1, 1))  # 1 x C x 1 x 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_floating_point():
            raise TypeError(f"encoders take float images in [0, 1], got dtype {x.dtype}; "
                            "convert uint8 images with x.float() / 255 first")
        if x.ndim != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(f"expected images B x {self.mean.shape[1]} x H x W, got shape "
                             f"{tuple(x.shape)}; build the encoder with channels={x.shape[1]}"
                             if x.ndim == 4 else
                             f"expected a 4-d batch B x C x H x W, got shape {tuple(x.shape)}")
        return (x - self.mean) / self.std  # B x C x H x W


# --------------------------------------------------------------------------- backbones
def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
            nn.ReLU(inplace=True)]


def convnet(channels: int = 1, width: int = 32, depth: int = 1) -> nn.Sequential:
    """A small VGG-style CNN for CPU training on 28 x 28 images; ``feature_dim = 4 * width``.

    Three stages of widths (width, 2 width, 4 width), each ``depth`` times conv3x3-BN-ReLU,
    2 x 2 max-pooling between stages (28 -> 14 -> 7), then global average pooling, so any image
    size works (32 -> 8 x 8, 96 -> 24 x 24 before pooling). The default, width 32 and depth 1
    (32-64-128, 93k parameters, 128 features, 7.4M multiply-adds per 28 x 28 image), was chosen
    from this table: the time of ``model(x).pow(2).mean().backward()`` for
    ``x = torch.rand(256, 1, 28, 28)``, with ``OMP_NUM_THREADS=2`` on the book's 2-core CPU
    (AMD EPYC, torch 2.14.1), the configurations interleaved after one warm-up pass, minimum
    over 8 + 12 rounds in two runs while other jobs shared the cores (load 2-5)::

        width depth features params  fwd+bwd ms  images/s
           16     1       64    23k         116      2200
           24     1       96    52k         220      1160
           32     1      128    93k         377       680
           48     1      192   208k         654       390
           64     1      256   370k        1050       240
           96     1      384   832k        1793       140
           16     2       64    72k         293       870
           24     2       96   162k         666       380
           32     2      128   287k         893       290

    In quiet moments the same layers ran 2-3 times faster (width 16: 44 ms, width 24: 88 ms;
    a stride-2 variant with width 32's multiply-adds: 123 ms, about 2000 images/s), which is
    what a 15-minute two-view pretraining run relies on. Width 32 is the narrowest with more
    than 100 features; randomly initialised, its features already give a linear probe on
    par with raw pixels (0.82 vs 0.80 with 10k training images), widths 16 / 64 give
    0.79 / 0.83. Wider or deeper nets cost 2-5 times more per step.
    """
    if width < 1 or depth < 1:
        raise ValueError(f"width and depth must be >= 1, got width={width}, depth={depth}")
    layers: list[nn.Module] = []
    c_in = channels
    for stage, c_out in enumerate((width, 2 * width, 4 * width)):
        if stage > 0:
            layers.append(nn.MaxPool2d(2))
        for _ in range(depth):
            layers += _conv_bn_relu(c_in, c_out)
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]  # B x 4 width
    model = nn.Sequential(*layers)
    model.feature_dim = 4 * width
    return model


def resnet18(channels: int = 3) -> nn.Module:
    """torchvision's ResNet-18 (arXiv:1512.03385) with the CIFAR stem; ``feature_dim = 512``.

    SimCLR (arXiv:2002.05709, Appendix B.9) on CIFAR-10 "replace[s] the first 7x7 Conv of stride
    2 with 3x3 Conv of stride 1, and also remove[s] the first max pooling operation"; the fc
    layer becomes ``nn.Identity`` so the output is the 512-d pooled feature.
    """
    model = torchvision.models.resnet18(weights=None)
    model.conv1 = nn.Conv2d(channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    # torchvision's own initialisation of convolutions
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    model.maxpool = nn.Identity()
    model.fc = nn.Identity()
    model.feature_dim = 512
    return model


def vit_tiny(channels: int = 3, image_size: int = 32, patch_size: int = 4, num_layers: int = 6,
             num_heads: int = 3, hidden_dim: int = 192, mlp_dim: int = 768,
             dropout: float = 0.0) -> nn.Module:
    """A small ViT (arXiv:2010.11929) from torchvision; ``feature_dim = hidden_dim`` (class token).

    ViT-Tiny (DeiT, arXiv:2012.12877) has hidden 192, 3 heads, MLP 768 and 12 layers; for 28-96
    pixel images on a CPU we keep its width and halve the depth (6 layers, 2.7M parameters).
    Patches of 4 pixels turn 28 x 28 into 7 x 7 = 49 tokens and 32 x 32 into 64; for 96 x 96
    consider ``patch_size=8`` or 12 (576 tokens with 4). The classification head is removed.
    """
    if image_size % patch_size != 0:
        divisors = [d for d in range(2, min(image_size, 16) + 1) if image_size % d == 0]
        raise ValueError(f"patch_size={patch_size} does not divide image_size={image_size}; "
                         f"choose one of {divisors}")
    model = torchvision.models.VisionTransformer(
        image_size=image_size, patch_size=patch_size, num_layers=num_layers,
        num_heads=num_heads, hidden_dim=hidden_dim, mlp_dim=mlp_dim, dropout=dropout,
        attention_dropout=dropout)
    if channels != 3:
        model.conv_proj = nn.Conv2d(channels, hidden_dim, kernel_size=patch_size,
                                    stride=patch_size)
        fan_in = channels * patch_size * patch_size  # same init as torchvision's conv_proj
        nn.init.trunc_normal_(model.conv_proj.weight, std=math.sqrt(1 / fan_in))
        nn.init.zeros_(model.conv_proj.bias)
    model.heads = nn.Identity()
    model.feature_dim = hidden_dim
    return model


_BUILDERS = {"convnet": convnet, "resnet18": resnet18, "vit_tiny": vit_tiny}


# --------------------------------------------------------------------------- encoder
class Encoder(nn.Module):
    """``backbone(normalize(x))``: float images in [0, 1] B x C x H x W -> B x feature_dim."""

    def __init__(self, normalize: Normalize, backbone: nn.Module, feature_dim: int,
                 config: dict) -> None:
        super().__init__()
        self.normalize = normalize
        self.backbone = backbone
        self.feature_dim = feature_dim
        self.config = config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.normalize(x))  # B x feature_dim


def _per_channel(name: str, value: float | Sequence[float] | None, channels: int) -> list[float]:
    if value is None:
        return [0.5] * channels
    values = [float(value)] * channels if isinstance(value, (int, float)) else \
        [float(v) for v in value]
    if len(values) != channels:
        raise ValueError(f"{name} has {len(values)} values but channels={channels}; give one "
                         "per channel, e.g. sslbook.data.STATS[dataset]")
    return values


def create(arch: str, channels: int = 1, mean: float | Sequence[float] | None = None,
           std: float | Sequence[float] | None = None, image_size: int = 28,
           **kw) -> Encoder:
    """Build an :class:`Encoder`: ``Normalize(mean, std)`` followed by the ``arch`` backbone.

    ``mean`` and ``std`` default to 0.5 per channel (images mapped to [-1, 1]); pass the data
    set's statistics, ``sslbook.data.STATS[name]``, to standardise. ``image_size`` shapes the
    ViT; the CNNs pool globally and only record it. Extra keywords go to the backbone builder
    (``width``, ``depth`` for convnet; ``patch_size``, ``num_layers``, ... for vit_tiny).
    ``encoder.config`` holds every argument, builder defaults included, so
    ``create(**encoder.config)`` rebuilds the same architecture.
    """
    if arch not in _BUILDERS:
        raise ValueError(f"unknown arch {arch!r}; valid names: {', '.join(map(repr, ARCHS))}")
    builder = _BUILDERS[arch]
    params = inspect.signature(builder).parameters
    unknown = sorted(set(kw) - set(params) - {"channels", "image_size"})
    if unknown:
        valid = [p for p in params if p not in ("channels", "image_size")]
        raise TypeError(f"{arch} does not take {unknown}; its options are {valid}")
    bound = inspect.signature(builder).bind(channels=channels, **kw)
    if "image_size" in params:
        bound.arguments["image_size"] = image_size
    bound.apply_defaults()
    backbone = builder(**bound.arguments)
    extra = {k: v for k, v in bound.arguments.items() if k not in ("channels", "image_size")}
    config = {"arch": arch, "channels": channels, "mean": _per_channel("mean", mean, channels),
              "std": _per_channel("std", std, channels), "image_size": image_size, **extra}
    normalize = Normalize(config["mean"], config["std"])
    return Encoder(normalize, backbone, backbone.feature_dim, config)


# --------------------------------------------------------------------------- heads
Block = tuple[int, int, nn.Module | None, nn.Module | None]


def _mlp(blocks: list[Block]) -> nn.Sequential:
    """Linear layers from (in, out, norm, activation) blocks; no bias when a norm follows."""
    layers: list[nn.Module] = []
    for in_dim, out_dim, norm, activation in blocks:
        layers.append(nn.Linear(in_dim, out_dim, bias=norm is None))
        layers += [m for m in (norm, activation) if m is not None]
    return nn.Sequential(*layers)


def projection_mlp(in_dim: int, hidden_dim: int, out_dim: int, num_layers: int = 2,
                   batch_norm: bool = True, last_bn: bool = False) -> nn.Sequential:
    """Projection head g: ``num_layers`` Linear layers, Linear-BN-ReLU between, last plain Linear.

    SimCLR (arXiv:2002.05709, Sec. 2.1): "a MLP with one hidden layer to obtain
    z_i = g(h_i) = W(2) sigma(W(1) h_i) where sigma is a ReLU non-linearity" (num_layers=2,
    BN in the hidden layer as lightly's SimCLRProjectionHead). SimSiam (arXiv:2011.10566,
    baseline settings): "The projection MLP (in f) has BN applied to each fully-connected (fc)
    layer, including its output fc. Its output fc has no ReLU. The hidden fc is 2048-d. This
    MLP has 3 layers." (num_layers=3, last_bn=True: BatchNorm1d(affine=False) after the output
    Linear, as its official ``builder.py``). ``num_layers=1`` is a linear projection. Linear
    layers followed by BN have no bias.
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be >= 1, got {num_layers}")
    dims = [in_dim] + [hidden_dim] * (num_layers - 1)  # inputs of the layers
    blocks: list[Block] = [(d_in, hidden_dim, nn.BatchNorm1d(hidden_dim) if batch_norm else None,
                            nn.ReLU(inplace=True)) for d_in in dims[:-1]]
    last_norm = nn.BatchNorm1d(out_dim, affine=False) if last_bn else None
    blocks.append((dims[-1], out_dim, last_norm, None))
    return _mlp(blocks)


def prediction_mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """Predictor q (BYOL) or h (SimSiam): Linear-BN-ReLU-Linear.

    BYOL (arXiv:2006.07733, implementation details): "a multi-layer perceptron (MLP) with a
    hidden layer of size 4096 followed by batch normalization, rectified linear units (ReLU),
    and a final linear layer with output dimension 256". SimSiam (arXiv:2011.10566, baseline
    settings): "The prediction MLP (h) has BN applied to its hidden fc layers. Its output fc
    does not have BN or ReLU." (2048 -> 512 -> 2048, a bottleneck).
    """
    return _mlp([(in_dim, hidden_dim, nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True)),
                 (hidden_dim, out_dim, None, None)])
