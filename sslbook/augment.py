"""Batched augmentations on tensors, with random parameters drawn per sample.

Every function takes a batch ``x`` (uint8, divided by 255, or float in [0, 1]; N x C x H x W) on
any device and returns float images in [0, 1]. The small per-sample parameters (crop boxes,
jitter factors, blur widths, coin flips) are drawn on the CPU from the given CPU
``torch.Generator`` and then moved to ``x.device``, so one seed gives the same views on the CPU
and on a GPU. Per-pixel noise is drawn on ``x.device`` from a generator seeded by the CPU one.

On a GPU a view pipeline (:class:`Augmentation`) draws all its parameters first and copies them
in ONE pinned, non-blocking transfer; the ops then choose per sample with masks
(``torch.where``), never with data-dependent index sets, so a view reads nothing back from the
device (it can be compiled or captured). Proven on the CPU by ``tests/test_augment_device.py``
(views bit-identical to the recorded ones; no host reads and one copy per view, counted on the
``meta`` device); the sync count on CUDA is in ``benchmarks/gpu_checks.py``.

The operations follow torchvision's definitions (``RandomResizedCrop``, ``ColorJitter``,
``RandomGrayscale``, ``GaussianBlur``, ``RandomSolarize``) and the view pipelines follow the
papers: SimCLR (arXiv:2002.05709, App. A), MoCo v2 (arXiv:2003.04297), BYOL (arXiv:2006.07733,
Table 6) and SwAV (arXiv:2006.09882, multi-crop). ``preset`` builds them; ``torchvision_pipeline``
builds the same view as a per-image ``torchvision.transforms.v2`` pipeline for a DataLoader.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

GRAY_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R 601 luma, as torchvision (0.2989 there)
PRESETS = ("simclr", "moco_v2", "byol", "swav", "crop_only", "crop_jitter")
LARGE_IMAGE = 64  # from this side on, ImageNet practice (blur, jitter strength 1.0)
GREY_MIN_SCALE = 0.2  # crop scale lower bound for small grey images (see ``preset``)


# --------------------------------------------------------------------------- helpers
def _as_float_images(x: Tensor) -> Tensor:
    """uint8 -> float / 255; float stays as it is (assumed in [0, 1])."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a torch.Tensor batch, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(
            f"expected a batch N x C x H x W, got shape {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0)"
        )
    if x.dtype == torch.uint8:
        return x.float().div_(255.0)
    if not x.is_floating_point():
        raise TypeError(f"expected uint8 or float images in [0, 1], got dtype {x.dtype}")
    return x


def _check_generator(generator: torch.Generator | None) -> None:
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(
            "pass a CPU torch.Generator: parameters are drawn on the CPU so that a seed gives "
            "the same views on every device"
        )


def _check_p(p: float, name: str = "p") -> None:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{name} must be a probability in [0, 1], got {p}")


