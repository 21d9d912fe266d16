"""The torchvision path on tiny files written here in the official formats, and the missing-files error."""

import pickle
import struct

import numpy as np
import pytest
import torch
import torchvision.datasets

from mathml.data import DatasetNotFoundError, prepare_torchvision, torchvision_images

N_TRAIN, N_TEST = 20, 6


def _write_idx(path, array):
    """IDX format (LeCun et al.): magic 0x0000 08 <ndim> (unsigned byte data), big-endian dims, bytes."""
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 8, array.ndim))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def _write_mnist_like(root, folder, rng):
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    truth = {}
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", images)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels)
        truth[prefix] = (images, labels)
    return truth


def _write_cifar(root, rng, monkeypatch):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    truth = {"train": [], "test": []}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, size=(4, 3 * 32 * 32), dtype=np.uint8)  # rows: R, G, B planes
        labels = rng.integers(0, 10, size=4).tolist()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
        truth["test" if name == "test_batch" else "train"].append((data, labels))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{i}" for i in range(10)]}, f)
    # Our tiny files cannot match the official MD5 sums; drop only the checksums.
    cls = torchvision.datasets.CIFAR10
    monkeypatch.setattr(cls, "train_list", [[n, None] for n, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[n, None] for n, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": None})
    return {k: (np.concatenate([d for d, _ in v]), sum((l for _, l in v), [])) for k, v in truth.items()}


@pytest.mark.parametrize(("name", "folder"), [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_like_files_load_through_torchvision(tmp_path, name, folder):
    truth = _write_mnist_like(tmp_path, folder, np.random.default_rng(0))
    x, y = torchvision_images(name, tmp_path, "test")
    assert x.shape == (N_TEST, 1, 28, 28) and x.dtype == torch.float32
    torch.testing.assert_close(x[:, 0] * 255, torch.from_numpy(truth["t10k"][0]).float(), rtol=0, atol=1e-4)
    assert torch.equal(y, torch.from_numpy(truth["t10k"][1]).long())
    xs = {s: torchvision_images(name, tmp_path, s, seed=1, val_fraction=0.25) for s in ("train", "val")}
    assert xs["val"][0].shape[0] == round(0.25 * N_TRAIN)
    assert xs["train"][0].shape[0] == N_TRAIN - round(0.25 * N_TRAIN)
    # train and val partition the official training images
    rows = torch.cat([xs["train"][0], xs["val"][0]]).flatten(1).mul(255).round().long()
    truth_rows = torch.from_numpy(truth["train"][0]).flatten(1).long()
    assert sorted(map(tuple, rows.tolist())) == sorted(map(tuple, truth_rows.tolist()))


def test_cifar10_files_load_in_channel_first_layout(tmp_path, monkeypatch):
    truth = _write_cifar(tmp_path, np.random.default_rng(1), monkeypatch)
    x, y = torchvision_images("cifar10", tmp_path, "test")
    data, labels = truth["test"]
    assert x.shape == (4, 3, 32, 32)
    torch.testing.assert_close(x * 255, torch.from_numpy(data.reshape(-1, 3, 32, 32)).float(), rtol=0, atol=1e-4)
    assert y.tolist() == labels
    x_train, _ = torchvision_images("cifar10", tmp_path, "train", val_fraction=0.1)
    assert x_train.shape[0] == 20 - round(0.1 * 20)


@pytest.mark.parametrize(
    ("name", "folder", "expected"),
    [
        ("mnist", "MNIST/raw", "t10k-labels-idx1-ubyte"),
        ("fashion_mnist", "FashionMNIST/raw", "train-images-idx3-ubyte"),
        ("cifar10", "cifar-10-batches-py", "data_batch_5"),
    ],
)
def test_missing_files_give_one_clear_error_and_create_nothing(tmp_path, name, folder, expected):
    root = tmp_path / "nowhere" / "data"
    with pytest.raises(DatasetNotFoundError) as info:
        torchvision_images(name, root, "train")
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str((root / folder).resolve()) in message
    assert expected in message and "paths.data_dir=" in message and "MATHML_DATA_DIR" in message
    assert not (tmp_path / "nowhere").exists()


@pytest.fixture
def unreachable_mirrors(monkeypatch):
    """Point every download at a closed local port so the test never touches the network."""
    dead = "http://127.0.0.1:9/"
    monkeypatch.setattr(torchvision.datasets.MNIST, "mirrors", [dead])
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "mirrors", [dead])
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "url", dead + "cifar-10-python.tar.gz")


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
@pytest.mark.parametrize("root_exists", [False, True])
def test_failed_download_removes_only_folders_it_created(tmp_path, unreachable_mirrors, name, root_exists):
    root = tmp_path / "cache"
    if root_exists:
        root.mkdir()
        (root / "keep.txt").write_text("mine")
    with pytest.raises(DatasetNotFoundError, match="Downloading failed"):
        prepare_torchvision(name, root, download=True)
    if root_exists:
        assert sorted(p.name for p in root.iterdir()) == ["keep.txt"]
    else:
        assert not root.exists()
    assert list(tmp_path.iterdir()) == ([root] if root_exists else [])


def test_unknown_name_lists_the_choices(tmp_path):
    with pytest.raises(ValueError, match="mnist.*fashion_mnist.*cifar10"):
        torchvision_images("svhn", tmp_path, "train")
