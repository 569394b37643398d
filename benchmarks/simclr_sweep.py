"""Chapter 8's experiment: SimCLR's batch size and temperature, trained long enough to decide.

    python benchmarks/simclr_sweep.py --device cuda --epochs 8 --seeds 3 --minutes 8
    python benchmarks/simclr_sweep.py --list          # the runs, in the order they are made

Every run pretrains SimCLR with the convnet of width 32 on all 60,000 Fashion-MNIST training
images with the recipe of ``checkpoints/simclr.json`` (SimCLR augmentations, SGD lr 0.2 per 256
images with linear scaling, 10% warm-up then cosine) and changes one thing: the batch size (at
T = 0.5, the CIFAR-10 value) or the temperature (at batch 256). It reads out kNN (k = 200,
T = 0.1) and the linear probe on all 60k -> 10k test. Runs are made seed by seed, so that a run
stopped by ``--minutes`` leaves whole seeds; the record ``results/ch08-sweep.json`` (or
``--out``) is rewritten after every run, and a finished run is not made again (resumable).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, provenance  # noqa: E402
from pretrain_fmnist import CONFIGS  # noqa: E402

from sslbook import augment, data, evaluate, methods, models  # noqa: E402
from sslbook.train import build_optimizer, pretrain  # noqa: E402

# (batch size, temperature): the reference point first, then one change at a time
RUNS = [(256, 0.5), (256, 0.1), (256, 1.0), (64, 0.5), (1024, 0.5)]


def run_one(batch_size: int, temperature: float, seed: int, epochs: int, device, train, test):
    torch.manual_seed(seed)
    encoder = models.create("convnet", 1, *data.STATS["fashion-mnist"], 28)
    method = methods.create("simclr", encoder, temperature=temperature)
    optimizer = build_optimizer(method, batch_size, overrides=CONFIGS["simclr"]["optimizer"])
    history = pretrain(method, train[0], epochs=epochs, batch_size=batch_size,
                       augment=augment.preset("simclr", image_size=28, channels=1),
                       optimizer=optimizer, device=device, seed=seed, progress=False)
    f_train = evaluate.features(encoder, train[0], device=device)
    f_test = evaluate.features(encoder, test[0], device=device)
    return {"batch_size": batch_size, "temperature": temperature, "seed": seed,
            "epochs": epochs, "steps": len(history["loss"]),
            "loss_last": sum(history["loss"][-20:]) / 20,
            "train_seconds": round(history["wall_seconds"], 1),
            "knn": evaluate.knn_accuracy(f_train, train[1], f_test, test[1]),
            "linear": evaluate.linear_probe(f_train, train[1], f_test, test[1])}


def summary(rows: list[dict]) -> list[dict]:
    """Mean and std over seeds per (batch size, temperature)."""
    out = []
    for b, t in RUNS:
        got = [r for r in rows if (r["batch_size"], r["temperature"]) == (b, t)]
        if not got:
            continue
        knn = torch.tensor([r["knn"] for r in got])
        lin = torch.tensor([r["linear"] for r in got])
        out.append({"batch_size": b, "temperature": t, "seeds": len(got),
                    "knn_mean": knn.mean().item(), "knn_std": knn.std().item() if len(got) > 1
                    else 0.0, "linear_mean": lin.mean().item(),
                    "linear_std": lin.std().item() if len(got) > 1 else 0.0})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default=None)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=None,
                        help="start no new run after this many minutes")
    parser.add_argument("--out", type=Path, default=RESULTS / "ch08-sweep.json")
    parser.add_argument("--images", type=int, default=60_000, help="a smoke run: fewer images "
                        "for pretraining and the read-outs' training side")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    plan = [(b, t, s) for s in range(args.seeds) for b, t in RUNS]
    if args.list:
        print("\n".join(f"batch {b:>5}  T {t:<4}  seed {s}" for b, t, s in plan))
        return 0
    if args.epochs < 1 or args.seeds < 1:
        print("error: --epochs and --seeds must be >= 1", file=sys.stderr)
        return 2
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train, test = data.fashion_mnist("train"), data.fashion_mnist("test")
    train = (train[0][:args.images], train[1][:args.images])
    record = json.loads(args.out.read_text()) if args.out.exists() else {}
    rows = [r for r in record.get("rows", []) if r["epochs"] == args.epochs
            and record.get("settings", {}).get("images") == args.images]
    record = {"experiment": "SimCLR batch size and temperature (chapter 8)",
              **provenance(device), "settings": {
                  "data": "fashion-mnist, all 60,000 training images; read-outs 60k -> 10k test",
                  "images": args.images, "encoder": "convnet width 32", "epochs": args.epochs,
                  "augment": "simclr preset", "optimizer": CONFIGS["simclr"]["optimizer"],
                  "lr_scaling": "linear, lr x batch / 256", "schedule": "10% warm-up, cosine",
                  "readouts": "kNN k=200 T=0.1; linear probe, all labels"},
              "rows": rows}
    started = provenance(device)  # the code this process runs: its commit at start
    tic = time.time()
    for b, t, s in plan:
        if any((r["batch_size"], r["temperature"], r["seed"]) == (b, t, s) for r in rows):
            continue
        if args.minutes is not None and time.time() - tic > 60 * args.minutes:
            print(f"stopped: {args.minutes} minutes used; run again to continue", flush=True)
            break
        rows.append({**run_one(b, t, s, args.epochs, device, train, test),
                     **started})  # the command, commit and machine that made this run
        record["summary"] = summary(rows)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(record, indent=1) + "\n")
        r = rows[-1]
        print(f"batch {b:>5} T {t:<4} seed {s}: kNN {r['knn']:.3f} linear {r['linear']:.3f} "
              f"({r['train_seconds']:.0f} s, {r['steps']} steps)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
