"""Tests for sslbook.augment: torchvision agreement, invariants, reproducibility, presets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.transforms.v2.functional as TF
from PIL import Image
from scipy.stats import ks_2samp
from torchvision.transforms import RandomResizedCrop

from sslbook import augment as A


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n=6, c=3, size=16, seed=0) -> torch.Tensor:
    return torch.rand(n, c, size, size, generator=gen(seed))


# Every op with its probability argument set to p; all accept (x, generator=...).
OPS = {
    "crop": lambda x, p, g: A.random_resized_crop(x, 12, generator=g),
    "flip": lambda x, p, g: A.horizontal_flip(x, p, generator=g),
    "jitter": lambda x, p, g: A.color_jitter(x, p=p, generator=g),
    "grayscale": lambda x, p, g: A.random_grayscale(x, p, generator=g),
    "blur": lambda x, p, g: A.gaussian_blur(x, 3, p=p, generator=g),
    "solarize": lambda x, p, g: A.solarize(x, p, generator=g),
    "noise": lambda x, p, g: A.gaussian_noise(x, 0.1, p, generator=g),
}


# --------------------------------------------------------------------------- crop parameters
@pytest.mark.parametrize("height,width", [(32, 32), (20, 80)])
def test_crop_params_match_torchvision_in_distribution(height, width):
    n = 20_000
    top, left, h, w = (t.numpy() for t in A.crop_params(n, height, width, generator=gen(1)))
    torch.manual_seed(1)
    img = torch.empty(1, height, width)
    ref = np.array([RandomResizedCrop.get_params(img, [0.08, 1.0], [3 / 4, 4 / 3])
                    for _ in range(n)])  # n x 4: top, left, h, w
    ours = {"top": top, "left": left, "h": h, "w": w, "area": h * w, "aspect": w / h}
    theirs = {"top": ref[:, 0], "left": ref[:, 1], "h": ref[:, 2], "w": ref[:, 3],
              "area": ref[:, 2] * ref[:, 3], "aspect": ref[:, 3] / ref[:, 2]}
    for key in ours:
        assert ks_2samp(ours[key], theirs[key]).pvalue > 1e-3, key
        assert abs(ours[key].mean() - theirs[key].mean()) < 0.03 * theirs[key].std() + 0.05, key


def test_crop_params_boxes_inside_image_and_fallback():
    top, left, h, w = A.crop_params(1000, 20, 30, generator=gen())
    assert top.dtype == torch.int64
    assert (h >= 1).all() and (w >= 1).all()
    assert (top >= 0).all() and (top + h <= 20).all()
    assert (left >= 0).all() and (left + w <= 30).all()
    # area = H * W at ratio 1 never fits a 20 x 80 image: torchvision's central fallback crop
    top, left, h, w = A.crop_params(5, 20, 80, scale=(1, 1), ratio=(1, 1), generator=gen())
    assert top.tolist() == [0] * 5 and left.tolist() == [30] * 5
    assert h.tolist() == [20] * 5 and w.tolist() == [20] * 5


def test_resized_crop_equals_torchvision_without_antialias():
    x = images(8, 3, 32)
    top, left, h, w = A.crop_params(8, 32, 32, scale=(0.5, 1.0), generator=gen(2))
    ours = A.resized_crop(x, top, left, h, w, 16)  # boxes >= 16 px: no border effects
    ref = torch.stack([TF.resized_crop(x[i], int(top[i]), int(left[i]), int(h[i]), int(w[i]),
                                       [16, 16], antialias=False) for i in range(8)])
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    # random_resized_crop draws the same boxes from the same seed
    out = A.random_resized_crop(x, 16, scale=(0.5, 1.0), generator=gen(2))
    torch.testing.assert_close(out, ours)


def test_full_crop_returns_image():
    x = images(4, 3, 20)
    out = A.random_resized_crop(x, 20, scale=(1, 1), ratio=(1, 1), generator=gen())
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


# --------------------------------------------------------------------------- every op
@pytest.mark.parametrize("name", list(OPS))
@pytest.mark.parametrize("channels", [1, 3])
def test_ops_keep_shape_range_dtype_and_accept_uint8(name, channels):
    x8 = torch.randint(0, 256, (5, channels, 16, 16), dtype=torch.uint8, generator=gen())
    out8 = OPS[name](x8, 1.0, gen(3))
    out = OPS[name](x8.float() / 255, 1.0, gen(3))
    size = 12 if name == "crop" else 16
    assert out8.shape == (5, channels, size, size)
    assert out8.dtype == torch.float32
    assert out8.min() >= 0 and out8.max() <= 1
    torch.testing.assert_close(out8, out)  # uint8 is read as x / 255


@pytest.mark.parametrize("name", [k for k in OPS if k != "crop"])
def test_p0_is_identity(name):
    x = images()
    assert torch.equal(OPS[name](x, 0.0, gen()), x)


@pytest.mark.parametrize("name", [k for k in OPS if k not in ("flip", "grayscale", "solarize")])
def test_parameters_are_per_sample(name):
    x = images(1, 3, 16).expand(2, -1, -1, -1).contiguous()  # two identical images
    out = OPS[name](x, 1.0, gen(5))
    assert not torch.allclose(out[0], out[1])


@pytest.mark.parametrize("name", list(OPS))
def test_same_seed_same_output_different_seed_differs(name):
    x = images(8)
    p = 0.5
    torch.testing.assert_close(OPS[name](x, p, gen(7)), OPS[name](x, p, gen(7)), atol=0, rtol=0)
    assert not torch.equal(OPS[name](x, p, gen(7)), OPS[name](x, p, gen(8)))


def test_p1_applies_the_formula():
    x = images()
    torch.testing.assert_close(A.horizontal_flip(x, 1.0, gen()), torch.flip(x, dims=[-1]))
    torch.testing.assert_close(A.solarize(x, 1.0, 0.5, gen()), torch.where(x >= 0.5, 1 - x, x))
    gray = A.random_grayscale(x, 1.0, gen())
    expected = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    for ch in range(3):
        torch.testing.assert_close(gray[:, ch], expected)
    grey = images(c=1)
    assert torch.equal(A.random_grayscale(grey, 1.0, gen()), grey)


def test_flip_p_half_flips_about_half():
    x = torch.arange(4.0).view(1, 1, 1, 4).expand(2000, 1, 1, 4) / 3
    flipped = (A.horizontal_flip(x, 0.5, gen())[:, 0, 0, 0] == 1).float().mean()
    assert 0.45 < flipped < 0.55


def test_blur_preserves_constant_and_matches_torchvision():
    const = torch.full((3, 3, 16, 16), 0.37)
    torch.testing.assert_close(A.gaussian_blur(const, 5, p=1.0, generator=gen()), const)
    x = images()
    ours = A.gaussian_blur(x, 5, sigma=(1.3, 1.3), p=1.0, generator=gen())
    torch.testing.assert_close(ours, TF.gaussian_blur(x, [5, 5], [1.3, 1.3]), atol=1e-5, rtol=0)
    assert A.default_kernel_size(224) == 23 and A.default_kernel_size(96) == 9
    assert A.default_kernel_size(28) == 3


def test_colour_adjustments_match_torchvision():
    x = images(8)
    factor = torch.linspace(0.2, 1.8, 8)
    shift = torch.linspace(-0.5, 0.5, 8)
    pairs = [(A.adjust_brightness, TF.adjust_brightness, factor),
             (A.adjust_contrast, TF.adjust_contrast, factor),
             (A.adjust_saturation, TF.adjust_saturation, factor),
             (A.adjust_hue, TF.adjust_hue, shift)]
    for ours, theirs, f in pairs:
        ref = torch.stack([theirs(x[i], float(f[i])) for i in range(8)])
        torch.testing.assert_close(ours(x, f), ref, atol=2e-4, rtol=0)  # 0.299 vs 0.2989
    grey = images(c=1)
    ref = torch.stack([TF.adjust_contrast(grey[i], float(factor[i])) for i in range(6)])
    torch.testing.assert_close(A.adjust_contrast(grey, factor[:6]), ref, atol=1e-6, rtol=0)


def test_colour_adjustments_accept_uint8_as_float_over_255():
    x = (images(8) * 255).round().to(torch.uint8)
    factor = torch.linspace(0.2, 1.8, 8)
    for op in (A.adjust_brightness, A.adjust_contrast, A.adjust_saturation):
        out = op(x, factor)
        assert out.dtype == torch.float32 and 0 <= out.min() and out.max() <= 1
        torch.testing.assert_close(out, op(x.float() / 255, factor))
    shift = torch.linspace(-0.5, 0.5, 8)
    torch.testing.assert_close(A.adjust_hue(x, shift), A.adjust_hue(x.float() / 255, shift))


def test_color_jitter_equals_a_per_image_torchvision_loop():
    """Replays color_jitter's CPU draws and applies torchvision's ops image by image."""
    x, n, v = images(16), 16, (0.4, 0.4, 0.2, 0.1)
    out = A.color_jitter(x, *v, p=0.8, generator=gen(4))
    g = gen(4)  # same draw sequence: coins, 3 factors, hue shifts, order
    apply = torch.rand(n, generator=g) < 0.8
    factors = [torch.rand(n, generator=g) * 2 * s + 1 - s for s in v[:3]]
    factors.append(torch.rand(n, generator=g) * 2 * v[3] - v[3])
    order = torch.rand((n, 4), generator=g).argsort(dim=1)
    ops = (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation, TF.adjust_hue)
    for i in range(n):
        ref = x[i]
        if apply[i]:
            for j in order[i].tolist():
                ref = ops[j](ref, float(factors[j][i]))
        torch.testing.assert_close(out[i], ref, atol=3e-4, rtol=0)
    assert 0 < apply.sum() < n


def test_color_jitter_grey_and_fixed_order():
    grey = images(4, 1)
    full = A.color_jitter(grey, 0.4, 0.4, 0.4, 0.1, p=1.0, generator=gen())
    bc = A.color_jitter(grey, 0.4, 0.4, 0.0, 0.0, p=1.0, generator=gen())
    torch.testing.assert_close(full, bc)  # saturation and hue do nothing on grey images
    x = images(4, 3) * 0.7 + 0.01  # no clamping at brightness factors <= 1.4
    out = A.color_jitter(x, 0.4, 0.0, 0.0, 0.0, p=1.0, random_order=False, generator=gen())
    ratio = out / x  # brightness only: one factor per image, in [0.6, 1.4]
    assert (ratio.amax(dim=(1, 2, 3)) - ratio.amin(dim=(1, 2, 3)) < 1e-5).all()
    assert ((ratio >= 0.6 - 1e-6) & (ratio <= 1.4 + 1e-6)).all()
    assert ratio.amax(dim=(1, 2, 3)).unique().numel() == 4


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="unsqueeze"):
        A.solarize(torch.rand(3, 8, 8))
    with pytest.raises(TypeError, match="uint8 or float"):
        A.solarize(torch.ones(1, 1, 8, 8, dtype=torch.int32))
    with pytest.raises(ValueError, match="probability"):
        A.horizontal_flip(images(), p=1.5)
    with pytest.raises(ValueError, match="odd"):
        A.gaussian_blur(images(), 4)


# --------------------------------------------------------------------------- presets
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (96, 3)])
@pytest.mark.parametrize("name", A.PRESETS)
def test_presets_views_sizes_and_range(name, size, channels):
    aug = A.preset(name, size, channels)
    assert len(aug) == 2
    x = torch.randint(0, 256, (3, channels, size, size), dtype=torch.uint8, generator=gen())
    views = aug(x, gen(1))
    assert [tuple(v.shape) for v in views] == [(3, channels, size, size)] * 2
    assert all(v.dtype == torch.float32 and v.min() >= 0 and v.max() <= 1 for v in views)
    assert not torch.equal(views[0], views[1])
    if size < 64:
        assert all(v.blur_p == 0 for v in aug.views)  # SimCLR's CIFAR practice


def test_preset_paper_values():
    byol = A.preset("byol", 96, 3)
    assert [v.blur_p for v in byol.views] == [1.0, 0.1]
    assert [v.solarize_p for v in byol.views] == [0.0, 0.2]
    assert byol.views[0].saturation == 0.2 and byol.views[0].hue == 0.1
    simclr = A.preset("simclr", 96, 3).views[0]
    assert (simclr.brightness, simclr.hue, simclr.jitter_p, simclr.grayscale_p) == (
        0.8, 0.2, 0.8, 0.2)
    assert A.preset("simclr", 32, 3).views[0].brightness == pytest.approx(0.4)
    assert A.preset("moco_v2", 32, 3).views[0].scale == (0.2, 1.0)
    assert A.preset("crop_only", 32, 3).views[0].has_jitter is False
    assert A.preset("simclr", 28, 1).views[0].scale == (A.GREY_MIN_SCALE, 1.0)


def test_swav_small_crops_and_overrides():
    aug = A.preset("swav", 96, 3, small_crops=4)
    assert aug.sizes == [96, 96, 41, 41, 41, 41]
    x = torch.randint(0, 256, (2, 3, 96, 96), dtype=torch.uint8, generator=gen())
    assert [v.shape[-1] for v in aug(x, gen())] == aug.sizes
    assert A.preset("swav", 28, 1, small_crops=2).sizes == [28, 28, 12, 12]
    over = A.preset("simclr", 28, 1, blur_p=0.5, noise_std=0.05)
    assert all(v.blur_p == 0.5 and v.noise_std == 0.05 for v in over.views)
    with pytest.raises(ValueError, match="simclr"):
        A.preset("simclrr")
    with pytest.raises(ValueError, match="unknown Augmentation fields"):
        A.preset("simclr", blurr_p=0.5)
    with pytest.raises(ValueError, match="swav"):
        A.preset("byol", small_crops=2)


def test_multiview_reproducible():
    aug = A.preset("byol", 32, 3)
    x = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=gen())
    a, b, c = aug(x, gen(11)), aug(x, gen(11)), aug(x, gen(12))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[0], c[0])


# --------------------------------------------------------------------------- torchvision
@pytest.mark.parametrize("size,channels,mode", [(28, 1, "L"), (32, 3, "RGB"), (96, 3, "RGB")])
def test_torchvision_pipeline_on_pil(size, channels, mode):
    rng = np.random.default_rng(0)
    shape = (40, 40) if channels == 1 else (40, 40, 3)
    img = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode=mode)
    for name in ("simclr", "byol"):
        for view in (0, 1):
            out = A.torchvision_pipeline(name, size, channels, view=view, noise_std=0.05)(img)
            assert out.shape == (channels, size, size) and out.dtype == torch.float32
            assert out.min() >= 0 and out.max() <= 1
    views = A.TwoViewTransform(A.torchvision_pipeline("simclr", size, channels))(img)
    assert len(views) == 2 and not torch.equal(views[0], views[1])
    x8 = torch.from_numpy(np.array(img)).reshape(40, 40, channels).permute(2, 0, 1)
    assert A.torchvision_pipeline("moco_v2", size, channels)(x8).shape == (channels, size, size)


# --------------------------------------------------------------------------- device
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    aug = A.preset("byol", 96, 3, blur_p=0.5)
    x = torch.randint(0, 256, (16, 3, 96, 96), dtype=torch.uint8, generator=gen())
    cpu = aug(x, gen(3))
    gpu = aug(x.cuda(), gen(3))
    assert all(v.device.type == "cuda" for v in gpu)
    for u, v in zip(cpu, gpu):
        torch.testing.assert_close(v.cpu(), u, atol=1e-3, rtol=0)
    noisy = A.gaussian_noise(x.cuda(), 0.1, 1.0, gen())
    assert noisy.device.type == "cuda" and 0 <= noisy.min() and noisy.max() <= 1
