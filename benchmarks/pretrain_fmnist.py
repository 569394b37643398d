"""Pretrain each method on Fashion-MNIST with the convnet for a fixed time budget, then evaluate.

    python benchmarks/pretrain_fmnist.py                       # all methods, 15 min each
    python benchmarks/pretrain_fmnist.py --methods byol --minutes 15
    python benchmarks/pretrain_fmnist.py --baselines           # raw pixels, random convnet

Each method runs in its own process (so peak memory is its own), plans its number of epochs
from a short throughput calibration so that the cosine schedule ends inside the budget, and
checkpoints as it goes: run the same command again after an interruption and it resumes.
Rows are merged into ``results/pretrain_fmnist.json``; each row keeps its own command, commit,
machine and date, so a table can be filled over several sittings.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, provenance, recorded_warmup, table, write  # noqa: E402
from report import PRETRAIN_COLUMNS  # noqa: E402

from sslbook import augment, data, default_device, evaluate, methods, models  # noqa: E402
from sslbook.train import build_optimizer, pretrain  # noqa: E402

# Small-data settings (the papers' ImageNet values are the constructors' defaults). The papers'
# LARS recipes (SimCLR, BYOL, SwAV) are tuned for 100-1000 epochs; a 15-minute CPU budget is about
# 15 epochs, where plain SGD with a larger step learns faster. Measured here with a one-off pilot
# script, not kept (2 epochs, batch 256, 10k / 2k images for the read-outs; kNN / linear): SimCLR
# LARS 0.3 0.725 / 0.838, LARS 1.0 0.737 / 0.843, SGD 0.06 0.746 / 0.850, SGD 0.2 0.760 / 0.869;
# BYOL LARS 0.2 0.731 / 0.823, SGD 0.1 0.724 / 0.850; SwAV LARS 0.3 0.733 / 0.834, SGD 0.2 0.750 /
# 0.857; MoCo SGD 0.03 (its paper's, weight decay 1e-4) 0.754 / 0.858, SGD 0.1 (5e-4) 0.755 /
# 0.850; random encoder 0.705 / 0.827. A second one-off pilot (3 epochs, all 60k / 10k images for
# the read-outs; kNN / linear / 60 per class) found MoCo insensitive early on: T 0.1 lr 0.03
# 0.809 / 0.857 / 0.780, T 0.2 0.797 / 0.855 / 0.782, T 0.2 SGD 0.2 (5e-4) 0.801 / 0.856 / 0.773,
# T 0.5 SGD 0.2 0.795 / 0.857 / 0.778, hidden 512 0.804 / 0.859 / 0.784; SimCLR 0.805 / 0.861 /
# 0.785; BYOL SGD 0.1 0.786 / 0.854 / 0.774, SGD 0.2 0.790 / 0.850 / 0.776. From 3 to 13 epochs
# SimCLR (SGD 0.2) gained 1.3 points of linear accuracy, MoCo at its paper's lr 0.03 only 0.4, so
# MoCo now takes SimCLR's SGD 0.2 and its v2 paper's T = 0.2 (15 min: 0.825 / 0.866 / 0.797, vs
# 0.832 / 0.861 / 0.795 before). The two methods with a momentum (EMA) network move it once per
# step, so in a fixed budget they gain from smaller batches: BYOL at batch 128, 3 epochs, 0.800 /
# 0.857 / 0.783 (batch 256 above: 0.786 / 0.854 / 0.774) at 2% fewer images/s; MoCo and BYOL
# therefore run at batch 128 (15 min: BYOL 0.868 / 0.797 -> 0.871 / 0.803, MoCo unchanged).
# A third MoCo pilot (batch 128, same read-outs) changed the head and the loss: base, 3 epochs
# (3.7 min) 0.807 / 0.861 / 0.775; BN in the head's hidden layer (SimCLR's and MoCo v3's head),
# 3 epochs (3.8 min) 0.818 / 0.864 / 0.793; with it, the v1/v2 asymmetric loss (queries from one
# view; half the forward passes per image), 6 epochs (3.8-4.2 min) 0.826 / 0.866 / 0.799. So
# MoCo uses both and spends its budget on twice the epochs.
# "optimizer" overrides fields of method.default_optimizer (lr per 256 images, scaled linearly with
# the batch; build_optimizer); "batch_size" defaults to 256.
SGD = {"name": "sgd", "momentum": 0.9, "weight_decay": 5e-4}  # the CIFAR recipes' decay
CONFIGS = {
    "simclr": {"augment": "simclr", "kwargs": {"temperature": 0.5},  # CIFAR T (SimCLR B.9)
               "optimizer": {**SGD, "lr": 0.2}},
    "moco": {"augment": "moco_v2", "kwargs": {"queue_size": 4096, "momentum": 0.99,  # CIFAR demo
                                              "temperature": 0.2,  # v2 paper's T
                                              "bn_splits": 4,  # 32 images per BN chunk
                                              "symmetric": False,  # the v1/v2 loss
                                              "head_batch_norm": True},  # MoCo v3's head
             "optimizer": {**SGD, "lr": 0.2}, "batch_size": 128},
    "byol": {"augment": "byol", "kwargs": {"hidden_dim": 1024, "tau_base": 0.99},
             "optimizer": {**SGD, "lr": 0.1}, "batch_size": 128},
    "simsiam": {"augment": "moco_v2", "kwargs": {"dim": 512, "pred_dim": 128},
                "optimizer": {"lr": 0.03}},  # its paper's CIFAR-10 lr (App. D; ImageNet: 0.05)
    "swav": {"augment": "swav", "kwargs": {"n_prototypes": 100, "queue_length": 0,
                                           # recorded when the freeze counted steps (313, one
                                           # ImageNet epoch at batch 4096); the default is now
                                           # the paper's first epoch
                                           "freeze_prototypes_steps": 313},
             "optimizer": {**SGD, "lr": 0.2}},
}


def evaluate_encoder(encoder, train, test, device) -> dict:
    f_train = evaluate.features(encoder, train[0], device=device) if encoder else train[0]
    f_test = evaluate.features(encoder, test[0], device=device) if encoder else test[0]
    mean60, std60 = evaluate.few_label_accuracy(f_train, train[1], f_test, test[1], 60, seeds=3)
    return {"knn": evaluate.knn_accuracy(f_train, train[1], f_test, test[1]),
            "linear": evaluate.linear_probe(f_train, train[1], f_test, test[1]),
            "linear_60": mean60, "linear_60_std": std60}


def run_one(name: str, args: argparse.Namespace) -> dict:
    device = torch.device(args.device or default_device())
    train, test = data.fashion_mnist("train"), data.fashion_mnist("test")
    mean, std = data.STATS["fashion-mnist"]
    torch.manual_seed(0)
    make_encoder = lambda: models.create("convnet", 1, mean, std, 28)  # noqa: E731
    if name in ("raw pixels", "random convnet"):
        encoder = make_encoder() if name == "random convnet" else None
        if encoder is not None:  # BatchNorm statistics measured on the data, no gradient step
            evaluate.calibrate_batchnorm(encoder, train[0][:4096], device=device)
        return {"method": name, **evaluate_encoder(encoder, train, test, device)}
    config = CONFIGS[name]
    method = methods.create(name, make_encoder(), **config["kwargs"])
    batch_size = args.batch_size or config.get("batch_size", 256)
    optimizer = build_optimizer(method, batch_size, overrides=config.get("optimizer"))
    views = augment.preset(config["augment"], image_size=28, channels=1)
    out = Path(args.out) / name
    out.mkdir(parents=True, exist_ok=True)
    plan_path = out / "plan.json"
    if plan_path.exists():  # resuming: keep the planned length, so the schedule is the same
        epochs = json.loads(plan_path.read_text())["epochs"]
    elif args.epochs:  # planned by hand, e.g. from an earlier run's measured images/s
        epochs = args.epochs
        plan_path.write_text(json.dumps({"epochs": epochs, "planned_by": "--epochs"}))
    else:
        def calibrate(steps: int) -> dict:
            return pretrain(methods.create(name, make_encoder(), **config["kwargs"]),
                            train[0][:batch_size * steps], epochs=1,
                            batch_size=batch_size, augment=views, device=device,
                            progress=False)

        calibrate(3)  # warm-up: the first steps build the kernels (approximate; see --epochs)
        calibration = calibrate(16)
        per_epoch = len(train[0]) / calibration["images_per_second"]
        epochs = max(1, int(args.minutes * 60 / per_epoch))
        plan_path.write_text(json.dumps({"epochs": epochs, "calibration_images_per_second":
                                         calibration["images_per_second"]}))
    history = pretrain(method, train[0], epochs=epochs, batch_size=batch_size,
                       augment=views, optimizer=optimizer, device=device,
                       warmup_epochs=recorded_warmup(epochs),
                       checkpoint_path=out / "checkpoint.pt", resume=True,
                       knn_data=(train[0][:10_000], train[1][:10_000], test[0][:2_000],
                                 test[1][:2_000]),
                       knn_every=max(1, epochs // 5), max_minutes=1.25 * args.minutes,
                       meta={"dataset": "fashion-mnist", "augment": config["augment"]},
                       progress=not args.no_progress)
    (out / "history.json").write_text(json.dumps(history))
    peak = (torch.cuda.max_memory_allocated(device) if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**20
    return {"method": name, "epochs": history["epochs_done"], "planned_epochs": epochs,
            "batch_size": batch_size, "wall_minutes": history["wall_seconds"] / 60,
            "images_per_second": history["images_per_second"], "peak_memory_mb": peak,
            "settings": config, **evaluate_encoder(method.encoder, train, test, device)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(CONFIGS))
    parser.add_argument("--baselines", nargs="?", const="raw pixels,random convnet",
                        help="the baselines instead of the methods: raw pixels, random convnet "
                             "(both by default, or a comma-separated choice)")
    parser.add_argument("--minutes", type=float, default=15.0, help="budget per method")
    parser.add_argument("--epochs", type=int, help="skip the calibration: train this many "
                        "epochs (still stopped at 1.25 x --minutes)")
    parser.add_argument("--batch-size", type=int,
                        help="for every method (default: its CONFIGS entry's, else 256)")
    parser.add_argument("--device")
    parser.add_argument("--out", default="runs/pretrain_fmnist")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one, print JSON
    args = parser.parse_args()
    if args.one:
        print("ROW " + json.dumps(run_one(args.one, args)))
        return 0
    names = (args.baselines or args.methods).split(",")
    valid = ["raw pixels", "random convnet"] if args.baselines else list(CONFIGS)
    unknown = [n for n in names if n not in valid]
    if unknown:
        parser.error(f"unknown name(s) {unknown}; choose from {', '.join(valid)}")
    path = RESULTS / "pretrain_fmnist.json"
    record = json.loads(path.read_text()) if path.exists() else {"benchmark": "pretrain_fmnist"}
    rows = {r["method"]: r for r in record.get("rows", [])}
    device = torch.device(args.device or default_device())
    for name in names:
        tic = time.time()
        child = [sys.executable, __file__, "--one", name, *sys.argv[1:]]
        result = subprocess.run(child, stdout=subprocess.PIPE, text=True)
        lines = [x for x in result.stdout.splitlines() if x.startswith("ROW ")]
        if result.returncode or not lines:
            print(f"{name}: failed (exit {result.returncode})", file=sys.stderr)
            return 1
        rows[name] = {**json.loads(lines[-1][4:]), **provenance(device),
                      "total_seconds": time.time() - tic}
        order = ["raw pixels", "random convnet", *CONFIGS]
        record["rows"] = sorted(rows.values(), key=lambda r: order.index(r["method"]))
        write("pretrain_fmnist", record)
        print(f"{name}: done in {(time.time() - tic) / 60:.1f} min", flush=True)
    print(table(record["rows"], PRETRAIN_COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
