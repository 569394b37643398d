"""Training throughput: sslbook's on-device batched augmentation vs the per-image pipeline.

    python benchmarks/throughput.py [--steps 20] [--rounds 3] [--widths 32,16] [--device cuda]

Both sides train the same SimCLR convnet with the same augmentations and batch size, in one run
on one machine, on Fashion-MNIST (28 x 28 grey) and on random colour images of CIFAR-10's shape
(32 x 32 RGB, where the per-image colour jitter costs more). The per-image side is what lightly
and solo-learn do: a torchvision ``transforms.v2`` pipeline applied to each PIL image in a
DataLoader with 2 workers, the two views collated into batches and then moved to the device.
Prints images/s of training, the ratio, the achieved FLOP rate (forward + backward FLOPs
counted by ``torch.utils.flop_counter``) and, for scale, images/s of each pipeline producing
its two views with no model behind it. A third row per setting trains on views made once in
advance: the model alone, the speed no augmentation pipeline can beat. Its ratio to the
per-image row bounds the end-to-end ratio, so the run is repeated for each convnet width in
``--widths`` (32, the width the book pretrains, and 16, a cheaper model). The three training
measurements are interleaved in ``--rounds`` rounds of ``--steps`` steps and the median of each
is reported, so that a slow spell of a shared machine does not fall on one pipeline only.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import provenance, table, write  # noqa: E402
from report import THROUGHPUT_COLUMNS, throughput_ratios  # noqa: E402

from sslbook import augment, data, default_device, methods, models  # noqa: E402


class PerImageViews(Dataset):
    """uint8 images -> PIL -> the torchvision pipeline twice (the per-image baseline)."""

    def __init__(self, images: torch.Tensor, transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image = self.images[i].permute(1, 2, 0).squeeze(2).numpy()  # H x W (x C)
        return self.transform(Image.fromarray(image, mode="L" if image.ndim == 2 else "RGB"))


# name -> (images, augmentation preset, size, channels). Throughput does not depend on what the
# pixels show, so the colour setting uses random images of CIFAR-10's shape (no download).
SETTINGS = {
    "fashion-mnist": "Fashion-MNIST 28x28x1, SimCLR crop/flip/brightness+contrast",
    "rgb32": "random 32x32x3 (CIFAR-10 shape), SimCLR crop/flip/colour jitter/grayscale",
}


def load_images(setting: str, n: int) -> torch.Tensor:
    if setting == "fashion-mnist":
        return data.fashion_mnist("train")[0][:n]
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=generator)


def make_method(device: torch.device, channels: int, size: int, width: int):
    mean, std = data.STATS["fashion-mnist" if channels == 1 else "cifar10"]
    torch.manual_seed(0)
    encoder = models.create("convnet", channels, mean, std, size, width=width)
    method = methods.create("simclr", encoder)
    method = method.to(device, memory_format=torch.channels_last)  # as sslbook.train does
    return method, torch.optim.SGD(method.parameters(), lr=0.01, momentum=0.9)


def train_step(method, optimizer, views, device) -> None:
    views = [v.contiguous(memory_format=torch.channels_last) for v in views]
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        loss = method(views)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def timed(batches, method, optimizer, device, steps: int, warmup: int = 3) -> float:
    """images/s over ``steps`` training steps after ``warmup`` untimed ones."""
    batches = iter(batches)
    for _ in range(warmup):
        train_step(method, optimizer, next(batches), device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    tic, n = time.perf_counter(), 0
    for _ in range(steps):
        views = next(batches)
        train_step(method, optimizer, views, device)
        n += len(views[0])
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return n / (time.perf_counter() - tic)


def measure(setting: str, width: int, args: argparse.Namespace, device: torch.device) -> dict:
    """Both pipelines on one setting and model width: images/s, TFLOP/s and their ratio."""
    channels, size = (1, 28) if setting == "fashion-mnist" else (3, 32)
    images = load_images(setting, args.batch_size * (args.steps + 3))

    # sslbook: uint8 set on the device, per-sample parameters, one batched op per transform
    on_device = augment.preset("simclr", image_size=size, channels=channels)
    resident = images.to(device)
    generator = torch.Generator().manual_seed(0)

    def device_batches():
        for start in range(0, len(resident), args.batch_size):
            yield on_device(resident[start:start + args.batch_size], generator=generator)

    # per image: PIL + transforms.v2 in DataLoader workers (lightly / solo-learn style)
    transform = augment.TwoViewTransform(augment.torchvision_pipeline("simclr", size, channels))
    loader = DataLoader(PerImageViews(images, transform), batch_size=args.batch_size,
                        num_workers=args.workers, drop_last=True, persistent_workers=False,
                        pin_memory=device.type == "cuda")

    def loader_batches():
        for views in loader:
            yield [v.to(device, non_blocking=True) for v in views]

    # the model alone: the same views every step, made before the clock starts
    fixed = on_device(resident[: args.batch_size], generator=generator)
    pipelines = {"ours": device_batches, "theirs": loader_batches,
                 "model": lambda: itertools.repeat(fixed)}
    nets = {name: make_method(device, channels, size, width) for name in pipelines}
    speeds = {name: [] for name in pipelines}
    for _ in range(args.rounds):  # interleaved: a slow spell of the machine hits all three
        for name, batches in pipelines.items():
            speeds[name].append(timed(batches(), *nets[name], device, args.steps))
    ours, theirs, model_alone = (statistics.median(speeds[name]) for name in pipelines)

    # the pipelines alone, no model: how many two-view batches per second each can deliver
    def views_only(batches, steps: int = args.steps) -> float:
        batches = iter(batches)
        next(batches)  # workers started, first batch out
        tic = time.perf_counter()
        n = sum(len(next(batches)[0]) for _ in range(steps))
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return n / (time.perf_counter() - tic)

    ours_alone, theirs_alone = views_only(device_batches()), views_only(loader_batches())

    # FLOPs of one training step (forward + backward) of the model, augmentation excluded
    with FlopCounterMode(display=False) as counter:
        train_step(*nets["model"], fixed, device)
    flops = counter.get_total_flops() / args.batch_size  # per image (two views)
    per_image = f"per-image transforms.v2, DataLoader({args.workers} workers)"
    rows = [{"pipeline": "sslbook on-device batched", "images_per_second": ours,
             "views_only_images_per_second": ours_alone},
            {"pipeline": per_image, "images_per_second": theirs,
             "views_only_images_per_second": theirs_alone},
            {"pipeline": "model alone (views made in advance)", "images_per_second": model_alone}]
    rows = [{"setting": setting, "width": width, **row,
             "tflops": row["images_per_second"] * flops / 1e12} for row in rows]
    return {"setting": setting, "width": width, "description": SETTINGS[setting],
            "flops_per_image": flops, "ratio": ours / theirs,
            "views_only_ratio": ours_alone / theirs_alone, "ceiling_ratio": model_alone / theirs,
            "rounds_images_per_second": speeds, "rows": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds per pipeline (the median is reported)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--widths", default="32,16",
                        help="comma-separated convnet widths (32 is the book's pretraining width)")
    parser.add_argument("--settings", default=",".join(SETTINGS),
                        help=f"comma-separated, from {', '.join(SETTINGS)}")
    parser.add_argument("--device")
    args = parser.parse_args()
    unknown = [s for s in args.settings.split(",") if s not in SETTINGS]
    if unknown:
        parser.error(f"unknown setting(s) {unknown}; choose from {', '.join(SETTINGS)}")
    try:
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        parser.error(f"--widths takes comma-separated integers, got {args.widths!r}")
    device = torch.device(args.device or default_device())
    record = {"benchmark": "throughput", **provenance(device), "batch_size": args.batch_size,
              "steps": args.steps, "rounds": args.rounds, "model": "SimCLR convnet",
              "settings": []}
    for setting in args.settings.split(","):
        for width in widths:
            record["settings"].append(measure(setting, width, args, device))
    rows = [row for s in record["settings"] for row in s["rows"]]
    record["rows"] = rows
    write("throughput" if device.type == "cpu" else f"throughput_{device.type}", record)
    print(table(rows, THROUGHPUT_COLUMNS))
    for s in record["settings"]:
        print(f"on-device / per-image on {device.type}, {throughput_ratios(s)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
