"""sslbook.data on small fake files written here: IDX (gzip and plain), CIFAR-10, STL-10."""

from __future__ import annotations

import gzip
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from sslbook import data


def write_idx(path: Path, array: np.ndarray, compress: bool = True) -> Path:
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim,
                                                                   *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)
    return path


def fake_fmnist(folder: Path, layout: str = "", n: int = 20, compress: bool = True, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    labels = np.arange(n) % 10
    for split, (image_stem, label_stem) in data._FMNIST_FILES.items():
        write_idx(folder / layout / image_stem, images, compress)
        write_idx(folder / layout / label_stem, labels, compress)
    return images, labels


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No $SSLBOOK_DATA, no repository data/, no Debian folder, no network."""
    monkeypatch.delenv("SSLBOOK_DATA", raising=False)
    monkeypatch.setattr(data, "_repo_data", lambda: None)
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian-absent")
    monkeypatch.setattr(data.Path, "home", staticmethod(lambda: tmp_path / "home"))

    def no_network(folder):
        raise OSError("network is unreachable")

    monkeypatch.setattr(data, "_download_fmnist", no_network)
    return tmp_path


@pytest.mark.parametrize("layout", ["", "FashionMNIST/raw", "fashion-mnist"])
@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_layouts(isolated, layout, compress):
    images, labels = fake_fmnist(isolated / "root", layout, compress=compress)
    x, y = data.fashion_mnist("test", root=isolated / "root")
    assert x.dtype == torch.uint8 and x.shape == (20, 1, 28, 28)
    assert y.dtype == torch.int64 and y.tolist() == labels.tolist()
    assert torch.equal(x[:, 0], torch.from_numpy(images))


def test_search_order_env_then_debian(isolated, monkeypatch):
    env_images, _ = fake_fmnist(isolated / "env", seed=1)
    deb_images, _ = fake_fmnist(isolated / "debian", seed=2)
    monkeypatch.setattr(data, "DEBIAN_DIR", isolated / "debian")
    x, _ = data.fashion_mnist("train")
    assert torch.equal(x[:, 0], torch.from_numpy(deb_images))  # no env var yet: Debian
    monkeypatch.setenv("SSLBOOK_DATA", str(isolated / "env"))
    x, _ = data.fashion_mnist("train")
    assert torch.equal(x[:, 0], torch.from_numpy(env_images))  # $SSLBOOK_DATA comes first


def test_missing_data_error_names_places_and_fixes(isolated, monkeypatch):
    monkeypatch.setenv("SSLBOOK_DATA", str(isolated / "env"))
    with pytest.raises(data.DataNotFoundError) as info:
        data.fashion_mnist("train", root=isolated / "mine")
    message = str(info.value)
    for place in (isolated / "mine", isolated / "env", isolated / "debian-absent"):
        assert str(place) in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "network" in message and "network is unreachable" in message


def test_download_goes_to_first_writable_and_is_used(isolated, monkeypatch):
    def fake_download(folder):
        fake_fmnist(folder, "FashionMNIST/raw", seed=3)

    monkeypatch.setattr(data, "_download_fmnist", fake_download)
    monkeypatch.setenv("SSLBOOK_DATA", str(isolated / "env"))
    x, y = data.fashion_mnist("train")
    assert (isolated / "env" / "FashionMNIST" / "raw" / "train-images-idx3-ubyte.gz").is_file()
    assert len(x) == len(y) == 20


def test_partial_user_copy_is_never_downloaded_over(isolated, monkeypatch):
    folder = isolated / "env"
    write_idx(folder / "train-images-idx3-ubyte", np.zeros((3, 28, 28), np.uint8))  # no labels
    calls = []
    monkeypatch.setattr(data, "_download_fmnist", lambda f: calls.append(f))
    monkeypatch.setenv("SSLBOOK_DATA", str(folder))
    with pytest.raises(data.DataNotFoundError):
        data.fashion_mnist("train")
    assert folder not in calls
    assert (folder / "train-images-idx3-ubyte.gz").stat().st_size > 0


def test_truncated_file_gets_its_own_error(isolated):
    fake_fmnist(isolated / "root")
    path = isolated / "root" / "t10k-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(data.CorruptDataError, match="truncated") as info:
        data.fashion_mnist("test", root=isolated / "root")
    assert str(path) in str(info.value)


def test_bad_magic_and_broken_gzip(isolated):
    fake_fmnist(isolated / "root")
    path = isolated / "root" / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x09\x01" + b"\x00" * 30))
    with pytest.raises(data.CorruptDataError, match="magic"):
        data.fashion_mnist("test", root=isolated / "root")
    path.write_bytes(b"not gzip at all")
    with pytest.raises(data.CorruptDataError, match=str(path)):
        data.fashion_mnist("test", root=isolated / "root")


def test_bad_split():
    with pytest.raises(ValueError, match="'train' or 'test'"):
        data.fashion_mnist("validation")


def write_fake_cifar(folder: Path, n: int = 6) -> dict:
    rng = np.random.default_rng(0)
    batches = {}
    build = folder / "build" / "cifar-10-batches-py"
    build.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": list(rng.integers(0, 10, n))}
        batches[name] = batch
        with open(build / name, "wb") as f:
            pickle.dump(batch, f)
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(build, arcname="cifar-10-batches-py")
    return batches


def test_cifar10_from_archive(isolated):
    batches = write_fake_cifar(isolated / "root")
    x, y = data.cifar10("train", root=isolated / "root", download=False)
    assert x.shape == (30, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    first = batches["data_batch_1"]["data"][0].reshape(3, 32, 32)
    assert torch.equal(x[0], torch.from_numpy(first))
    xt, yt = data.cifar10("test", root=isolated / "root", download=False)
    assert xt.shape == (6, 3, 32, 32) and yt.tolist() == batches["test_batch"]["labels"]


def test_cifar10_absent_without_download(isolated):
    with pytest.raises(data.DataNotFoundError, match="download=True"):
        data.cifar10("train", root=isolated / "nothing", download=False)


def test_stl10_layout_and_unlabeled(isolated):
    folder = isolated / "root" / "stl10_binary"
    folder.mkdir(parents=True)
    images = np.random.default_rng(0).integers(0, 256, (4, 3, 96, 96), dtype=np.uint8)
    images.transpose(0, 1, 3, 2).tofile(folder / "train_X.bin")  # column-major, as STL-10
    np.array([1, 2, 3, 10], np.uint8).tofile(folder / "train_y.bin")
    images[:3].transpose(0, 1, 3, 2).tofile(folder / "unlabeled_X.bin")
    x, y = data.stl10("train", root=isolated / "root", download=False)
    assert torch.equal(x, torch.from_numpy(images)) and y.tolist() == [0, 1, 2, 9]
    x, y = data.stl10("unlabeled", root=isolated / "root", download=False)
    assert x.shape == (3, 3, 96, 96) and y.tolist() == [-1, -1, -1]


def test_few_labels_stratified_and_seeded():
    labels = torch.arange(1000) % 10
    idx = data.few_labels(labels, per_class=7, seed=3)
    assert len(idx) == 70 and torch.equal(idx, idx.sort().values)
    assert torch.bincount(labels[idx]).tolist() == [7] * 10
    assert torch.equal(idx, data.few_labels(labels, 7, seed=3))
    assert not torch.equal(idx, data.few_labels(labels, 7, seed=4))
    with_unlabeled = torch.cat([labels, torch.full((50,), -1)])
    assert (with_unlabeled[data.few_labels(with_unlabeled, 5)] >= 0).all()
    with pytest.raises(ValueError, match="fewer than"):
        data.few_labels(labels, per_class=101)


def test_real_fashion_mnist_when_installed():
    if not data._load_fmnist_from(data.DEBIAN_DIR, "test") and data._repo_data() is None:
        pytest.skip("Fashion-MNIST is not installed")
    try:
        x, y = data.fashion_mnist("test", download=False)
    except data.DataNotFoundError:
        pytest.skip("Fashion-MNIST is not installed")
    assert x.shape == (10000, 1, 28, 28) and torch.bincount(y).tolist() == [1000] * 10
    mean, std = data.STATS["fashion-mnist"]
    assert abs(x.float().div(255).mean().item() - mean[0]) < 0.01


def test_digits_split_is_fixed_stratified_and_shaped_like_fashion_mnist():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits

    x, y = data.digits("train")
    xt, yt = data.digits("test")
    assert x.shape == (1347, 1, 28, 28) and xt.shape == (450, 1, 28, 28)
    assert x.dtype == torch.uint8 and y.dtype == torch.int64 and int(x.max()) == 255
    counts, test_counts = y.bincount(minlength=10), yt.bincount(minlength=10)
    assert counts.min() >= 130 and (test_counts - 45).abs().max() <= 2  # stratified
    again = data.digits("train")
    assert torch.equal(x, again[0]) and torch.equal(y, again[1])  # fixed split
    # every image, shrunk back to 8 x 8, is one of load_digits' images with its label
    bunch = load_digits()
    small = torch.nn.functional.interpolate(x[:20].float() / 255, size=(8, 8), mode="area")
    originals = torch.as_tensor(bunch.images, dtype=torch.float32) / 16  # 1797 x 8 x 8
    nearest = torch.cdist(small.flatten(1), originals.flatten(1)).argmin(1)
    assert torch.equal(torch.as_tensor(bunch.target)[nearest], y[:20])
    # train and test do not share an image
    pairs = torch.cdist(x.flatten(1).float(), xt.flatten(1).float())
    assert pairs.min() > 0
    with pytest.raises(ValueError, match="split"):
        data.digits("val")