def _uniform(shape: int | tuple[int, ...], low: float, high: float,
             generator: torch.Generator | None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Uniform numbers in [low, high), drawn on the CPU."""
    shape = (shape,) if isinstance(shape, int) else shape
    return torch.rand(shape, generator=generator, dtype=dtype) * (high - low) + low


def _coin(n: int, p: float, generator: torch.Generator | None) -> Tensor:
    """Per-sample Bernoulli(p) draws (bool, N, on the CPU)."""
    _check_p(p)
    return torch.rand(n, generator=generator) < p


def _mask(coin: Tensor) -> Tensor:
    """Device-side coin (N or N x 1, any dtype) -> bool mask N x 1 x 1 x 1."""
    return (coin != 0).view(-1, 1, 1, 1)


def _to_device(params: dict[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """CPU parameters (N or N x k values each) -> ``device`` in ONE copy: packed into float64
    columns (exact for the int64 boxes, the float32 factors and the coins), pinned and copied
    with ``non_blocking=True`` on CUDA. Returns N x k float64 views of the packed tensor."""
    n = next(iter(params.values())).shape[0]
    columns = [v.reshape(n, -1).to(torch.float64) for v in params.values()]
    packed = torch.cat(columns, dim=1)  # N x P
    if device.type == "cuda":
        packed = packed.pin_memory()
    packed = packed.to(device, non_blocking=True)  # on the CPU: the same tensor, no copy
    return dict(zip(params, packed.split([c.shape[1] for c in columns], dim=1), strict=True))


def _per_sample(values: Tensor, x: Tensor) -> Tensor:
    """CPU vector of N values -> N x 1 x 1 x 1 on x's device and dtype."""
    return values.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def _gray(x: Tensor) -> Tensor:
    """Luma of an RGB batch, N x 1 x H x W (ITU-R 601)."""
    r, g, b = x.unbind(1)
    return (GRAY_WEIGHTS[0] * r + GRAY_WEIGHTS[1] * g + GRAY_WEIGHTS[2] * b).unsqueeze(1)


def _blend(x: Tensor, other: Tensor, factor: Tensor) -> Tensor:
    """factor * x + (1 - factor) * other, clamped to [0, 1] (torchvision's ``_blend``)."""
    return (factor * x + (1.0 - factor) * other).clamp_(0.0, 1.0)


# --------------------------------------------------------------------------- crops
def crop_params(n: int, height: int, width: int, scale: tuple[float, float] = (0.08, 1.0),
                ratio: tuple[float, float] = (3 / 4, 4 / 3),
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Crop boxes ``(top, left, h, w)`` (int64 vectors of length n), as torchvision's
    ``RandomResizedCrop.get_params`` but for n samples at once.

    Area uniform in ``scale * H * W``, log aspect ratio uniform in ``log(ratio)``,
    ``w = round(sqrt(area * ratio))``, ``h = round(sqrt(area / ratio))``; the first of 10
    attempts with ``0 < w <= W`` and ``0 < h <= H`` is kept, otherwise the central crop with the
    aspect ratio clamped to ``ratio``. ``top`` and ``left`` are uniform integers.
    """
    _check_generator(generator)
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {height} x {width}")
    if not 0.0 < scale[0] <= scale[1]:
        raise ValueError(f"scale must satisfy 0 < scale[0] <= scale[1], got {scale}")
    if not 0.0 < ratio[0] <= ratio[1]:
        raise ValueError(f"ratio must satisfy 0 < ratio[0] <= ratio[1], got {ratio}")
    attempts = 10
    f64 = torch.float64
    area = height * width * _uniform((n, attempts), scale[0], scale[1], generator, f64)
    log_r = _uniform((n, attempts), math.log(ratio[0]), math.log(ratio[1]), generator, f64)
    aspect = torch.exp(log_r)  # N x 10
    w = torch.round(torch.sqrt(area * aspect)).long()  # N x 10
    h = torch.round(torch.sqrt(area / aspect)).long()  # N x 10
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)  # N x 10
    first = ok.int().argmax(dim=1, keepdim=True)  # index of the first valid attempt
    found = ok.any(dim=1)  # N
    w = w.gather(1, first).squeeze(1)  # N
    h = h.gather(1, first).squeeze(1)  # N

    in_ratio = width / height  # fallback: central crop with the ratio clamped
    if in_ratio < ratio[0]:
        fw, fh = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        fw, fh = int(round(height * ratio[1])), height
    else:
        fw, fh = width, height
    w = torch.where(found, w, fw)
    h = torch.where(found, h, fh)

    u = torch.rand((n, 2), generator=generator, dtype=f64)  # N x 2
    top = torch.floor(u[:, 0] * (height - h + 1)).long()
    left = torch.floor(u[:, 1] * (width - w + 1)).long()
    top = torch.where(found, top, (height - fh) // 2)
    left = torch.where(found, left, (width - fw) // 2)
    return top, left, h, w


def resized_crop(x: Tensor, top: Tensor, left: Tensor, height: Tensor, width: Tensor,
                 size: int) -> Tensor:
    """Crop box i of image i and resize it bilinearly to size x size, in one batched op.

    ``affine_grid`` + ``grid_sample`` (align_corners=False) map the output exactly onto the box:
    output pixel j samples input coordinate ``left + (j + 0.5) * w / size - 0.5``, as
    torchvision's ``resized_crop`` without antialiasing (equal whenever the box is not smaller
    than the output; when upsampling, border samples may read one pixel outside the box).
    """
    x = _as_float_images(x)
    theta = _crop_theta(top, left, height, width, x.shape[2], x.shape[3])
    return _apply_crop(x, _to_device({"theta": theta}, x.device)["theta"], size)


def _crop_theta(top: Tensor, left: Tensor, height: Tensor, width: Tensor, H: int, W: int
                ) -> Tensor:
    """The affine map of each crop box, N x 6 (float64, on the CPU)."""
    theta = torch.zeros(len(top), 2, 3, dtype=torch.float64)  # N x 2 x 3
    theta[:, 0, 0] = width / W
    theta[:, 0, 2] = (2 * left + width) / W - 1
    theta[:, 1, 1] = height / H
    theta[:, 1, 2] = (2 * top + height) / H - 1
    return theta.view(-1, 6)


def _apply_crop(x: Tensor, theta: Tensor, size: int) -> Tensor:
    n, c = x.shape[:2]
    theta = theta.reshape(n, 2, 3).to(x.dtype)
    grid = F.affine_grid(theta, [n, c, size, size], align_corners=False)  # N x S x S x 2
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.clamp_(0.0, 1.0)  # N x C x S x S


def random_resized_crop(x: Tensor, size: int, scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        generator: torch.Generator | None = None) -> Tensor:
    """Random crop (``crop_params``) resized to size x size, per sample, without antialiasing."""
    x = _as_float_images(x)
    top, left, h, w = crop_params(x.shape[0], x.shape[2], x.shape[3], scale, ratio, generator)
    return resized_crop(x, top, left, h, w, size)


# --------------------------------------------------------------------------- simple ops
def horizontal_flip(x: Tensor, p: float = 0.5,
                    generator: torch.Generator | None = None) -> Tensor:
    """Mirror each image left-right with probability p."""
    _check_generator(generator)
    x = _as_float_images(x)
    coin = _to_device({"flip": _coin(x.shape[0], p, generator)}, x.device)["flip"]
    return torch.where(_mask(coin), x.flip(-1), x)


def random_grayscale(x: Tensor, p: float = 0.2,
                     generator: torch.Generator | None = None) -> Tensor:
    """Replace each RGB image by its luma (0.299 R + 0.587 G + 0.114 B) in all 3 channels with
    probability p; 1-channel images are returned unchanged."""
    _check_generator(generator)
    x = _as_float_images(x)
    coin = _coin(x.shape[0], p, generator)
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ValueError(f"grayscale needs 1 or 3 channels, got {x.shape[1]}")
    return _apply_grayscale(x, _to_device({"gray": coin}, x.device)["gray"])


def _apply_grayscale(x: Tensor, coin: Tensor) -> Tensor:
    return torch.where(_mask(coin), _gray(x).expand_as(x), x)


def solarize(x: Tensor, p: float = 0.2, threshold: float = 0.5,
             generator: torch.Generator | None = None) -> Tensor:
    """With probability p, pixels ``>= threshold`` become ``1 - x`` (BYOL, arXiv:2006.07733)."""
    _check_generator(generator)
    x = _as_float_images(x)
    coin = _to_device({"solarize": _coin(x.shape[0], p, generator)}, x.device)["solarize"]
    return _apply_solarize(x, coin, threshold)


def _apply_solarize(x: Tensor, coin: Tensor, threshold: float) -> Tensor:
    return torch.where(_mask(coin) & (x >= threshold), 1.0 - x, x)


def gaussian_noise(x: Tensor, std: float = 0.05, p: float = 0.5,
                   generator: torch.Generator | None = None) -> Tensor:
    """With probability p per image, add N(0, std^2) noise per pixel and clamp to [0, 1].

    The noise is drawn on ``x.device`` from a generator seeded by one draw of ``generator``, so
    results are reproducible per device (but differ between CPU and GPU).
    """
    _check_generator(generator)
    x = _as_float_images(x)
    coin = _coin(x.shape[0], p, generator)
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))  # a CPU draw: no device sync
    return _apply_noise(x, _to_device({"noise": coin}, x.device)["noise"], std, seed)


def _apply_noise(x: Tensor, coin: Tensor, std: float, seed: int) -> Tensor:
    noise_gen = torch.Generator(device=x.device).manual_seed(seed)
    noise = torch.randn(x.shape, generator=noise_gen, device=x.device, dtype=x.dtype)
    return torch.where(_mask(coin), (x + std * noise).clamp_(0.0, 1.0), x)


def default_kernel_size(image_size: int) -> int:
    """Blur kernel of about 10% of the side, odd, at least 3 (SimCLR's code: radius
    ``(side // 10) // 2``, so 23 for 224 px, 9 for 96 px, 3 for 28-32 px)."""
    return 2 * max(1, (image_size // 10) // 2) + 1


def gaussian_blur(x: Tensor, kernel_size: int | None = None,
                  sigma: tuple[float, float] = (0.1, 2.0), p: float = 0.5,
                  generator: torch.Generator | None = None) -> Tensor:
    """Gaussian blur with sigma uniform in ``sigma`` per image, applied with probability p.

    Separable depthwise convolution with reflect padding, as torchvision's ``gaussian_blur``;
    ``kernel_size=None`` takes ``default_kernel_size`` of the smaller image side.
    """
    _check_generator(generator)
    x = _as_float_images(x)
    params = _blur_params(x.shape[0], min(x.shape[2:]), kernel_size, sigma, p, generator)
    return _apply_blur(x, _to_device(params, x.device))


def _blur_params(n: int, side: int, kernel_size: int | None, sigma: tuple[float, float],
                 p: float, generator: torch.Generator | None) -> dict[str, Tensor]:
    """The coin and the normalised 1-D kernel (N x k, float32) of each image, on the CPU."""
    k = default_kernel_size(side) if kernel_size is None else kernel_size
    if k < 1 or k % 2 == 0 or k // 2 >= side:
        raise ValueError(f"kernel_size must be odd, positive and < 2 * image side, got {k}")
    if not 0.0 < sigma[0] <= sigma[1]:
        raise ValueError(f"sigma must satisfy 0 < sigma[0] <= sigma[1], got {sigma}")
    coin = _coin(n, p, generator)
    s = _uniform(n, sigma[0], sigma[1], generator)  # N
    t = torch.arange(-(k // 2), k // 2 + 1, dtype=torch.float32)  # k
    kernel = torch.exp(-0.5 * (t / s[:, None]) ** 2)  # N x k
    return {"blur": coin, "kernel": kernel / kernel.sum(dim=1, keepdim=True)}


def _apply_blur(x: Tensor, params: dict[str, Tensor]) -> Tensor:
    n, c, H, W = x.shape
    k = params["kernel"].shape[1]
    r = k // 2
    kernel = params["kernel"].to(x.dtype).repeat_interleave(c, dim=0)  # NC x k
    y = F.pad(x.reshape(1, n * c, H, W), (r, r, r, r), mode="reflect")
    y = F.conv2d(y, kernel.view(n * c, 1, 1, k), groups=n * c)  # 1 x NC x (H+2r) x W
    y = F.conv2d(y, kernel.view(n * c, 1, k, 1), groups=n * c)  # 1 x NC x H x W
    return torch.where(_mask(params["blur"]), y.view(n, c, H, W).clamp_(0.0, 1.0), x)


# --------------------------------------------------------------------------- colour
def adjust_brightness(x: Tensor, factor: Tensor) -> Tensor:
    """``factor[i] * x[i]`` clamped (torchvision ``adjust_brightness``); factor has N values."""
    x = _as_float_images(x)
    return (_per_sample(factor, x) * x).clamp_(0.0, 1.0)


def adjust_contrast(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each image with the mean of its grayscale (torchvision ``adjust_contrast``)."""
    x = _as_float_images(x)
    gray = _gray(x) if x.shape[1] == 3 else x
    mean = gray.mean(dim=(1, 2, 3), keepdim=True)  # N x 1 x 1 x 1
    return _blend(x, mean, _per_sample(factor, x))


def adjust_saturation(x: Tensor, factor: Tensor) -> Tensor:
    """Blend each RGB image with its grayscale (torchvision ``adjust_saturation``)."""
    x = _as_float_images(x)
    return _blend(x, _gray(x), _per_sample(factor, x))


def rgb_to_hsv(x: Tensor) -> Tensor:
    """RGB -> HSV, all in [0, 1], N x 3 x H x W (hue 0 for grey pixels)."""
    r, g, b = x.unbind(1)
    maxc, minc = x.amax(dim=1), x.amin(dim=1)
    delta = maxc - minc
    s = delta / torch.where(maxc > 0, maxc, torch.ones_like(maxc))
    safe = torch.where(delta > 0, delta, torch.ones_like(delta))
    rc, gc, bc = (maxc - r) / safe, (maxc - g) / safe, (maxc - b) / safe
    h = torch.where(maxc == r, bc - gc, torch.where(maxc == g, 2.0 + rc - bc, 4.0 + gc - rc))
    h = torch.where(delta > 0, (h / 6.0) % 1.0, torch.zeros_like(h))
    return torch.stack((h, s, maxc), dim=1)


def hsv_to_rgb(x: Tensor) -> Tensor:
    """HSV -> RGB: channel n in (5, 3, 1) is ``v - v s clamp(min(k, 4 - k), 0, 1)`` with
    ``k = (n + 6 h) mod 6``."""
    h, s, v = x.unbind(1)
    out = []
    for n in (5.0, 3.0, 1.0):
        k = (n + 6.0 * h) % 6.0
        out.append(v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return torch.stack(out, dim=1)


def adjust_hue(x: Tensor, shift: Tensor) -> Tensor:
    """Rotate the hue of each RGB image by ``shift[i]`` (in turns, |shift| <= 0.5)."""
    x = _as_float_images(x)
    hsv = rgb_to_hsv(x)
    h = (hsv[:, 0] + shift.to(device=x.device, dtype=x.dtype).view(-1, 1, 1)) % 1.0
    return hsv_to_rgb(torch.stack((h, hsv[:, 1], hsv[:, 2]), dim=1)).clamp_(0.0, 1.0)


def color_jitter(x: Tensor, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.2, hue: float = 0.1, p: float = 0.8,
                 random_order: bool = True,
                 generator: torch.Generator | None = None) -> Tensor:
    """torchvision's ``ColorJitter``, applied with probability p, factors drawn per image.

    Brightness, contrast and saturation factors are uniform in ``[max(0, 1 - v), 1 + v]`` and the
    hue shift uniform in ``[-hue, hue]``. With ``random_order`` (the default, as torchvision and
    the SimCLR and BYOL code) each image gets its own order of the four ops; otherwise the order
    is brightness, contrast, saturation, hue. 1-channel images get brightness and contrast only.
    """
    _check_generator(generator)
    x = _as_float_images(x)
    params = _jitter_params(x.shape[0], brightness, contrast, saturation, hue, p, random_order,
                            generator)
    return _apply_jitter(x, _to_device(params, x.device), (brightness, contrast, saturation, hue))


def _jitter_params(n: int, brightness: float, contrast: float, saturation: float, hue: float,
                   p: float, random_order: bool, generator: torch.Generator | None
                   ) -> dict[str, Tensor]:
    """The coin, the 4 factors (b, c, s, h) and the order of the 4 ops of each image (CPU)."""
    if min(brightness, contrast, saturation) < 0 or not 0.0 <= hue <= 0.5:
        raise ValueError("jitter strengths must be >= 0 and hue in [0, 0.5]")
    _check_p(p)
    apply = torch.rand(n, generator=generator) < p  # N
    factors = [_uniform(n, max(0.0, 1.0 - v), 1.0 + v, generator)
               for v in (brightness, contrast, saturation)]
    factors.append(_uniform(n, -hue, hue, generator))  # 4 x N: b, c, s, h
    if random_order:
        order = torch.rand((n, 4), generator=generator).argsort(dim=1)  # N x 4
    else:
        order = torch.arange(4).expand(n, 4)
    return {"jitter": apply, "factors": torch.stack(factors, dim=1), "order": order}


def _apply_jitter(x: Tensor, params: dict[str, Tensor], strengths: tuple,
                  masked: bool | None = None) -> Tensor:
    """At step s every jittered image gets its s-th op. On a device (``masked``, the default
    off the CPU) each op runs on the whole batch and a mask keeps it where it is due: no
    data-dependent shapes, no sync. On the CPU, where an index set costs no sync, each op runs
    on its images only (4x less work with hue); both give the same values."""
    c = x.shape[1]
    if c not in (1, 3):
        raise ValueError(f"color_jitter needs 1 or 3 channels, got {c}")
    brightness, contrast, saturation, hue = strengths
    ops = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
    active = (brightness > 0, contrast > 0, c == 3 and saturation > 0, c == 3 and hue > 0)
    apply, factors, order = params["jitter"] != 0, params["factors"], params["order"]
    masked = x.device.type != "cpu" if masked is None else masked
    x = x if masked else x.clone()  # the CPU path writes in place
    for step in range(4):
        for j in range(4):
            if not active[j]:
                continue
            due = apply & (order[:, step:step + 1] == j)  # N x 1
            if masked:
                x = torch.where(_mask(due), ops[j](x, factors[:, j]), x)
            else:
                idx = due.squeeze(1).nonzero().squeeze(1)  # a CPU index set: no sync
                x[idx] = ops[j](x[idx], factors[idx, j])
    return x


# --------------------------------------------------------------------------- pipelines
@dataclass(frozen=True)
class Augmentation:
    """The parameters of ONE view pipeline: crop -> flip -> colour jitter -> grayscale -> blur
    -> solarize -> noise (the order of SimCLR and BYOL). Ops with probability 0 are skipped."""

    size: int
    scale: tuple[float, float] = (0.08, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    jitter_p: float = 0.8
    grayscale_p: float = 0.0
    blur_p: float = 0.0
    blur_kernel: int | None = None  # None: default_kernel_size(size)
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    solarize_p: float = 0.0
    solarize_threshold: float = 0.5
    noise_std: float = 0.0
    noise_p: float = 0.5

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValueError(f"size must be a positive int, got {self.size}")
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p", "solarize_p", "noise_p"):
            _check_p(getattr(self, name), name)

    @property
    def has_jitter(self) -> bool:
        return self.jitter_p > 0 and max(self.brightness, self.contrast,
                                         self.saturation, self.hue) > 0

    def draw(self, x: Tensor, generator: torch.Generator | None = None
             ) -> tuple[dict[str, Tensor], int | None]:
        """All per-sample parameters of one view, on the CPU, drawn in the order of the ops
        (the same numbers as calling the ops one by one), and the noise seed."""
        _check_generator(generator)
        n, c, H, W = x.shape
        if (self.has_jitter or self.grayscale_p > 0) and c not in (1, 3):
            raise ValueError(f"colour ops need 1 or 3 channels, got {c}")
        top, left, h, w = crop_params(n, H, W, self.scale, self.ratio, generator)
        params = {"theta": _crop_theta(top, left, h, w, H, W)}
        if self.flip_p > 0:
            params["flip"] = _coin(n, self.flip_p, generator)
        if self.has_jitter:
            params.update(_jitter_params(n, self.brightness, self.contrast, self.saturation,
                                         self.hue, self.jitter_p, True, generator))
        if self.grayscale_p > 0:
            params["gray"] = _coin(n, self.grayscale_p, generator)
        if self.blur_p > 0:
            params.update(_blur_params(n, self.size, self.blur_kernel, self.blur_sigma,
                                       self.blur_p, generator))
        if self.solarize_p > 0:
            params["solarize"] = _coin(n, self.solarize_p, generator)
        seed = None
        if self.noise_std > 0 and self.noise_p > 0:
            params["noise"] = _coin(n, self.noise_p, generator)
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        return params, seed

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        x = _as_float_images(x)
        params, seed = self.draw(x, generator)
        p = _to_device(params, x.device)  # one copy per view
        x = _apply_crop(x, p["theta"], self.size)
        if "flip" in p:
            x = torch.where(_mask(p["flip"]), x.flip(-1), x)
        if "jitter" in p:
            x = _apply_jitter(x, p, (self.brightness, self.contrast, self.saturation, self.hue))
        if "gray" in p and x.shape[1] == 3:
            x = _apply_grayscale(x, p["gray"])
        if "blur" in p:
            x = _apply_blur(x, p)
        if "solarize" in p:
            x = _apply_solarize(x, p["solarize"], self.solarize_threshold)
        if seed is not None:
            x = _apply_noise(x, p["noise"], self.noise_std, seed)
        return x  # N x C x size x size


@dataclass(frozen=True)
class MultiView:
    """Several view pipelines; ``aug(x, generator)`` returns one batch per view."""

    views: tuple[Augmentation, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "views", tuple(self.views))
        if not self.views:
            raise ValueError("MultiView needs at least one Augmentation")

    def __len__(self) -> int:
        return len(self.views)

    @property
    def sizes(self) -> list[int]:
        return [v.size for v in self.views]

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> list[Tensor]:
        x = _as_float_images(x)
        return [view(x, generator) for view in self.views]


def _colour(b: float, c: float, s: float, h: float, channels: int) -> dict[str, float]:
    """Jitter strengths with p = 0.8 and grayscale p = 0.2; brightness/contrast only for grey."""
    if channels == 1:
        return dict(brightness=b, contrast=c, jitter_p=0.8)
    return dict(brightness=b, contrast=c, saturation=s, hue=h, jitter_p=0.8, grayscale_p=0.2)


def preset(name: str, image_size: int = 28, channels: int = 1, *, small_crops: int = 0,
           small_size: int | None = None, **overrides: Any) -> MultiView:
    """The view pipelines of a paper, adapted to the image size.

    - ``simclr`` (arXiv:2002.05709, App. A): crop 0.08-1, flip, jitter 0.8s/0.8s/0.8s/0.2s with
      p = 0.8, grayscale p = 0.2, blur p = 0.5; two identical views.
    - ``moco_v2`` (arXiv:2003.04297): crop 0.2-1, jitter 0.4/0.4/0.4/0.1 p = 0.8, grayscale 0.2,
      blur p = 0.5, flip.
    - ``byol`` (arXiv:2006.07733, Table 6): crop 0.08-1, flip, jitter 0.4/0.4/0.2/0.1 p = 0.8,
      grayscale 0.2; view 1 blur p = 1.0, solarize 0; view 2 blur p = 0.1, solarize p = 0.2.
    - ``swav`` (arXiv:2006.09882): 2 crops of scale 0.14-1 at ``image_size`` plus
      ``small_crops`` crops of scale 0.05-0.14 at ``small_size`` (default the paper's
      96/224 of the side: 12 px for 28, 14 for 32, 41 for 96); SimCLR colour ops.
    - ``crop_only`` (crop + flip) and ``crop_jitter`` (crop + flip + SimCLR's colour distortion:
      jitter and grayscale, or brightness/contrast for grey images): the augmentation ablation.

    Size rules. Images of side >= 64 (STL-10 96 px) follow ImageNet practice: jitter strength
    s = 1.0 and blur with a kernel of 10% of the side (9 px at 96). Smaller images (CIFAR 32 px,
    Fashion-MNIST 28 px) follow the SimCLR CIFAR recipe: s = 0.5 and no blur (the paper drops it
    on CIFAR; solo-learn's CIFAR configs do the same for BYOL), so BYOL's views differ only by
    solarization there. Grey images (channels = 1) get brightness and contrast only (saturation,
    hue and grayscale do nothing on them). For small grey images the crop scale lower bound 0.08
    is raised to 0.2 (MoCo v2's value): 8% of 28 x 28 is a 8 x 8 patch, often plain background
    on Fashion-MNIST, which gives positives with no object in them.

    Keyword ``overrides`` replace fields of every view (e.g. ``blur_p=0.5``, ``noise_std=0.05``).
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid names: {', '.join(PRESETS)}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8, got {image_size}")
    if name != "swav" and (small_crops or small_size is not None):
        raise ValueError("small_crops and small_size are options of the 'swav' preset only")
    allowed = {f.name for f in fields(Augmentation)} - {"size"}
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ValueError(f"unknown Augmentation fields {unknown}; valid: {sorted(allowed)} "
                         "(set the output size with image_size)")

    large = image_size >= LARGE_IMAGE
    s = 1.0 if large else 0.5  # SimCLR jitter strength: 1.0 ImageNet, 0.5 CIFAR
    blur = 0.5 if large else 0.0
    low = GREY_MIN_SCALE if channels == 1 and image_size <= 32 else 0.08
    simclr_colour = _colour(0.8 * s, 0.8 * s, 0.8 * s, 0.2 * s, channels)
    if name == "simclr":
        views = [Augmentation(image_size, scale=(low, 1.0), blur_p=blur, **simclr_colour)] * 2
    elif name == "moco_v2":
        colour = _colour(0.4, 0.4, 0.4, 0.1, channels)
        views = [Augmentation(image_size, scale=(0.2, 1.0), blur_p=blur, **colour)] * 2
    elif name == "byol":
        colour = _colour(0.4, 0.4, 0.2, 0.1, channels)
        views = [Augmentation(image_size, scale=(low, 1.0), blur_p=1.0 if large else 0.0,
                              **colour),
                 Augmentation(image_size, scale=(low, 1.0), blur_p=0.1 if large else 0.0,
                              solarize_p=0.2, **colour)]
    elif name == "swav":
        small = small_size if small_size is not None else round(image_size * 96 / 224)
        views = ([Augmentation(image_size, scale=(0.14, 1.0), blur_p=blur, **simclr_colour)] * 2
                 + [Augmentation(small, scale=(0.05, 0.14), blur_p=blur, **simclr_colour)]
                 * small_crops)
    elif name == "crop_only":
        views = [Augmentation(image_size, scale=(low, 1.0), jitter_p=0.0)] * 2
    else:  # crop_jitter
        views = [Augmentation(image_size, scale=(low, 1.0), **simclr_colour)] * 2
    return MultiView(tuple(replace(v, **overrides) for v in views))


# --------------------------------------------------------------------------- torchvision
def to_torchvision(aug: Augmentation) -> Callable:
    """The same view as a per-image ``torchvision.transforms.v2.Compose`` (PIL image or uint8
    C x H x W tensor in, float C x size x size in [0, 1] out). Its crop resizes with
    antialiasing, unlike the batched ``resized_crop``; noise comes after ``ToDtype``."""
    from torchvision.transforms import v2

    t: list[Callable] = [v2.RandomResizedCrop(aug.size, scale=aug.scale, ratio=aug.ratio,
                                              antialias=True)]
    if aug.flip_p > 0:
        t.append(v2.RandomHorizontalFlip(aug.flip_p))
    if aug.has_jitter:
        jitter = v2.ColorJitter(aug.brightness, aug.contrast, aug.saturation, aug.hue)
        t.append(v2.RandomApply([jitter], p=aug.jitter_p))
    if aug.grayscale_p > 0:
        t.append(v2.RandomGrayscale(aug.grayscale_p))
    if aug.blur_p > 0:
        k = aug.blur_kernel or default_kernel_size(aug.size)
        t.append(v2.RandomApply([v2.GaussianBlur(k, aug.blur_sigma)], p=aug.blur_p))
    if aug.solarize_p > 0:  # on uint8 / PIL values: x >= 127.5 means x >= 128
        t.append(v2.RandomSolarize(aug.solarize_threshold * 255, p=aug.solarize_p))
    t += [v2.ToImage(), v2.ToDtype(torch.float32, scale=True)]
    if aug.noise_std > 0 and aug.noise_p > 0:
        t.append(v2.RandomApply([v2.GaussianNoise(sigma=aug.noise_std, clip=True)],
                                p=aug.noise_p))
    return v2.Compose(t)


def torchvision_pipeline(name: str, image_size: int = 28, channels: int = 1, view: int = 0,
                         **overrides: Any) -> Callable:
    """One view of ``preset(name, image_size, channels, **overrides)`` (the first by default) as
    a per-image torchvision pipeline, for the DataLoader baseline (lightly / solo-learn style)."""
    return to_torchvision(preset(name, image_size, channels, **overrides).views[view])


class TwoViewTransform:
    """Per-image multi-view transform for a Dataset: one pipeline applied ``n_views`` times, or
    a list of pipelines applied once each (e.g. BYOL's two asymmetric views)."""

    def __init__(self, pipeline_or_list: Callable | Sequence[Callable], n_views: int = 2):
        if callable(pipeline_or_list):
            self.transforms = [pipeline_or_list] * n_views
        else:
            self.transforms = list(pipeline_or_list)
        if not self.transforms:
            raise ValueError("TwoViewTransform needs at least one pipeline")

    def __call__(self, image: Any) -> list[Tensor]:
        return [t(image) for t in self.transforms]
