"""Data sets as tensors: images are uint8 N x C x H x W, labels int64.

Fashion-MNIST (Xiao, Rasul, Vollgraf 2017, arXiv:1708.07747; MIT licence) is the book's embedded
data set. It is looked for, in order, in: the ``root`` argument, ``$SSLBOOK_DATA``, the
repository's ``data/`` folder, ``/usr/share/datasets/fashion-mnist`` (Debian's
``dataset-fashion-mnist``), and only then downloaded with torchvision.

CIFAR-10 and STL-10 are downloaded by torchvision and read here from their documented file
formats, so that tests can load small fake archives through the same code.
"""

from __future__ import annotations

import gzip
import os
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                         "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
STL10_CLASSES = ("airplane", "bird", "car", "cat", "deer",
                 "dog", "horse", "monkey", "ship", "truck")

# Per-channel mean and std of the training images in [0, 1] (encoders normalise with these).
STATS = {
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "stl10": ((0.4467, 0.4398, 0.4066), (0.2603, 0.2566, 0.2713)),
}
DATASETS = tuple(STATS)


class DataNotFoundError(FileNotFoundError):
    """The data set is in none of the places looked at and could not be downloaded."""


class CorruptDataError(ValueError):
    """A data file exists but cannot be decoded (truncated, wrong format)."""


# --------------------------------------------------------------------------- locations
def _repo_data() -> Path | None:
    """The checkout's ``data/`` folder, when sslbook runs from a checkout."""
    if (REPO / "pyproject.toml").is_file() and (REPO / "data").is_dir():
        return REPO / "data"
    return None


def _candidates(root: str | os.PathLike | None) -> list[Path]:
    places = [Path(root)] if root is not None else []
    if os.environ.get("SSLBOOK_DATA"):
        places.append(Path(os.environ["SSLBOOK_DATA"]))
    if _repo_data() is not None:
        places.append(_repo_data())
    return places


def _download_dirs(root: str | os.PathLike | None) -> list[Path]:
    """Where a download may go, in order of preference."""
    return [*_candidates(root), Path.home() / ".cache" / "sslbook"]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def default_root(root: str | os.PathLike | None = None) -> Path:
    """The first writable folder for downloads: ``root``, $SSLBOOK_DATA, data/, ~/.cache."""
    for place in _download_dirs(root):
        if _writable(place):
            return place
    raise PermissionError("no writable data folder; set SSLBOOK_DATA to a folder you can write")


# --------------------------------------------------------------------------- Fashion-MNIST
_FMNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_LAYOUTS = ("", "FashionMNIST/raw", "fashion-mnist")  # Debian/flat, torchvision, named folder


def _find_file(folder: Path, stem: str) -> Path | None:
    for layout in _LAYOUTS:
        for name in (stem + ".gz", stem):
            path = folder / layout / name
            if path.is_file():
                return path
    return None


def read_idx(path: str | os.PathLike, expected_dims: int) -> np.ndarray:
    """Decode an IDX file (gzip or plain), checking the magic number, shape and length."""
    path = Path(path)
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise CorruptDataError(f"{path}: cannot be read ({err}); delete it and fetch it again") \
            from err
    if len(raw) < 4 + 4 * expected_dims:
        raise CorruptDataError(f"{path}: only {len(raw)} bytes, too short for an IDX header; "
                               "the file is truncated: delete it and fetch it again")
    zero, dtype_code, dims = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype_code != 0x08 or dims != expected_dims:
        raise CorruptDataError(f"{path}: bad IDX magic number {raw[:4].hex()} (expected "
                               f"00000{800 + expected_dims}: unsigned bytes, {expected_dims} "
                               "dimensions); is this the right file?")
    shape = struct.unpack(">" + "I" * dims, raw[4:4 + 4 * dims])
    body = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise CorruptDataError(f"{path}: header says shape {shape} ({int(np.prod(shape))} bytes) "
                               f"but {body.size} bytes follow; the file is truncated: delete it "
                               "and fetch it again")
    return body.reshape(shape)


