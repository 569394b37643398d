"""Encoders and heads: shapes, normalisation buffers, stems, config round-trip, channels_last."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from sslbook import models

# small options keep the ViT fast; the shapes do not depend on depth
SMALL_VIT = {"num_layers": 1, "hidden_dim": 48, "num_heads": 3, "mlp_dim": 96}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("arch, channels, size, kw, dim", [
    ("convnet", 1, 28, {}, 128),
    ("convnet", 3, 32, {"width": 8}, 32),
    ("convnet", 3, 96, {"width": 8}, 32),
    ("resnet18", 1, 28, {}, 512),
    ("resnet18", 3, 32, {}, 512),
    ("vit_tiny", 1, 28, {"patch_size": 7, **SMALL_VIT}, 48),
    ("vit_tiny", 3, 32, {"patch_size": 4, **SMALL_VIT}, 48),
    ("vit_tiny", 3, 96, {"patch_size": 12, **SMALL_VIT}, 48),
])
def test_encoder_output_is_batch_by_feature_dim(arch, channels, size, kw, dim):
    torch.manual_seed(0)
    encoder = models.create(arch, channels=channels, image_size=size, **kw)
    y = encoder(torch.rand(2, channels, size, size))  # 2 x feature_dim
    assert encoder.feature_dim == dim
    assert y.shape == (2, dim)
    assert torch.isfinite(y).all()


def test_normalize_uses_buffers_and_maps_the_mean_to_zero():
    mean, std = (0.2, 0.4, 0.6), (0.1, 0.2, 0.3)
    norm = models.Normalize(mean, std)
    assert set(norm.state_dict()) == {"mean", "std"}
    assert list(norm.parameters()) == []  # buffers are never trained
    assert norm.mean.shape == (1, 3, 1, 1)
    x = torch.tensor(mean).view(1, 3, 1, 1).expand(2, 3, 5, 5)
    torch.testing.assert_close(norm(x), torch.zeros(2, 3, 5, 5))
    x = torch.ones(1, 3, 1, 1)
    torch.testing.assert_close(norm(x).flatten(), torch.tensor([8.0, 3.0, 4.0 / 3.0]))


def test_encoder_normalises_inside_with_its_mean_and_std():
    encoder = models.create("convnet", channels=1, mean=(0.286,), std=(0.353,), width=4).eval()
    assert {"normalize.mean", "normalize.std"} <= set(encoder.state_dict())
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(encoder(x), encoder.backbone((x - 0.286) / 0.353))


def test_default_mean_std_is_half_per_channel():
    encoder = models.create("convnet", channels=3, width=4)
    assert encoder.config["mean"] == [0.5, 0.5, 0.5] and encoder.config["std"] == [0.5] * 3


def test_uint8_input_raises_with_the_fix():
    encoder = models.create("convnet", width=4)
    with pytest.raises(TypeError, match="255"):
        encoder(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_wrong_number_of_channels_raises():
    encoder = models.create("convnet", channels=1, width=4)
    with pytest.raises(ValueError, match="channels=3"):
        encoder(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="one per channel"):
        models.create("convnet", channels=3, mean=(0.5,), width=4)


def test_unknown_arch_lists_valid_names():
    with pytest.raises(ValueError, match="convnet.*resnet18.*vit_tiny"):
        models.create("alexnet")
    assert models.ARCHS == ("convnet", "resnet18", "vit_tiny")
    with pytest.raises(TypeError, match="width"):
        models.create("convnet", widht=8)


def test_resnet18_has_the_cifar_stem():
    net = models.resnet18(channels=1)
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert net.conv1.padding == (1, 1) and net.conv1.in_channels == 1
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    assert isinstance(net.fc, nn.Identity)
    # torchvision's 11.69M minus fc (513k) and the 7x7 stem, plus a 3x3 stem: 11.17M
    assert abs(n_params(models.resnet18(channels=3)) - 11.17e6) < 0.02e6


def test_parameter_counts_are_as_documented():
    assert 85e3 < n_params(models.convnet()) < 100e3  # 32-64-128: 93k
    assert models.convnet(width=16).feature_dim == 64
    convs = [m for m in models.convnet(depth=2).modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6
    assert 2.6e6 < n_params(models.vit_tiny(channels=3)) < 2.8e6  # 6 layers of width 192


def test_vit_patch_size_must_divide_image_size():
    with pytest.raises(ValueError, match="patch_size=5 does not divide image_size=28"):
        models.create("vit_tiny", channels=1, image_size=28, patch_size=5)
    vit = models.vit_tiny(channels=1, image_size=28, patch_size=7, **SMALL_VIT)
    assert vit.conv_proj.in_channels == 1 and isinstance(vit.heads, nn.Identity)


@pytest.mark.parametrize("arch, kw", [
    ("convnet", {"width": 8, "depth": 2}),
    ("resnet18", {}),
    ("vit_tiny", {"patch_size": 7, **SMALL_VIT}),
])
def test_config_rebuilds_the_same_architecture(arch, kw):
    torch.manual_seed(0)
    encoder = models.create(arch, channels=1, mean=[0.3], std=[0.2], image_size=28, **kw).eval()
    config = json.loads(json.dumps(encoder.config))  # a plain dict
    assert {"arch", "channels", "mean", "std", "image_size"} <= set(config)
    torch.manual_seed(1)
    rebuilt = models.create(**config).eval()
    rebuilt.load_state_dict(encoder.state_dict())  # strict: same names and shapes
    assert rebuilt.config == encoder.config
    x = torch.rand(2, 1, 28, 28)
    torch.testing.assert_close(rebuilt(x), encoder(x))


@pytest.mark.parametrize("arch, channels, size, kw", [
    ("convnet", 1, 28, {"width": 8}),
    ("resnet18", 3, 16, {}),
    ("vit_tiny", 3, 32, SMALL_VIT),
])
def test_channels_last_gives_the_same_output(arch, channels, size, kw):
    torch.manual_seed(0)
    encoder = models.create(arch, channels=channels, image_size=size, **kw).eval()
    x = torch.rand(2, channels, size, size)
    y = encoder(x)
    y_cl = encoder.to(memory_format=torch.channels_last)(
        x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl, y, rtol=1e-4, atol=1e-5)


def test_projection_mlp_layers():
    head = models.projection_mlp(16, 32, 8)  # SimCLR: Linear-BN-ReLU-Linear
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert head[0].bias is None and head[-1].bias is not None  # no bias before BN
    assert head(torch.randn(4, 16)).shape == (4, 8)

    head = models.projection_mlp(16, 32, 8, num_layers=3, last_bn=True)  # SimSiam
    assert sum(isinstance(m, nn.Linear) for m in head) == 3
    assert isinstance(head[-1], nn.BatchNorm1d) and not head[-1].affine
    assert not isinstance(head[-2], nn.ReLU) and head[-2].bias is None
    z = head(torch.randn(6, 16))  # 6 x 8, standardised per feature by the last BN
    torch.testing.assert_close(z.mean(0), torch.zeros(8), atol=1e-5, rtol=0)

    head = models.projection_mlp(16, 32, 8, batch_norm=False)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in head) and head[0].bias is not None
    assert [type(m) for m in models.projection_mlp(16, 32, 8, num_layers=1)] == [nn.Linear]
    with pytest.raises(ValueError, match="num_layers"):
        models.projection_mlp(16, 32, 8, num_layers=0)


def test_prediction_mlp_layers():
    head = models.prediction_mlp(8, 4, 8)  # SimSiam's bottleneck 2048 -> 512 -> 2048, scaled
    assert [type(m) for m in head] == [nn.Linear, nn.BatchNorm1d, nn.ReLU, nn.Linear]
    assert (head[0].in_features, head[0].out_features, head[-1].out_features) == (8, 4, 8)
    assert head(torch.randn(5, 8)).shape == (5, 8)
