"""torchvision's MNIST, Fashion-MNIST and CIFAR-10 as tensors, with one clear error when files are absent."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mathml.checks import check_choice
from mathml.data.split import SPLITS, check_split_args
from mathml.data.info import CIFAR10, FASHION_MNIST, MNIST, DataInfo


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are not on disk and could not be downloaded."""


@dataclass(frozen=True)
class _Source:
    cls_name: str  # class in torchvision.datasets
    folder: str  # where that class looks for its files, relative to root
    files: tuple[str, ...]
    info: DataInfo
    how: str  # how to obtain the files by hand


_IDX = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_IDX_HOW = (
    "download the four .gz files from {url} and decompress them with gunzip (or keep the .gz files there "
    "and pass download=True: torchvision verifies and extracts them without a network)"
)
_SOURCES = {
    "mnist": _Source(
        "MNIST", "MNIST/raw", _IDX, MNIST, _IDX_HOW.format(url="https://ossci-datasets.s3.amazonaws.com/mnist/")
    ),
    "fashion_mnist": _Source(
        "FashionMNIST",
        "FashionMNIST/raw",
        _IDX,
        FASHION_MNIST,
        _IDX_HOW.format(url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"),
    ),
    "cifar10": _Source(
        "CIFAR10",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta"),
        CIFAR10,
        "download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz and extract it into the data "
        "folder (tar xzf creates cifar-10-batches-py/), or put the .tar.gz itself in the data folder and "
        "pass download=True (verified and extracted without a network)",
    ),
}
TORCHVISION_NAMES = tuple(_SOURCES)


def _source(name: str) -> _Source:
    if name not in _SOURCES:
        raise ValueError(f"name must be one of {TORCHVISION_NAMES}, got {name!r}")
    return _SOURCES[name]


def torchvision_info(name: str) -> DataInfo:
    """``data_shape`` and ``num_levels`` of a torchvision set (no file is read)."""
    return _source(name).info


def _missing(source: _Source, root: Path) -> list[str]:
    return [f for f in source.files if not (root / source.folder / f).is_file()]


def _not_found(source: _Source, root: Path, cause: BaseException | None) -> DatasetNotFoundError:
    folder = (root / source.folder).resolve()
    missing = _missing(source, root) or ["(all present, but torchvision could not read them)"]
    tried = f"Downloading failed: {type(cause).__name__}: {str(cause).strip()}" if cause else (
        "download=False, so nothing was downloaded (download=True lets torchvision fetch them when "
        "the network is reachable)."
    )
    return DatasetNotFoundError(
        f"{source.cls_name} files not found in {folder}\n"
        f"  expected: {', '.join(source.files)}\n"
        f"  missing:  {', '.join(missing)}\n"
        f"  {tried}\n"
        f"  To obtain them: {source.how}; then copy them into {folder}. "
        f"To use a data folder elsewhere, set paths.data_dir=/path/to/data (or MATHML_DATA_DIR=/path/to/data)."
    )


def _open(source: _Source, root: Path, *, train: bool, download: bool):
    """Construct the torchvision data set; on failure remove only what this attempt created."""
    import torchvision.datasets

    cls = getattr(torchvision.datasets, source.cls_name)
    target = root / source.folder
    new = [p for p in (target, *target.parents) if not p.exists()]  # deepest first
    try:
        return cls(str(root), train=train, download=download)
    except (RuntimeError, OSError) as err:
        for path in new:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
        raise _not_found(source, root, err if download else None) from err


def prepare_torchvision(name: str, root: str | Path, *, download: bool = False) -> None:
    """Make sure the files of ``name`` are under ``root``, downloading them if allowed.

    Raises:
        DatasetNotFoundError: the files are absent and ``download`` is False or downloading
            failed; the message names the folder searched, the files expected and how to get them.
            Folders created by a failed download are removed again.
    """
    source = _source(name)
    root = Path(root).expanduser()
    if not _missing(source, root):
        return
    if not download:
        raise _not_found(source, root, None)
    for train in (True, False):
        _open(source, root, train=train, download=True)


def torchvision_images(
    name: str,
    root: str | Path,
    split: str,
    *,
    download: bool = False,
    seed: int = 0,
    val_fraction: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels of torchvision's ``"mnist"``, ``"fashion_mnist"`` or ``"cifar10"``.

    ``"test"`` is the official test set; ``"train"`` and ``"val"`` split the official training set:
    ``numpy.random.default_rng(seed).permutation(n)``, the first ``round(val_fraction * n)`` to val,
    the rest to train (each returned sorted).

    Args:
        name: one of ``TORCHVISION_NAMES``.
        root: the data folder (``paths.data_dir``); torchvision looks in ``root/MNIST/raw``,
            ``root/FashionMNIST/raw`` or ``root/cifar-10-batches-py``.
        split: ``"train"``, ``"val"`` or ``"test"``.
        download: let torchvision download missing files.

    Returns:
        x: (N, C, H, W) float32 in [0, 1] (8-bit values k / 255); y: (N,) int64 labels.

    Raises:
        DatasetNotFoundError: see ``prepare_torchvision``.
    """
    source = _source(name)
    check_choice(split, "split", SPLITS)
    check_split_args(seed=seed, val_fraction=val_fraction)
    root = Path(root).expanduser()
    if download:
        prepare_torchvision(name, root, download=True)
    elif _missing(source, root):
        raise _not_found(source, root, None)
    dataset = _open(source, root, train=split != "test", download=False)
    x = torch.as_tensor(np.asarray(dataset.data))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)  # MNIST (N, H, W); CIFAR (N, H, W, C)
    x = x.to(torch.float32).div_(255.0)
    y = torch.as_tensor(np.asarray(dataset.targets), dtype=torch.int64)
    if split != "test":
        perm = np.random.default_rng(seed).permutation(len(x))
        n_val = round(val_fraction * len(x))
        idx = np.sort(perm[:n_val] if split == "val" else perm[n_val:])
        x, y = x[idx], y[idx]
    return x.contiguous(), y
