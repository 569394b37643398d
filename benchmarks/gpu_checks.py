"""CUDA checks of issue 18, point 3 (precision and speed), run by ``benchmarks/gpu_check.sh``.

    python benchmarks/gpu_checks.py [--device cuda] [--json OUT.json]      # the checks, ~1 min
    python benchmarks/gpu_checks.py --bench eager|compile [--json OUT.json] # one SimCLR epoch

Each check prints one line ``PASS|FAIL|SKIP name: detail``. With ``--device cpu`` the checks
that need CUDA print SKIP and name the CPU test that proves what can be proven without a GPU:

- ``aug_syncs``: synchronising CUDA calls (``torch.cuda.set_sync_debug_mode``) in one call of
  the SimCLR views (RGB 32 x 32, batch 512): 0 expected. CPU: tests/test_augment_device.py
  (no host reads, one parameter copy per view, bit-identical views).
- ``step_syncs_simclr|moco``: syncs per training step, from the difference of two runs of 10
  and 30 steps (the loss window is read once per run): 0 expected. CPU: tests/test_gpu_ready.py
  (losses read once per window; forwards without host reads or copies).
- ``swav_fp32``: SwAV's prototype scores and Sinkhorn's input are float32 under bf16 autocast
  (runs on the CPU too).
- ``precision_fp32|bf16|fp16``: a short SimCLR run per precision, losses finite (runs on the CPU
  too; bf16 only where the GPU has it natively).
- ``moco_split_bn``: MoCo's split BatchNorm (one forward) against one forward per chunk, on the
  device, with TF32 off (runs on the CPU too; the CPU test holds it to 1e-6).
- ``--bench eager|compile``: one epoch of SimCLR with ResNet-18 on CIFAR-10-sized synthetic
  data (50,000 x 3 x 32 x 32 uint8, batch 512, default precision) after a 10-step warm-up run
  in the same process; prints images/s and, for compile, the compile seconds (warm-up wall time
  minus 10 steady steps). Run once per mode, each in its own process (cold compile caches).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sslbook import augment, methods, models  # noqa: E402
from sslbook.methods import swav as swav_module  # noqa: E402
from sslbook.train import pretrain, resolve_precision  # noqa: E402

RESULTS: list[dict] = []


def report(status: str, name: str, detail: str, **values) -> None:
    RESULTS.append({"status": status, "name": name, "detail": detail, **values})
    print(f"{status} {name}: {detail}", flush=True)


def count_syncs(fn) -> tuple[int, object]:
    """Synchronising CUDA calls made by ``fn()``, as warned by ``set_sync_debug_mode``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("warn")
        try:
            out = fn()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchroniz" in str(w.message)]
    return len(syncs), out


def synthetic(n: int, channels: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=g)


def small(name: str, **kw):
    torch.manual_seed(0)
    encoder = models.create("convnet", channels=1, width=16)
    sizes = {"simsiam": {"dim": 64, "pred_dim": 16}}.get(name, {"hidden_dim": 64, "out_dim": 32})
    return methods.create(name, encoder, **{**sizes, **kw})


def check_aug_syncs(device: torch.device) -> None:
    if device.type != "cuda":
        return report("SKIP", "aug_syncs", "needs CUDA (CPU proof: tests/test_augment_device.py)")
    views = augment.preset("simclr", 32, 3)
    x = synthetic(512, 3, 32).to(device)
    views(x, generator=torch.Generator().manual_seed(0))  # warm-up (kernels, pinned pool)
    g = torch.Generator().manual_seed(1)
    t = time.perf_counter()
    n, out = count_syncs(lambda: views(x, generator=g))
    torch.cuda.synchronize()
    ms = 1000 * (time.perf_counter() - t)
    report("PASS" if n == 0 else "FAIL", "aug_syncs",
           f"{n} synchronising calls in one 2-view call (batch 512, RGB 32), {ms:.1f} ms",
           syncs=n, ms=ms)