def _load_fmnist_from(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor] | None:
    image_stem, label_stem = _FMNIST_FILES[split]
    image_file, label_file = _find_file(folder, image_stem), _find_file(folder, label_stem)
    if image_file is None or label_file is None:
        return None
    images = read_idx(image_file, 3)
    labels = read_idx(label_file, 1)
    if images.shape[1:] != (28, 28):
        raise CorruptDataError(f"{image_file}: images are {images.shape[1:]}, expected 28 x 28")
    if len(images) != len(labels):
        raise CorruptDataError(f"{image_file} holds {len(images)} images but {label_file} holds "
                               f"{len(labels)} labels; one of them is from another split")
    if labels.size and labels.max() > 9:
        raise CorruptDataError(f"{label_file}: label {labels.max()} is not a Fashion-MNIST class")
    return (torch.from_numpy(images.copy()).unsqueeze(1),
            torch.from_numpy(labels.astype(np.int64)))


def fashion_mnist_location(root: str | os.PathLike | None = None) -> Path | None:
    """The first folder, in search order, that holds all four Fashion-MNIST files (or None)."""
    for place in [*_candidates(root), DEBIAN_DIR]:
        if all(_find_file(place, stem) for pair in _FMNIST_FILES.values() for stem in pair):
            return place
    return None


def _download_fmnist(folder: Path) -> None:
    """Download with torchvision into ``folder/FashionMNIST/raw`` (overridden in tests)."""
    import torchvision

    torchvision.datasets.FashionMNIST(str(folder), train=True, download=True)
    torchvision.datasets.FashionMNIST(str(folder), train=False, download=True)


