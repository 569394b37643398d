"""The book's trained encoders: ``load("simclr")`` returns a network ready to evaluate.

Not to be confused with :mod:`sslbook.checkpoint`, which saves and resumes the *training state*
of a run (optimizer, schedule, random generators, momentum copies, queues). A pretrained file
here holds only what a reader needs: the online encoder and the heads a chapter probes (no
target or key network, no queue, no optimizer state). Each ``NAME.pt`` has a card ``NAME.json``
beside it (method, config, data, epochs, machine, commit, the exact command that made it, its
sha256 and the read-outs measured after training); ``python benchmarks/checkpoints.py NAME``
trains it again from scratch and writes a new card.

Files are looked for in the checkout's ``checkpoints/``, then in ``$SSLBOOK_CHECKPOINTS``, and
last downloaded from :data:`URL` (pinned in this one place) into ``~/.cache/sslbook``; every
file is checked against the sha256 of its card before it is loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import urllib.request
from pathlib import Path

import torch
from torch import nn

from sslbook import REPOSITORY, methods, models

FORMAT = "sslbook-pretrained"
VERSION = 1
REPO_DIR = Path(__file__).resolve().parents[1] / "checkpoints"
# The files at the tag checkpoints-v1 of the repository (the Pages workflow creates the tag).
URL = (REPOSITORY.replace("https://github.com/", "https://raw.githubusercontent.com/", 1)
       + "/checkpoints-v1/checkpoints/")
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sslbook" / "checkpoints"
# Parts of a method's state that a reader never needs: momentum copies and queues. On loading,
# a momentum copy starts as a copy of its online network (as at the start of training).
MOMENTUM_COPIES = {"target_encoder": "encoder", "target_projector": "projector",
                   "encoder_k": "encoder", "projector_k": "projector"}
DROPPED = (*MOMENTUM_COPIES, "queue", "queue_ptr", "queue_count")
# The fixed subset of the CI check: 2,000 training and 1,000 test images of Fashion-MNIST.
CI_SUBSET = {"train": 2_000, "test": 1_000, "train_seed": 0, "test_seed": 1}
KNN_TOLERANCE = 0.002  # CI fails when a re-measured kNN differs from the card by more


class PretrainedError(ValueError):
    """A pretrained file that is missing, truncated or modified, or an unknown name."""


def regenerate_command(name: str) -> str:
    return f"python benchmarks/checkpoints.py {name}"


def _dirs() -> list[Path]:
    dirs = [REPO_DIR]
    if os.environ.get("SSLBOOK_CHECKPOINTS"):
        dirs.append(Path(os.environ["SSLBOOK_CHECKPOINTS"]))
    return dirs


def names() -> list[str]:
    """The names of the cards found (checkout first, then ``$SSLBOOK_CHECKPOINTS``)."""
    found = {p.stem for d in _dirs() if d.is_dir() for p in d.glob("*.json")}
    return sorted(found)


def card(name: str) -> dict:
    """The card ``NAME.json`` of a pretrained network."""
    for d in _dirs():
        if (d / f"{name}.json").is_file():
            return json.loads((d / f"{name}.json").read_text())
    known = ", ".join(names()) or "none"
    raise PretrainedError(f"no pretrained network {name!r} (cards found: {known}); make it with "
                          f"{regenerate_command(name)}")


def sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(name: str, url: str) -> Path:
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"{name}.pt"
    tmp = path.with_suffix(".part")
    urllib.request.urlretrieve(url + f"{name}.pt", tmp)  # noqa: S310 (a pinned https URL)
    os.replace(tmp, path)
    return path


def path(name: str, url: str | None = None) -> Path:
    """The verified file of ``name``: found locally or downloaded, its sha256 equal to the
    card's; otherwise a :class:`PretrainedError` naming the file, both hashes and the fix."""
    expected = card(name)["sha256"]
    local = [d / f"{name}.pt" for d in _dirs() if (d / f"{name}.pt").is_file()]
    if not local and (CACHE / f"{name}.pt").is_file():
        local = [CACHE / f"{name}.pt"]
    if not local:
        local = [_download(name, url or URL)]
    found = sha256(local[0])
    if found != expected:
        raise PretrainedError(f"{local[0]} is not the file its card describes (sha256 expected "
                              f"{expected}, found {found}): it is truncated or modified; restore "
                              f"it (git checkout -- {local[0].name}) or make it again with "
                              f"{regenerate_command(name)}")
    return local[0]


def state_for_readers(method: nn.Module) -> dict:
    """The method's ``state_dict`` without momentum copies and queues."""
    return {k: v for k, v in method.state_dict().items() if k.split(".")[0] not in DROPPED}