def check_step_syncs(device: torch.device, name: str) -> None:
    if device.type != "cuda":
        return report("SKIP", f"step_syncs_{name}",
                      "needs CUDA (CPU proof: tests/test_gpu_ready.py)")
    aug = augment.preset("simclr", 28, 1)
    counts = {}
    for steps in (10, 30):
        x = synthetic(steps * 64, 1, 28)
        run = {"epochs": 1, "batch_size": 64, "augment": aug, "device": device,
               "progress": False, "sync_every": 10**6}
        pretrain(small(name), x, **run)  # warm-up: the first steps set up kernels
        counts[steps], _ = count_syncs(lambda run=run, x=x: pretrain(small(name), x, **run))
    per_step = (counts[30] - counts[10]) / 20
    report("PASS" if per_step == 0 else "FAIL", f"step_syncs_{name}",
           f"{per_step:g} syncs per step ({counts[10]} in a 10-step run, {counts[30]} in 30: "
           "set-up and the one loss read per run)", per_step=per_step, counts=counts)


def check_swav_fp32(device: torch.device) -> None:
    method = small("swav", n_prototypes=30).to(device)
    seen = []
    original = swav_module.sinkhorn

    def spy(scores, *args, **kwargs):
        seen.append(scores.dtype)
        return original(scores, *args, **kwargs)

    swav_module.sinkhorn = spy
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            z = F.normalize(torch.randn(16, 32, device=device), dim=1)
            linear, scores = method.prototypes(z).dtype, method.prototype_scores(z).dtype
            loss = method([torch.rand(16, 1, 28, 28, device=device) for _ in range(2)])
    finally:
        swav_module.sinkhorn = original
    ok = scores == torch.float32 and set(seen) == {torch.float32} and torch.isfinite(loss)
    report("PASS" if ok else "FAIL", "swav_fp32",
           f"under bf16 autocast: nn.Linear gives {linear}, prototype_scores {scores}, Sinkhorn "
           f"inputs {sorted({str(s) for s in seen})}, loss {loss.item():.4f}")


def check_precision(device: torch.device, precision: str) -> None:
    name = f"precision_{precision}"
    try:
        resolved = resolve_precision(precision, device)
    except ValueError as err:
        return report("SKIP", name, str(err))
    x = synthetic(256, 1, 28)
    t = time.perf_counter()
    history = pretrain(small("simclr"), x, epochs=2, batch_size=64, device=device,
                       augment=augment.preset("simclr", 28, 1), progress=False,
                       precision=resolved, sync_every=4)
    seconds = time.perf_counter() - t
    ok = len(history["loss"]) == 8 and all(math.isfinite(v) for v in history["loss"])
    report("PASS" if ok else "FAIL", name,
           f"SimCLR convnet, 8 steps of 64: losses {history['loss'][0]:.3f} -> "
           f"{history['loss'][-1]:.3f}, {seconds:.1f} s (default here: "
           f"{resolve_precision(None, device)})", loss=history["loss"])


class ChunkedMoCo(methods.MoCo):
    """MoCo before split BatchNorm: one encoder forward per chunk through plain BatchNorm (the
    reference of tests/test_gpu_ready.py on the CPU and of this check on CUDA)."""

    def __init__(self, encoder, bn_splits, **kw):
        super().__init__(encoder, bn_splits=1, **kw)
        self.bn_splits, self.split = bn_splits, True

    def _chunked(self, encoder, projector, x):
        return torch.cat([projector(encoder(c)) for c in x.chunk(self.bn_splits)])

    def _query(self, x):
        return F.normalize(self._chunked(self.encoder, self.projector, x), dim=1)

    @torch.no_grad()
    def _key(self, x):
        perm = torch.randperm(x.shape[0], device=x.device)
        k = self._chunked(self.encoder_k, self.projector_k, x[perm])
        return F.normalize(k[torch.argsort(perm)].float(), dim=1)