def fashion_mnist(split: str = "train", root: str | os.PathLike | None = None,
                  download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Fashion-MNIST as (uint8 images N x 1 x 28 x 28, int64 labels N).

    Looks in ``root``, ``$SSLBOOK_DATA``, the repository's ``data/``, then
    ``/usr/share/datasets/fashion-mnist``; downloads with torchvision only when none has it.
    """
    if split not in _FMNIST_FILES:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    places = [*_candidates(root), DEBIAN_DIR]
    for place in places:
        found = _load_fmnist_from(place, split)
        if found is not None:
            return found
    errors = []
    if download:
        for place in _download_dirs(root):
            if not _writable(place):
                errors.append(f"{place}: not writable")
                continue
            if _find_file(place, _FMNIST_FILES[split][0]) is not None:
                continue  # a partial copy of the user's: never download over it
            try:
                _download_fmnist(place)
            except Exception as err:  # no network, proxy, disk full ...
                errors.append(f"download into {place} failed: {type(err).__name__}: {err}")
                break
            found = _load_fmnist_from(place, split)
            if found is not None:
                return found
    looked = "\n".join(f"  - {p}" for p in places)
    tried = "\n".join(f"  - {e}" for e in errors) or "  - download disabled"
    raise DataNotFoundError(
        f"Fashion-MNIST ({split}) was not found. Looked in:\n{looked}\nand then:\n{tried}\n"
        "Fix it in one of two ways:\n"
        "  1. sudo apt-get install dataset-fashion-mnist   (Debian/Ubuntu: files go to "
        f"{DEBIAN_DIR})\n"
        "  2. run `make data` (or python -m sslbook data) once on a machine with network access"
        " (files go to data/FashionMNIST/raw), or set SSLBOOK_DATA to a folder holding the four"
        " *-ubyte.gz files."
    )


# --------------------------------------------------------------------------- CIFAR-10
def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except Exception as err:
        raise CorruptDataError(f"{path}: not a readable CIFAR-10 batch ({err}); delete the "
                               "cifar-10-batches-py folder and download again") from err
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise CorruptDataError(f"{path}: data of shape {data.shape} with {len(labels)} labels; "
                               "expected N x 3072 with N labels")
    return data.reshape(-1, 3, 32, 32), labels


def cifar10(split: str = "train", root: str | os.PathLike | None = None,
            download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 as (uint8 images N x 3 x 32 x 32, int64 labels N); downloaded by torchvision."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    folder = next((p for p in _download_dirs(root) if (p / "cifar-10-batches-py").is_dir()
                   or (p / "cifar-10-python.tar.gz").is_file()), None)
    if folder is None:
        if not download:
            raise DataNotFoundError("CIFAR-10 not found in " + ", ".join(
                str(p) for p in _download_dirs(root)) + "; pass download=True with network access")
        import torchvision

        folder = default_root(root)
        torchvision.datasets.CIFAR10(str(folder), train=split == "train", download=True)
    batches = folder / "cifar-10-batches-py"
    if not batches.is_dir():
        with tarfile.open(folder / "cifar-10-python.tar.gz") as tar:
            tar.extractall(folder, filter="data")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = [_read_cifar_batch(batches / name) for name in names]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return torch.from_numpy(images), torch.from_numpy(labels)


# --------------------------------------------------------------------------- STL-10
def stl10(split: str = "train", root: str | os.PathLike | None = None,
          download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """STL-10 as (uint8 images N x 3 x 96 x 96, int64 labels N, 0-9; -1 for ``unlabeled``)."""
    if split not in ("train", "test", "unlabeled"):
        raise ValueError(f"split must be 'train', 'test' or 'unlabeled', not {split!r}")
    folder = next((p for p in _download_dirs(root) if (p / "stl10_binary").is_dir()), None)
    if folder is None:
        if not download:
            raise DataNotFoundError("STL-10 not found in " + ", ".join(
                str(p) for p in _download_dirs(root)) + "; pass download=True with network access")
        import torchvision

        folder = default_root(root)
        torchvision.datasets.STL10(str(folder), split=split, download=True)
    path = folder / "stl10_binary" / f"{split}_X.bin"
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise CorruptDataError(f"{path}: {raw.size} bytes is not a whole number of 96x96 RGB "
                               "images; the file is truncated: delete it and download again")
    # stored column-major per channel: N x C x W x H -> N x C x H x W
    images = raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2).copy()
    if split == "unlabeled":
        labels = np.full(len(images), -1, dtype=np.int64)
    else:
        labels = np.fromfile(folder / "stl10_binary" / f"{split}_y.bin", dtype=np.uint8)
        labels = labels.astype(np.int64) - 1
        if len(labels) != len(images):
            raise CorruptDataError(f"{path}: {len(images)} images but {len(labels)} labels")
    return torch.from_numpy(images), torch.from_numpy(labels)


# --------------------------------------------------------------------------- helpers
def load(dataset: str, split: str = "train", root: str | os.PathLike | None = None
         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one of :data:`DATASETS` by name (the CLI and checkpoints use these names)."""
    loaders = {"fashion-mnist": fashion_mnist, "cifar10": cifar10, "stl10": stl10}
    if dataset not in loaders:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {', '.join(loaders)}")
    return loaders[dataset](split, root=root)


def few_labels(labels: torch.Tensor, per_class: int, seed: int = 0) -> torch.Tensor:
    """Sorted indices of ``per_class`` examples of every class, drawn without replacement.

    Unlabelled examples (label -1) are never drawn. The same seed gives the same subset.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, not {per_class}")
    labels = torch.as_tensor(labels)
    generator = torch.Generator().manual_seed(seed)
    chosen = []
    for c in torch.unique(labels[labels >= 0]).tolist():
        idx = torch.nonzero(labels == c).flatten()
        if len(idx) < per_class:
            raise ValueError(f"class {c} has only {len(idx)} examples, fewer than "
                             f"per_class={per_class}")
        chosen.append(idx[torch.randperm(len(idx), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


# --------------------------------------------------------------------------- digits
DIGITS_SPLIT = {"test_size": 0.25, "random_state": 0}  # stratified: 1,347 train / 450 test


def digits(split: str = "train", size: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled handwritten digits (``load_digits``: 1,797 images of 8 x 8 pixels
    with values 0-16, the test part of the UCI "Optical Recognition of Handwritten Digits" set;
    shipped inside scikit-learn, so no download) as (uint8 images N x 1 x size x size, int64
    labels N), white digits on black like Fashion-MNIST.

    Values are scaled to 0-255 (x 255 / 16) and resized bilinearly to ``size`` x ``size``. The
    split is fixed and stratified, ``train_test_split(test_size=0.25, random_state=0,
    stratify=labels)``: 1,347 training images (131 to 137 per class) and 450 test images
    (43 to 46 per class).
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    bunch = load_digits()
    images = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16  # N x 1 x 8 x 8
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    train_idx, test_idx = train_test_split(torch.arange(len(labels)).numpy(), stratify=labels,
                                           **DIGITS_SPLIT)
    idx = torch.as_tensor(train_idx if split == "train" else test_idx)
    x = torch.nn.functional.interpolate(images[idx], size=(size, size), mode="bilinear",
                                        align_corners=False)
    return (x * 255).round().clamp(0, 255).to(torch.uint8), labels[idx]