def export(method: nn.Module, name: str, path_: str | os.PathLike) -> None:
    """Write the reader's file of a trained ``method`` (plain tensors and values)."""
    from sslbook.checkpoint import method_name, save_checkpoint

    save_checkpoint(path_, {"format": FORMAT, "version": VERSION, "name": name,
                            "method": method_name(method), "method_config": method.config,
                            "encoder_config": method.encoder.config,
                            "state_dict": state_for_readers(method)})


def load(name: str, device: str | torch.device | None = None, encoder_only: bool = False,
         url: str | None = None) -> nn.Module:
    """The pretrained network ``name`` in eval mode on ``device`` (default CPU): the whole
    method (encoder and heads; ``method.encoder`` is the encoder) or, with
    ``encoder_only=True``, the encoder alone. The file's sha256 is checked against its card."""
    file = path(name, url)
    try:
        saved = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # a file that matches its card but cannot be read: a bad card
        raise PretrainedError(f"{file} cannot be read ({err}); make it again with "
                              f"{regenerate_command(name)}") from err
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise PretrainedError(f"{file} is not an sslbook pretrained file (format={FORMAT!r})")
    encoder = models.create(**saved["encoder_config"])
    method = methods.create(saved["method"], encoder, **saved["method_config"])
    state = dict(saved["state_dict"])
    full = method.state_dict()
    for key in full:  # momentum copies start as their online networks; queues as initialised
        head = key.split(".")[0]
        if head in MOMENTUM_COPIES:
            state[key] = state[MOMENTUM_COPIES[head] + key[len(head):]]
        elif head in DROPPED:
            state[key] = full[key]
    method.load_state_dict(state)
    method = method.to(device if device is not None else "cpu").eval()
    return method.encoder if encoder_only else method


