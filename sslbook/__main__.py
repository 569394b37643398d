"""Command line: ``python -m sslbook {data,pretrain,evaluate,pretrained,assignment}``.

    python -m sslbook data --dataset fashion-mnist
    python -m sslbook pretrain --method simclr --dataset fashion-mnist --arch convnet \\
        --epochs 100 --batch-size 512 --out runs/simclr        # writes checkpoint.pt, history.json
    torchrun --nproc_per_node=8 -m sslbook pretrain ...        # 8 processes share each batch
    python -m sslbook evaluate --checkpoint runs/simclr/checkpoint.pt --protocol linear
    python -m sslbook pretrained list | verify [NAME] | evaluate NAME [--json]
    python -m sslbook assignment release 08 09 --lang en --out DIR    # docs/teaching.md
    python -m sslbook assignment grade SUBMISSION.ipynb ... --release DIR --out grades.csv

Bad arguments print one line starting with ``error:`` on stderr and exit with code 2. PyTorch
is imported only once a command runs, so ``--help`` and argument errors answer at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from sslbook import default_device

# The choices, written out so that the parser needs no torch (tests/test_cli.py checks that they
# equal sslbook.data.DATASETS, sslbook.methods.METHODS, sslbook.models.ARCHS, augment.PRESETS).
DATASETS = ("fashion-mnist", "cifar10", "stl10")
METHODS = ("simclr", "moco", "byol", "simsiam", "swav")
ARCHS = ("convnet", "resnet18", "vit_tiny")
PRESETS = ("simclr", "moco_v2", "byol", "swav", "crop_only", "crop_jitter")
# SimSiam uses MoCo v2's augmentations (arXiv:2011.10566, Sec. 4)
DEFAULT_AUGMENT = {"simclr": "simclr", "moco": "moco_v2", "byol": "byol",
                   "simsiam": "moco_v2", "swav": "swav"}
KNN_BANK, KNN_TEST = 10_000, 2_000  # images of the kNN monitor during pretraining


def _device(name: str | None):
    import torch

    if name is None:
        return torch.device(default_device())
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}; use cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name} but no GPU is visible (torch.cuda.is_available() is "
                         "False); use --device cpu")
    return device


def _subset(images, labels, size: int | None, seed: int = 0):
    """A random subset of ``size`` examples (all of them when size is None or too big)."""
    import torch

    if size is None or size >= len(images):
        return images, labels
    if size < 1:
        raise ValueError(f"--subset must be at least 1, got {size}")
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:size]
    return images[idx], labels[idx]


def run_data(args: argparse.Namespace) -> int:
    from sslbook import data

    if args.dataset == "fashion-mnist" and data.fashion_mnist_location() is None:
        print("Fashion-MNIST is not installed; trying a download with torchvision ...")
    for split in ("train", "test"):
        images, labels = data.load(args.dataset, split)
        print(f"{args.dataset} {split}: images {tuple(images.shape)} {images.dtype}, "
              f"labels {tuple(labels.shape)}, {len(labels.unique())} classes")
    if args.dataset == "fashion-mnist":
        print(f"found in {data.fashion_mnist_location()}")
    return 0


def run_pretrain(args: argparse.Namespace) -> int:
    if args.help_method:
        print(help_method(args.method))
        return 0
    if args.epochs is None or args.out is None:
        raise ValueError("pretrain needs --epochs N and --out DIR (see python -m sslbook "
                         "pretrain --help)")
    import torch

    from sslbook import augment, data, distributed, methods, models
    from sslbook.checkpoint import load_checkpoint
    from sslbook.train import build_optimizer, pretrain, resolve_precision

    if args.batch_size < 2:
        raise ValueError(f"--batch-size must be at least 2 (contrastive losses need negatives, "
                         f"BatchNorm needs 2 samples), got {args.batch_size}")
    if args.epochs < 1 or args.knn_every < 1:
        raise ValueError(f"--epochs and --knn-every must be >= 1, got {args.epochs}, "
                         f"{args.knn_every}")
    device, out = distributed.init(_device(args.device)), Path(args.out)  # torchrun: join
    resolve_precision(args.precision, device)  # a clear error before any data is loaded
    checkpoint_path = out / "checkpoint.pt"
    if checkpoint_path.exists() and not (args.resume or args.overwrite):
        raise ValueError(f"{checkpoint_path} already holds a run; pass --resume to continue it, "
                         "--overwrite to replace it, or another --out")
    if args.resume and checkpoint_path.exists():
        load_checkpoint(checkpoint_path)  # a clear error now if it is not a checkpoint
    settings = _method_settings(args.method, args.set)  # validated before any data is loaded
    # STL-10 is built for this: pretrain on its 100k unlabelled images, monitor on train/test
    split = "unlabeled" if args.dataset == "stl10" else "train"
    images, labels = _subset(*data.load(args.dataset, split), args.subset, args.seed)
    bank = _subset(*data.load(args.dataset, "train"), args.subset, args.seed) \
        if split != "train" else (images, labels)
    test = _subset(*data.load(args.dataset, "test"), min(KNN_TEST, args.subset or KNN_TEST),
                   args.seed)
    if len(images) < args.batch_size:
        raise ValueError(f"--batch-size {args.batch_size} is larger than the {len(images)} "
                         "training images; lower it or raise --subset")
    mean, std = data.STATS[args.dataset]
    torch.manual_seed(args.seed)
    encoder = models.create(args.arch, channels=images.shape[1], mean=mean, std=std,
                            image_size=images.shape[-1])
    method = methods.create(args.method, encoder, **settings)
    preset = args.augment or DEFAULT_AUGMENT[args.method]
    views = augment.preset(preset, image_size=images.shape[-1], channels=images.shape[1])
    overrides = {k: v for k, v in (("name", args.optimizer), ("momentum", args.momentum),
                                   ("weight_decay", args.weight_decay)) if v is not None}
    optimizer = build_optimizer(method, args.batch_size, args.lr, overrides)
    history = pretrain(
        method, images, epochs=args.epochs, batch_size=args.batch_size, augment=views,
        optimizer=optimizer, warmup_epochs=args.warmup_epochs, extend=args.extend,
        device=device, checkpoint_path=checkpoint_path, resume=args.resume,
        knn_data=(bank[0][:KNN_BANK], bank[1][:KNN_BANK], *test), knn_every=args.knn_every,
        seed=args.seed, max_minutes=args.max_minutes, progress=not args.no_progress,
        precision=args.precision, compile=args.compile,
        meta={"dataset": args.dataset, "augment": preset, "subset": args.subset})
    if not distributed.is_main():  # the first process writes and reports
        return 0
    summary = {"method": args.method, "arch": args.arch, "dataset": args.dataset,
               "args": {k: v for k, v in vars(args).items() if k != "run"}, **history}
    (out / "history.json").write_text(json.dumps(summary, indent=1))
    knn = history["knn"][-1]["accuracy"] if history["knn"] else float("nan")
    print(f"{args.method}/{args.arch} on {args.dataset}: {history['epochs_done']} epochs, "
          f"last loss {history['loss'][-1]:.4f}, kNN {knn:.4f}, "
          f"{history['images_per_second']:.0f} images/s on {history['world_size']} "
          f"process(es); wrote {out}/checkpoint.pt, history.json")
    return 0


def _method_settings(name: str, pairs: list[str]) -> dict:
    """``--set key=value`` pairs as keyword arguments of the method, checked against its
    signature (values are Python literals: 0.2, 4096, False, 'cosine'; else strings)."""
    import ast
    import inspect

    from sslbook import methods

    valid = [p for p in inspect.signature(methods.METHODS[name]).parameters if p != "encoder"]
    settings = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or key.strip() not in valid:
            raise ValueError(f"--set {pair!r}: {name} takes KEY=VALUE with KEY one of "
                             f"{', '.join(valid)} (see --help-method)")
        try:
            settings[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            settings[key.strip()] = value.strip()
    return settings


def help_method(name: str) -> str:
    """A method's settings with their defaults (the paper's) and its paper optimizer."""
    import inspect

    from sslbook import methods

    cls = methods.METHODS[name]
    doc = (sys.modules[cls.__module__].__doc__ or cls.__name__).strip().splitlines()[0]
    lines = [f"{name}: {doc}", "settings (--set KEY=VALUE), with their defaults:"]
    for p in inspect.signature(cls).parameters.values():
        if p.name != "encoder":
            lines.append(f"  {p.name} = {p.default!r}")
    spec = cls.default_optimizer
    lines.append(f"optimizer: {spec['name']}, lr {spec['lr']} per 256 images, momentum "
                 f"{spec.get('momentum')}, weight decay {spec.get('weight_decay')}, warm-up "
                 f"{spec.get('warmup_epochs', 10)} epochs "
                 f"({spec.get('source', '')})")
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    from sslbook import data, evaluate
    from sslbook.checkpoint import restore

    if args.seeds < 1 or (args.labels_per_class is not None and args.labels_per_class < 1):
        raise ValueError("--seeds and --labels-per-class must be at least 1")
    device = _device(args.device)
    method, checkpoint = restore(args.checkpoint, device)
    dataset = args.dataset or checkpoint["meta"].get("dataset")
    if dataset is None:
        raise ValueError(f"{args.checkpoint} does not name its data set; pass --dataset")
    train = _subset(*data.load(dataset, "train"), args.subset)
    test = _subset(*data.load(dataset, "test"), args.subset)
    protocol = ("weighted kNN, k=200, T=0.1" if args.protocol == "knn" else
                "linear probe (logistic regression, C chosen on 10% of the training set)")
    print(f"evaluate: {protocol} on {dataset}, {len(train[1]):,} training -> "
          f"{len(test[1]):,} test images" + (f", {args.labels_per_class} labels per class, "
          f"{args.seeds} draws" if args.labels_per_class else "") + " ...", file=sys.stderr)
    f_train = evaluate.features(method.encoder, train[0], device=device, progress=True)  # N x D
    f_test = evaluate.features(method.encoder, test[0], device=device, progress=True)  # M x D
    std, seeds = 0.0, 1
    if args.labels_per_class is not None:
        seeds = args.seeds
        accuracy, std = evaluate.few_label_accuracy(f_train, train[1], f_test, test[1],
                                                    args.labels_per_class, seeds, args.protocol)
    elif args.protocol == "knn":
        accuracy = evaluate.knn_accuracy(f_train, train[1], f_test, test[1])
    else:
        accuracy = evaluate.linear_probe(f_train, train[1], f_test, test[1])
    print(json.dumps({"protocol": args.protocol, "protocol_details": protocol,
                      "accuracy": accuracy, "std": std,
                      "labels_per_class": args.labels_per_class, "seeds": seeds,
                      "train_size": len(train[1]), "test_size": len(test[1]),
                      "dataset": dataset, "checkpoint": str(args.checkpoint)}))
    return 0


def run_pretrained(args: argparse.Namespace) -> int:
    from sslbook import data, evaluate, pretrained

    if args.action == "list":
        for name in pretrained.names():
            c = pretrained.card(name)
            ours = c["evaluation"][name]
            print(f"{name:<12}{c['method']:<12}{c['epochs']:>4} epochs  kNN {ours['knn']:.3f}  "
                  f"linear {ours['linear']:.3f}  {c['size_bytes'] / 2**20:.1f} MB  "
                  f"{c['command']}")
        return 0
    if args.action == "verify":
        todo = [args.name] if args.name else pretrained.names()
        for name in todo:
            print(f"{name}: ok, sha256 {pretrained.sha256(pretrained.path(name))[:16]}... "
                  "matches its card")
        return 0
    if not args.name:
        raise ValueError("pretrained evaluate needs a NAME (see: python -m sslbook pretrained "
                         "list)")
    card = pretrained.card(args.name)
    encoder = pretrained.load(args.name, encoder_only=True)
    train, test = data.fashion_mnist("train"), data.fashion_mnist("test")
    print(f"{args.name}: re-measuring on Fashion-MNIST, train 60,000 -> test 10,000 ...",
          file=sys.stderr)
    fresh = evaluate.read_outs(encoder, train, test)
    recorded = card["evaluation"][args.name]
    if args.json:
        print(json.dumps({"name": args.name, "protocol": card["evaluation"]["protocol"],
                          "card": recorded, "measured": fresh}))
        return 0
    print(f"{'read-out':<18}{'card':>8}{'measured':>10}   ({card['evaluation']['protocol']})")
    for key in fresh:
        print(f"{key:<18}{recorded[key]:>8.4f}{fresh[key]:>10.4f}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sslbook", description="Pretrain and evaluate self-supervised encoders.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("data", help="find (or download) a data set and print its shapes")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.set_defaults(run=run_data)

    p = sub.add_parser("pretrain", help="self-supervised pretraining with a kNN monitor")
    p.add_argument("--method", choices=METHODS, required=True)
    p.add_argument("--help-method", action="store_true",
                   help="list the method's settings with their paper defaults, then exit")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a method setting, e.g. --set temperature=0.2 (repeatable)")
    p.add_argument("--optimizer", choices=("sgd", "lars", "adamw"),
                   help="default: the paper's")
    p.add_argument("--momentum", type=float, help="default: the paper's")
    p.add_argument("--weight-decay", type=float, help="default: the paper's")
    p.add_argument("--warmup-epochs", type=float,
                   help="linear warm-up (default: the method's recipe, at most 10%% of the run; "
                   "see --help-method)")
    p.add_argument("--extend", action="store_true", help="with --resume: continue the run to a "
                   "new --epochs (the cosine schedule is recomputed for the new length)")
    p.add_argument("--dataset", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--arch", choices=ARCHS, default="convnet")
    p.add_argument("--epochs", type=int, help="required, except with --help-method")
    p.add_argument("--batch-size", type=int, default=256,
                   help="global batch; under torchrun split among the processes")
    p.add_argument("--subset", type=int, help="train on this many random images")
    p.add_argument("--lr", type=float, help="learning rate per 256 images (default: paper's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:N (default: cuda if available)")
    p.add_argument("--augment", choices=PRESETS, help="default: the method's paper")
    p.add_argument("--out", help="folder for checkpoint.pt and history.json (required)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in OUT (without it, an existing run is refused)")
    p.add_argument("--knn-every", type=int, default=1, help="kNN monitor every N epochs")
    p.add_argument("--max-minutes", type=float, help="stop (and checkpoint) after this long")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                   help="autocast precision (default: bf16 on a GPU with native bf16, else fp32;"
                   " fp16 uses a GradScaler)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the encoders (minutes of compilation, then faster steps)")
    p.set_defaults(run=run_pretrain)

    p = sub.add_parser("evaluate", help="kNN or linear accuracy of a checkpoint's encoder")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--protocol", choices=("knn", "linear"), default="knn")
    p.add_argument("--labels-per-class", type=int, help="use only N labels of each class")
    p.add_argument("--seeds", type=int, default=3, help="label draws with --labels-per-class")
    p.add_argument("--subset", type=int, help="use this many random train and test images")
    p.add_argument("--dataset", choices=DATASETS, help="default: the checkpoint's")
    p.add_argument("--device")
    p.set_defaults(run=run_evaluate)

    p = sub.add_parser("pretrained", help="the book's trained networks (checkpoints/)")
    p.add_argument("action", choices=("list", "verify", "evaluate"))
    p.add_argument("name", nargs="?", help="a network's name (verify: default all)")
    p.add_argument("--json", action="store_true", help="evaluate: print JSON")
    p.set_defaults(run=run_pretrained)

    from sslbook.teach.cli import add_parser  # argparse only: the teaching tools load on use

    add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (2 for bad arguments and missing files)."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as err:  # bad input, missing or corrupt files, no data set
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    except Exception as err:  # the run itself failed: non-finite loss, out of GPU memory
        import torch

        if not isinstance(err, (FloatingPointError, torch.OutOfMemoryError)):
            raise
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 1
    finally:
        if "torch" in sys.modules:  # torchrun: leave the process group cleanly
            import torch.distributed as dist

            if dist.is_available() and dist.is_initialized():
                dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