def check_moco_split_bn(device: torch.device) -> None:
    tf32 = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    kw = {"hidden_dim": 64, "out_dim": 32, "queue_size": 512, "head_batch_norm": True}
    pair = []
    for cls, extra in ((methods.MoCo, {"bn_splits": 8}), (ChunkedMoCo, {"bn_splits": 8})):
        torch.manual_seed(0)
        pair.append(cls(models.create("convnet", channels=1, width=16), **extra, **kw).to(device))
    x = [torch.rand(128, 1, 28, 28, device=device) for _ in range(2)]
    out = []
    for method in pair:
        torch.manual_seed(7)
        if device.type == "cuda":
            torch.cuda.manual_seed(7)
        loss = method(x)
        loss.backward()
        out.append(loss.item())
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    new, old = pair
    grad = max(((a.grad - b.grad).abs().max() / b.grad.abs().max().clamp(min=1e-12)).item()
               for a, b in zip(new.parameters(), old.parameters(), strict=True)
               if a.grad is not None)
    buf = max((a.double() - b.double()).abs().max().item()
              for a, b in zip(new.buffers(), old.buffers(), strict=True))
    ok = abs(out[0] - out[1]) < 1e-5 and buf < 1e-5 and grad < 1e-4
    report("PASS" if ok else "FAIL", "moco_split_bn",
           f"8 splits, batch 128, TF32 off: |loss diff| {abs(out[0] - out[1]):.2e}, max buffer "
           f"diff {buf:.2e} (running stats, queue), max gradient diff / max gradient {grad:.2e}",
           loss_diff=abs(out[0] - out[1]), buffer_diff=buf, grad_rel_diff=grad)


def bench(device: torch.device, mode: str, n: int, batch: int, backend: str) -> None:
    """One epoch of SimCLR + ResNet-18 on n synthetic CIFAR-sized images, after a warm-up."""
    torch.manual_seed(0)
    method = methods.create("simclr", models.create("resnet18", channels=3))
    x = synthetic(n, 3, 32)
    run = {"batch_size": batch, "augment": augment.preset("simclr", 32, 3), "device": device,
           "progress": False, "compile": backend if mode == "compile" else False}
    t = time.perf_counter()
    warm = pretrain(method, x[:10 * batch], epochs=1, **run)  # 10 steps; compiles in compile mode
    warm_s = time.perf_counter() - t
    t = time.perf_counter()
    history = pretrain(method, x, epochs=1, **run)
    if device.type == "cuda":
        torch.cuda.synchronize()
    epoch_s = time.perf_counter() - t
    steps = n // batch
    ips = steps * batch / epoch_s
    compile_s = warm_s - 10 * epoch_s / steps
    ok = all(math.isfinite(v) for v in warm["loss"] + history["loss"])
    detail = (f"SimCLR ResNet-18, {n} x 3 x 32 x 32, batch {batch}, precision "
              f"{resolve_precision(None, device)}: one epoch ({steps} steps) {epoch_s:.1f} s, "
              f"{ips:.0f} images/s; warm-up 10 steps {warm_s:.1f} s")
    if mode == "compile":
        detail += f" (compile ~{compile_s:.0f} s, backend {backend})"
    report("PASS" if ok else "FAIL", f"bench_{mode}", detail, images_per_second=ips,
           epoch_seconds=epoch_s, warmup_seconds=warm_s,
           compile_seconds=compile_s if mode == "compile" else None)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bench", choices=("eager", "compile"), help="time one SimCLR epoch")
    p.add_argument("--images", type=int, default=50_000, help="--bench: training images")
    p.add_argument("--batch-size", type=int, default=512, help="--bench: batch size")
    p.add_argument("--backend", default="inductor", help="--bench compile: torch.compile backend")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    if args.bench:
        checks = [(f"bench_{args.bench}",
                   lambda: bench(device, args.bench, args.images, args.batch_size, args.backend))]
    else:
        checks = [("aug_syncs", lambda: check_aug_syncs(device)),
                  ("step_syncs_simclr", lambda: check_step_syncs(device, "simclr")),
                  ("step_syncs_moco", lambda: check_step_syncs(device, "moco")),
                  ("swav_fp32", lambda: check_swav_fp32(device)),
                  *[(f"precision_{p}", lambda p=p: check_precision(device, p))
                    for p in ("fp32", "bf16", "fp16")],
                  ("moco_split_bn", lambda: check_moco_split_bn(device))]
    for name, check in checks:
        try:
            check()
        except Exception as err:  # one failing check must not hide the others
            report("FAIL", name, f"{type(err).__name__}: {' '.join(str(err).split())[:300]}")
    if args.json:
        Path(args.json).write_text(json.dumps(RESULTS, indent=1))
    return 1 if any(r["status"] == "FAIL" for r in RESULTS) else 0


if __name__ == "__main__":
    sys.exit(main())