def ci_subset() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed Fashion-MNIST subset of the CI check: (train x, train y, test x, test y)."""
    from sslbook.data import fashion_mnist

    (x, y), (xt, yt) = fashion_mnist("train"), fashion_mnist("test")
    i = torch.randperm(len(x), generator=torch.Generator().manual_seed(CI_SUBSET["train_seed"]))
    j = torch.randperm(len(xt), generator=torch.Generator().manual_seed(CI_SUBSET["test_seed"]))
    i, j = i[:CI_SUBSET["train"]], j[:CI_SUBSET["test"]]
    return x[i], y[i], xt[j], yt[j]


def subset_knn(encoder: nn.Module | None, subset: tuple | None = None) -> float:
    """kNN accuracy (k = 200, T = 0.1) on :func:`ci_subset`, on the CPU (deterministic)."""
    from sslbook.evaluate import features, knn_accuracy

    x, y, xt, yt = subset if subset is not None else ci_subset()
    if encoder is None:  # raw pixels
        return knn_accuracy(x.flatten(1).float() / 255, y, xt.flatten(1).float() / 255, yt)
    encoder = encoder.to("cpu")
    return knn_accuracy(features(encoder, x), y, features(encoder, xt), yt)


def random_encoder(images: torch.Tensor, device: str | torch.device | None = None) -> nn.Module:
    """The random-encoder baseline of every card: the convnet with seed 0, its BatchNorm
    statistics measured on the first 4,096 ``images`` (no gradient step)."""
    from sslbook.data import STATS
    from sslbook.evaluate import calibrate_batchnorm

    torch.manual_seed(0)
    encoder = models.create("convnet", 1, *STATS["fashion-mnist"], 28)
    return calibrate_batchnorm(encoder, images[:4096], device=device)


def compare(name: str, n_train: int = 10_000, n_test: int = 2_000, seed: int = 0,
            device: str | torch.device | None = None) -> dict:
    """What a chapter shows in reader mode: the card's read-outs of ``name`` next to raw pixels
    and the random encoder (measured after training, on all 60k / 10k images), and kNN
    accuracy measured now on a random subset (``n_train`` / ``n_test`` images, ``seed``) for
    the network, raw pixels and a random encoder. Prints both tables and returns
    ``{"card": {row: {read-out: value}}, "live": {row: kNN}, "encoder": the loaded encoder}``.
    """
    from sslbook.data import fashion_mnist
    from sslbook.evaluate import features, knn_accuracy

    info = card(name)
    encoder = load(name, device=device, encoder_only=True)
    (x, y), (xt, yt) = fashion_mnist("train"), fashion_mnist("test")
    i = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n_train]
    j = torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed + 1))[:n_test]
    base = random_encoder(x, device=device)
    live = {name: knn_accuracy(features(encoder, x[i]), y[i], features(encoder, xt[j]), yt[j]),
            "raw pixels": knn_accuracy(x[i].flatten(1).float() / 255, y[i],
                                       xt[j].flatten(1).float() / 255, yt[j]),
            "random encoder": knn_accuracy(features(base, x[i]), y[i], features(base, xt[j]),
                                           yt[j])}
    rows = {k: info["evaluation"][k] for k in (name, "raw pixels", "random encoder")}
    print(f"{name}: {info['epochs']} epochs, batch {info['batch_size']}, "
          f"{info['wall_minutes']:.0f} min on {info['machine'].split(',')[0]} "
          f"(card: checkpoints/{name}.json)")
    print(f"\n{'recorded after training':<24}{'kNN':>8}{'linear':>9}{'linear, 60/class':>19}")
    for row, v in rows.items():
        print(f"{row:<24}{v['knn']:>8.3f}{v['linear']:>9.3f}"
              f"{v['linear_60']:>12.3f} ± {v['linear_60_std']:.3f}")
    print(f"\n{'measured now':<24}{'kNN':>8}   ({n_train:,} / {n_test:,} images, seed {seed})")
    for row, v in live.items():
        print(f"{row:<24}{v:>8.3f}")
    return {"card": rows, "live": live, "encoder": encoder}


PROBE = 1_024  # the first test images: where benchmarks/checkpoints.py measures collapse


def ablation(base: str, names: list[str], device: str | torch.device | None = None) -> dict:
    """Chapters 9-11's ablations in reader mode. Each of ``names`` was trained as long as the
    ``base`` network with one setting changed (its card's ``ablation_of`` and ``config``).
    Prints and returns ``{"rows": {name: {...}}, "curves": {name: {key: (epochs, values)}},
    "raw pixels": {...}, "random encoder": {...}}``: per network its card's read-outs (all
    60k / 10k images), the mean loss of its last 25 steps and
    :func:`sslbook.evaluate.collapse_stats` measured now on the :data:`PROBE` test images; per
    network and key (``loss``, ``spread_p``, ``rank_p``, ...) the
    card's curve against epochs (the ablations every 25 steps, the base networks per epoch).
    The measures taken now must agree (2%) with the card's ``collapse`` where it has one (a rank
    only where its spread is at least 0.01: after a collapse it is the rank of rounding noise)."""
    from sslbook.data import fashion_mnist
    from sslbook.evaluate import collapse_stats

    probe = fashion_mnist("test")[0][:PROBE]
    rows, curves = {}, {}
    for name in [base, *names]:
        info = card(name)
        if name != base and info.get("ablation_of") != base:
            raise ValueError(f"{name} is not an ablation of {base} (its card says "
                             f"ablation_of={info.get('ablation_of')!r})")
        ev, history = info["evaluation"][name], info["history"]
        live = collapse_stats(load(name, device=device), probe)
        for key, value in info.get("collapse", {}).items():  # the card still describes the file
            if key.startswith("rank") and live["spread" + key[4:]] < 0.01:
                continue  # the rank of outputs collapsed to one point is that of rounding noise
            if abs(live[key] - value) > 0.02 * abs(value) + 1e-4:
                raise PretrainedError(f"{name}: {key} is {live[key]:.4f} measured now, its card "
                                      f"says {value:.4f}; make it again with "
                                      f"{regenerate_command(name)}")
        rows[name] = {"epochs": info["epochs"], "knn": ev["knn"], "linear": ev["linear"],
                      "loss_last": history["loss_curve"][-1]["loss"], **live}
        steps_per_epoch = info["images_seen"] / info["epochs"] / info["batch_size"]
        curves[name] = {"loss": ([r["step"] / steps_per_epoch for r in history["loss_curve"]],
                                 [r["loss"] for r in history["loss_curve"]])}
        for key in sorted({k for r in history["monitor"] for k in r} - {"epoch", "step"}):
            points = sorted((r["epoch"], r[key]) for r in history["monitor"] if key in r)
            curves[name][key] = ([e for e, _ in points], [v for _, v in points])
    pixels, random = (card(base)["evaluation"][k] for k in ("raw pixels", "random encoder"))
    keys = [k for k in ("spread_p", "spread_z", "spread_h", "rank_p", "rank_z", "rank_h")
            if all(k in r for r in rows.values())]
    print(f"{'network':<24}{'epochs':>7}{'kNN':>7}{'linear':>8}{'loss':>8}"
          + "".join(f"{k:>10}" for k in keys))
    for name, r in rows.items():
        print(f"{name:<24}{r['epochs']:>7}{r['knn']:>7.3f}{r['linear']:>8.3f}"
              f"{r['loss_last']:>8.3f}" + "".join(
                  f"{r[k]:>10.4f}" if k.startswith("spread") else f"{r[k]:>10.1f}" for k in keys))
    for name, row in (("raw pixels", pixels), ("random encoder", random)):
        print(f"{name:<24}{'':>7}{row['knn']:>7.3f}{row['linear']:>8.3f}")
    print(f"(read-outs from the cards, 60k -> 10k; loss: mean of the last 25 steps; spread and "
          f"effective rank measured now on {PROBE:,} test images, eval mode)")
    return {"rows": rows, "curves": curves, "raw pixels": pixels, "random encoder": random}
