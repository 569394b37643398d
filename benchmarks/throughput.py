"""Training throughput: sslbook's on-device batched augmentation vs the per-image pipeline.

    python benchmarks/throughput.py [--steps 30] [--batch-size 256] [--device cuda]

Both sides train the same SimCLR convnet with the same augmentations and batch size, in one run
on one machine. The per-image side is what lightly and solo-learn do: a torchvision
``transforms.v2`` pipeline applied to each PIL image in a DataLoader with 2 workers, the two
views collated into batches and then moved to the device. Prints images/s, the ratio and the
achieved FLOP rate (forward + backward FLOPs counted by ``torch.utils.flop_counter``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import provenance, table, write  # noqa: E402

from sslbook import augment, data, default_device, methods, models  # noqa: E402


class PerImageViews(Dataset):
    """uint8 images -> PIL -> the torchvision pipeline twice (the per-image baseline)."""

    def __init__(self, images: torch.Tensor, transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        image = Image.fromarray(self.images[i, 0].numpy(), mode="L")
        return self.transform(image)


def make_method(device: torch.device):
    mean, std = data.STATS["fashion-mnist"]
    torch.manual_seed(0)
    method = methods.create("simclr", models.create("convnet", 1, mean, std, 28))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device")
    args = parser.parse_args()
    device = torch.device(args.device or default_device())
    images, _ = data.fashion_mnist("train")
    images = images[: args.batch_size * (args.steps + 3)]

    # sslbook: uint8 set on the device, per-sample parameters, one batched op per transform
    method, optimizer = make_method(device)
    on_device = augment.preset("simclr", image_size=28, channels=1)
    resident = images.to(device)
    generator = torch.Generator().manual_seed(0)

    def device_batches():
        for start in range(0, len(resident), args.batch_size):
            yield on_device(resident[start:start + args.batch_size], generator=generator)

    ours = timed(device_batches(), method, optimizer, device, args.steps)

    # per image: PIL + transforms.v2 in DataLoader workers (lightly / solo-learn style)
    method, optimizer = make_method(device)
    transform = augment.TwoViewTransform(augment.torchvision_pipeline("simclr", 28, 1))
    loader = DataLoader(PerImageViews(images, transform), batch_size=args.batch_size,
                        num_workers=args.workers, drop_last=True, persistent_workers=False,
                        pin_memory=device.type == "cuda")

    def loader_batches():
        for views in loader:
            yield [v.to(device, non_blocking=True) for v in views]

    theirs = timed(loader_batches(), method, optimizer, device, args.steps)

    # FLOPs of one training step (forward + backward) of the model, augmentation excluded
    method, optimizer = make_method(device)
    views = on_device(resident[: args.batch_size], generator=generator)
    with FlopCounterMode(display=False) as counter:
        train_step(method, optimizer, views, device)
    flops_per_image = counter.get_total_flops() / args.batch_size
    rows = [{"pipeline": "sslbook on-device batched", "images_per_second": ours,
             "tflops": ours * flops_per_image / 1e12},
            {"pipeline": f"per-image transforms.v2, DataLoader({args.workers} workers)",
             "images_per_second": theirs, "tflops": theirs * flops_per_image / 1e12}]
    record = {"benchmark": "throughput", **provenance(device), "batch_size": args.batch_size,
              "steps": args.steps, "model": "SimCLR convnet (28x28x1)",
              "flops_per_image": flops_per_image, "ratio": ours / theirs, "rows": rows}
    write("throughput" if device.type == "cpu" else f"throughput_{device.type}", record)
    print(table(rows, [("pipeline", "pipeline", ""), ("images_per_second", "images/s", ".0f"),
                       ("tflops", "achieved TFLOP/s", ".4f")]))
    print(f"ratio (on-device / per-image): {ours / theirs:.2f}x on {device.type}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
