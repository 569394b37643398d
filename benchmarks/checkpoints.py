"""Train the book's pretrained networks from scratch and write their files and cards.

    python benchmarks/checkpoints.py simclr            # or: make checkpoints NAME=simclr
    python benchmarks/checkpoints.py simclr byol       # several, one after the other
    python benchmarks/checkpoints.py --list            # the recipes
    python benchmarks/checkpoints.py --pilot simsiam   # the short pilot that chose a recipe
    python benchmarks/checkpoints.py simclr --quick --out /tmp/ck   # 1 epoch on 4,096 images

Each network trains under ``runs/checkpoints/NAME/`` and checkpoints as it goes: the same command
after an interruption resumes where it stopped (a changed recipe is refused; ``--fresh`` starts
over). At the end it writes ``checkpoints/NAME.pt`` (encoder and probed heads only, see
:mod:`sslbook.pretrained`), the card ``checkpoints/NAME.json`` (recipe, machine, commit, command,
sha256, read-outs next to raw pixels and the random encoder on the same split, and the expected
kNN of the CI check) and re-renders ``checkpoints/README.md`` from all cards.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, commit, machine, provenance, recorded_warmup, table, write  # noqa: E402
from pretrain_fmnist import CONFIGS, SGD  # noqa: E402

from sslbook import augment, data, evaluate, methods, models, pretrained  # noqa: E402
from sslbook.checkpoint import method_name  # noqa: E402
from sslbook.train import build_optimizer, pretrain  # noqa: E402

OUT = ROOT / "checkpoints"
RUNS = ROOT / "runs" / "checkpoints"
ONE_VIEW = {"views": 1, "scale": [0.5, 1.0], "jitter_p": 0.0}  # crop + flip, our choice
VALIDATION = 5_000  # supervised: training images held out for the validation curve
# Every recipe trains on the 60,000 Fashion-MNIST training images (labels unused, except by
# "supervised", which holds out VALIDATION of them) with the convnet of width 32. The five
# methods use the settings of benchmarks/pretrain_fmnist.py (CONFIGS; their reasons are the
# comment there) with the epochs of their recorded 15-minute rows, pinned.
RECIPES = {
    "simclr": {**CONFIGS["simclr"], "epochs": 13},
    "moco": {**CONFIGS["moco"], "epochs": 21},
    "byol": {**CONFIGS["byol"], "epochs": 13},
    "swav": {**CONFIGS["swav"], "epochs": 12},
    # SimSiam: its benchmark row (lr 0.03, the ImageNet weight decay 1e-4, 14 epochs) was only
    # +0.5 / +0.4 points above raw pixels. The pilot below (3 epochs each, recorded in
    # results/checkpoint_pilots.json; kNN / linear): recorded row 0.778 / 0.837, the paper's
    # CIFAR-10 weight decay 5e-4 (App. D) 0.778 / 0.838, with lr 0.1 0.793 / 0.846. So: weight
    # decay 5e-4, lr 0.1 (a short budget takes a larger step, as for the other methods), and
    # 20 epochs (about 15 minutes on 2 idle cores).
    "simsiam": {**CONFIGS["simsiam"], "optimizer": {**SGD, "lr": 0.1}, "epochs": 20},
    "supervised": {"augment": ONE_VIEW, "kwargs": {"num_classes": 10},
                   "optimizer": {**SGD, "lr": 0.1}, "epochs": 20},
    "rotation": {"augment": ONE_VIEW, "kwargs": {}, "optimizer": {**SGD, "lr": 0.2},
                 "batch_size": 128, "epochs": 6},  # RotNet Sec. 3.1: batch 128, lr 0.1
}
# Ablations (the experiments of Chapters 8-11): each trains as long as the checkpoint it
# varies, with one setting changed; the chapters load them in reader mode.
ABLATIONS = {
    "simsiam-no-stopgrad": ("simsiam", {"stop_gradient": False}),  # SimSiam Sec. 4.1, Fig. 2
    "simsiam-no-predictor": ("simsiam", {"use_predictor": False}),  # SimSiam Sec. 4.2, Table 1
    "byol-no-predictor": ("byol", {"use_predictor": False}),  # BYOL Sec. 5, Table 5
    "byol-tau0": ("byol", {"tau_base": 0.0, "tau_schedule": "constant"}),  # BYOL Table 5
    "moco-m0": ("moco", {"momentum": 0.0}),  # MoCo Sec. 4.1, Table 1
    "moco-no-shuffle-bn": ("moco", {"shuffle_bn": False}),  # MoCo Sec. 3.3, App. A.9
    # whole-batch BN, no shuffle: the CIFAR demo's SyncBatchNorm analogue (--bn-splits 1)
    "moco-whole-batch-bn": ("moco", {"shuffle_bn": False, "bn_splits": 1}),
    "moco-k512": ("moco", {"queue_size": 512}),  # MoCo Fig. 3 (queue size K)
}
MONITOR_EVERY = 25  # ablations: spread on the probe before step 0 and every 25 steps
for _name, (_base, _change) in ABLATIONS.items():
    RECIPES[_name] = {**RECIPES[_base], "kwargs": {**RECIPES[_base]["kwargs"], **_change},
                      "ablation_of": _base, "monitor_every": MONITOR_EVERY}
PROBE = pretrained.PROBE  # collapse is measured on these test images, and checked on load
# Pilots: 3 epochs each, read out on all 60k / 10k images (kNN, linear).
PILOTS = {
    "simsiam": {
        "lr 0.03, wd 1e-4 (recorded row)": {**CONFIGS["simsiam"]},
        "lr 0.03, wd 5e-4 (paper's CIFAR)": {**CONFIGS["simsiam"],
                                             "optimizer": {**SGD, "lr": 0.03}},
        "lr 0.1, wd 5e-4": {**CONFIGS["simsiam"], "optimizer": {**SGD, "lr": 0.1}},
    },
}


def make_augment(spec):
    if isinstance(spec, str):
        return augment.preset(spec, image_size=28, channels=1)
    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in spec.items() if k != "views"}
    return augment.MultiView(tuple(augment.Augmentation(28, **fields)
                                   for _ in range(spec["views"])))


QUICK = {"images": 4_096, "epochs": 1, "train": 5_000, "test": 1_000}  # --quick: a smoke run


def baselines(train, test, runs: Path) -> dict:
    """Raw pixels and the random encoder (seed 0, BatchNorm calibrated) on the same split."""
    cache = runs / "baselines.json"
    if cache.exists():
        return json.loads(cache.read_text())
    random_encoder = pretrained.random_encoder(train[0])
    result = {"raw pixels": {**evaluate.read_outs(None, train, test),
                             "ci_knn": pretrained.subset_knn(None)},
              "random encoder": {**evaluate.read_outs(random_encoder, train, test),
                                 "ci_knn": pretrained.subset_knn(random_encoder)}}
    runs.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(result, indent=1))
    return result


def train_one(name: str, recipe: dict, out: Path, fresh: bool, progress: bool,
              images: int | None = None) -> tuple:
    """Train (or resume) one recipe under ``out``; returns (method, history, images used)."""
    (x, y), (xt, yt) = data.fashion_mnist("train"), data.fashion_mnist("test")
    x, y = x[:images], y[:images]
    plan = out / "recipe.json"
    if plan.exists() and not fresh and json.loads(plan.read_text()) != recipe:
        raise SystemExit(f"error: {out} holds a run of another recipe; pass --fresh to start "
                         f"{name} over (its partial run is then deleted)")
    if fresh and out.exists():
        for f in out.iterdir():
            f.unlink()
    out.mkdir(parents=True, exist_ok=True)
    plan.write_text(json.dumps(recipe, indent=1))
    method_name = "supervised" if name == "supervised" else (
        "rotation" if name == "rotation" else recipe.get("method", name.split("-")[0]))
    torch.manual_seed(0)
    encoder = models.create("convnet", 1, *data.STATS["fashion-mnist"], 28)
    method = methods.create(method_name, encoder, **recipe["kwargs"])
    batch = recipe.get("batch_size", 256)
    optimizer = build_optimizer(method, batch, overrides=recipe.get("optimizer"))
    labels, validation = None, None
    if method_name == "supervised":  # hold out a validation set for the curve
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
        held = min(VALIDATION, len(x) // 5)
        x_val, y_val = x[order[:held]], y[order[:held]]
        x, labels = x[order[held:]], y[order[held:]]

        def validation(m):
            logits = evaluate.features(torch.nn.Sequential(m.encoder, m.classifier), x_val)
            return {"val_accuracy": (logits.argmax(1) == y_val).float().mean().item()}

    def monitor(m):  # collapse: spread and rank of h, z, p (SimSiam Fig. 2), eval mode
        out = evaluate.collapse_stats(m, xt[:PROBE])
        return {**out, **validation(m)} if validation is not None else out
    history = pretrain(method, x, epochs=recipe["epochs"], batch_size=batch,
                       augment=make_augment(recipe["augment"]), optimizer=optimizer,
                       warmup_epochs=recorded_warmup(recipe["epochs"]), device="cpu",
                       checkpoint_path=out / "checkpoint.pt", resume=not fresh,
                       knn_data=(x[:10_000], (y if labels is None else labels)[:10_000],
                                 xt[:2_000], yt[:2_000]),
                       knn_every=max(1, recipe["epochs"] // 5), labels=labels,
                       monitor=monitor, monitor_every=recipe.get("monitor_every"),
                       progress=progress)
    return method, history, len(x)


def card_for(name, recipe, method, history, n_images, file: Path, base: dict, train, test,
             command: str, where: str):
    method.eval()
    scores = evaluate.read_outs(method.encoder, train, test)
    batch = recipe.get("batch_size", 256)
    spec = {**method.default_optimizer, **recipe.get("optimizer", {})}
    spe = n_images // batch
    card = {
        "name": name, "method": method_name(method), "ablation_of": recipe.get("ablation_of"),
        "config": method.config,
        "arch": method.encoder.config, "dataset": "fashion-mnist",
        "split": ("train minus a 5,000-image validation set (randperm seed 0), with labels"
                  if name == "supervised" else "train, 60,000 images, labels unused"),
        "images": n_images, "epochs": history["epochs_done"], "batch_size": batch,
        "images_seen": history["epochs_done"] * spe * batch,
        "augment": recipe["augment"],
        "optimizer": {**{k: v for k, v in spec.items() if k not in ("source", "warmup_epochs")},
                      "lr_at_batch": spec["lr"] * batch / 256},
        "schedule": f"linear warm-up {round(recorded_warmup(recipe['epochs']) * spe)} steps "
                    f"then cosine to 0 over {recipe['epochs'] * spe} steps",
        "seed": 0, "wall_minutes": round(history["wall_seconds"] / 60, 2),
        "images_per_second": round(history["images_per_second"], 1),
        "machine": where, "torch": torch.__version__,
        "commit": commit(), "command": command,
        "date": provenance(torch.device("cpu"))["date"],
        "sha256": pretrained.sha256(file), "size_bytes": file.stat().st_size,
        "evaluation": {"protocol": f"train {len(train[1]):,} -> test {len(test[1]):,}; kNN k=200 "
                                   "T=0.1; linear probe (all labels); linear probe, 60 labels "
                                   "per class, 3 draws",
                       name: scores, **{k: {m: v[m] for m in scores} for k, v in base.items()}},
        "ci": {**pretrained.CI_SUBSET, "knn": pretrained.subset_knn(method.encoder),
               "raw_pixels_knn": base["raw pixels"]["ci_knn"],
               "random_encoder_knn": base["random encoder"]["ci_knn"]},
        "history": {"loss_first": history["loss"][0], "loss_last": history["loss"][-1],
                    "knn_monitor": history["knn"], "monitor": history.get("monitor", [])},
    }
    card["collapse"] = evaluate.collapse_stats(method, test[0][:PROBE])  # at the end, eval mode
    every, losses = recipe.get("monitor_every") or MONITOR_EVERY, history["loss"]
    card["history"]["loss_curve"] = [  # the mean loss per window of `every` steps
        {"step": s, "loss": round(sum(losses[s:s + every]) / len(losses[s:s + every]), 5)}
        for s in range(0, len(losses), every)]
    if hasattr(method, "classifier"):  # supervised: the trained classifier itself, on the test set
        logits = evaluate.features(torch.nn.Sequential(method.encoder, method.classifier), test[0])
        card["classifier_test_accuracy"] = (logits.argmax(1) == test[1]).float().mean().item()
    if hasattr(method, "head"):  # rotation: the pretext task on held-out images
        rotated, targets = methods.rotation_batch(test[0][:2_000].float() / 255)
        logits = evaluate.features(torch.nn.Sequential(method.encoder, method.head), rotated)
        card["rotation_test_accuracy"] = (logits.argmax(1) == targets).float().mean().item()
    return card


def render_readme(out: Path) -> None:
    cards = [json.loads(p.read_text()) for p in sorted(out.glob("*.json"))]
    rows = []
    for c in cards:
        ev = c["evaluation"]
        rows.append({"name": c["name"], "method": c["method"], "epochs": c["epochs"],
                     "batch": c["batch_size"], "minutes": c["wall_minutes"],
                     "knn": ev[c["name"]]["knn"], "linear": ev[c["name"]]["linear"],
                     "l60": f"{ev[c['name']]['linear_60']:.3f} ± "
                            f"{ev[c['name']]['linear_60_std']:.3f}",
                     "mb": c["size_bytes"] / 2**20, "machine": c["machine"].split(", load")[0],
                     "command": f"`{c['command']}`", "commit": c["commit"]})
    base = cards[0]["evaluation"] if cards else {}
    columns = [("name", "name", ""), ("method", "method", ""), ("epochs", "epochs", ""),
               ("batch", "batch", ""), ("minutes", "minutes", ".1f"), ("knn", "kNN", ".3f"),
               ("linear", "linear", ".3f"), ("l60", "linear, 60/class", ""),
               ("mb", "MB", ".2f"), ("commit", "commit", ""), ("command", "command", "")]
    lines = [
        "# Pretrained networks · 预训练网络", "",
        "Generated by `benchmarks/checkpoints.py` from the cards `NAME.json`; do not edit by "
        "hand. Load one with `sslbook.pretrained.load(NAME)`, check them all with "
        "`python -m sslbook pretrained verify`, and train one again from scratch with "
        "`make checkpoints NAME=...` (it resumes after an interruption).", "",
        "由 `benchmarks/checkpoints.py` 根据各网络的卡片 `NAME.json` 生成，请勿手工编辑。"
        "用 `sslbook.pretrained.load(NAME)` 加载，用 `python -m sslbook pretrained verify` "
        "校验，用 `make checkpoints NAME=...` 从头重新训练（中断后可续训）。", "",
        "Read-outs on Fashion-MNIST: "
        + (cards[0]["evaluation"]["protocol"] if cards else "none yet")
        + ". Minutes are the wall time of the training on the machine named below (its load "
        "average when training started: above 2 on 2 cores means the machine was shared). The "
        "first set was trained while other work shared the 2 cores, and MoCo's run was paused "
        "for 7 minutes to time the chapters, so these minutes are upper bounds; the 15-minute "
        "benchmark rows in `results/pretrain_fmnist.json` were timed on an idle machine.", "",
        table(rows, columns), "",
    ]
    if base:
        lines += ["The baselines on the same split:", "",
                  table([{"name": k, **v} for k, v in base.items()
                         if k in ("raw pixels", "random encoder")],
                        [("name", "read-out of", ""), ("knn", "kNN", ".3f"),
                         ("linear", "linear", ".3f"), ("linear_60", "linear, 60/class", ".3f")]),
                  ""]
    lines += ["Machines:", ""] + sorted({f"- {c['name']}: {c['machine']}" for c in cards}) + [""]
    (out / "README.md").write_text("\n".join(lines))


def run_pilot(name: str, progress: bool) -> None:
    train, test = data.fashion_mnist("train"), data.fashion_mnist("test")
    path = ROOT / "results" / "checkpoint_pilots.json"
    record = json.loads(path.read_text()) if path.exists() else {"benchmark": "checkpoint_pilots"}
    rows = record.setdefault(name, [])
    for label, recipe in PILOTS[name].items():
        if any(r["variant"] == label for r in rows):
            continue  # done in an earlier sitting
        recipe = {**recipe, "epochs": 3}
        slug = "".join(ch if ch.isalnum() else "-" for ch in label)
        method, history, _ = train_one(f"{name}", recipe, RUNS / "pilots" / name / slug,
                                       fresh=False, progress=progress)
        scores = evaluate.read_outs(method.encoder, train, test, seeds=1)
        rows.append({"variant": label, "recipe": recipe, "knn": scores["knn"],
                     "linear": scores["linear"], "wall_minutes": history["wall_seconds"] / 60,
                     **provenance(torch.device("cpu"))})
        write("checkpoint_pilots", record)
        print(f"{name} pilot {label}: kNN {scores['knn']:.3f}, linear {scores['linear']:.3f}",
              flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"from: {', '.join(RECIPES)}")
    parser.add_argument("--list", action="store_true", help="print the recipes")
    parser.add_argument("--pilot", choices=list(PILOTS), help="run the pilot of a recipe")
    parser.add_argument("--fresh", action="store_true", help="discard a partial run")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--readme", action="store_true", help="only re-render README.md")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1 epoch on 4,096 "
                        "images, read-outs on 5,000 / 1,000; needs --out")
    parser.add_argument("--out", type=Path, default=OUT, help="where files and cards go")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    if args.list:
        print(json.dumps(RECIPES, indent=1))
        return 0
    if args.readme:
        render_readme(args.out)
        return 0
    if args.pilot:
        run_pilot(args.pilot, not args.no_progress)
        return 0
    unknown = [n for n in args.names if n not in RECIPES]
    if unknown or not args.names:
        print(f"error: unknown or no name(s) {unknown}; choose from {', '.join(RECIPES)}",
              file=sys.stderr)
        return 2
    if args.quick and args.out.resolve() == OUT.resolve():
        print("error: --quick writes smoke-test networks; give it another --out", file=sys.stderr)
        return 2
    train, test = data.fashion_mnist("train"), data.fashion_mnist("test")
    runs = args.out / ".quick-runs" if args.quick else RUNS
    if args.quick:
        train = (train[0][:QUICK["train"]], train[1][:QUICK["train"]])
        test = (test[0][:QUICK["test"]], test[1][:QUICK["test"]])
    base = baselines(train, test, runs)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.names:
        # machine (with its load average) and commit as the training starts
        tic, where, started_at = time.time(), machine(torch.device("cpu")), commit()
        recipe = {**RECIPES[name], "epochs": QUICK["epochs"]} if args.quick else RECIPES[name]
        method, history, n = train_one(name, recipe, runs / name, args.fresh,
                                       not args.no_progress,
                                       QUICK["images"] if args.quick else None)
        file = args.out / f"{name}.pt"
        pretrained.export(method, name, file)
        command = pretrained.regenerate_command(name) + (
            f" --quick --out {args.out}" if args.quick else "")
        card = card_for(name, recipe, method, history, n, file, base, train, test, command,
                        where)
        card["commit"] = started_at  # a resumed run: the commit of this sitting's start
        (args.out / f"{name}.json").write_text(json.dumps(card, indent=1) + "\n")
        if name == "supervised" and not args.quick:  # chapter 5 reads its validation curve
            path = ROOT / "results" / "ch05-supervised.json"
            record = json.loads(path.read_text())
            record["reference_encoder"] = {"card": "checkpoints/supervised.json",
                                           "validation_curve": history["monitor"]}
            write("ch05-supervised", record)
        render_readme(args.out)
        ev = card["evaluation"]
        print(f"{name}: kNN {ev[name]['knn']:.3f} linear {ev[name]['linear']:.3f} (raw pixels "
              f"{base['raw pixels']['knn']:.3f} / {base['raw pixels']['linear']:.3f}); "
              f"{(time.time() - tic) / 60:.1f} min", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
