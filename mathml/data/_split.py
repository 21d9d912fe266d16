"""Argument checks, seeded splits and binarisation shared by the image loaders."""

from __future__ import annotations

import numpy as np
import torch

SPLITS = ("train", "val", "test")
BINARIZE = (None, "threshold", "bernoulli")


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def check_binarize(binarize: str | None) -> None:
    if binarize not in BINARIZE:
        raise ValueError(f"binarize must be one of {BINARIZE}, got {binarize!r}")


def check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Both fractions in (0, 1), leaving some training data."""
    check_fraction(val_fraction, "val_fraction")
    check_fraction(test_fraction, "test_fraction")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1 to leave training data, "
            f"got {val_fraction} + {test_fraction}"
        )


def check_fraction(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be a number in the open interval (0, 1), got {value!r}")


def split_indices(n: int, split: str, *, seed: int, val_fraction: float, test_fraction: float) -> np.ndarray:
    """Indices of one part of a fixed seeded train/val/test partition of ``range(n)``.

    ``numpy.random.default_rng(seed).permutation(n)`` (PCG64, identical on every machine) is cut
    into test (the first ``round(test_fraction * n)``), val (the next ``round(val_fraction * n)``)
    and train (the rest). The three parts are disjoint and cover ``range(n)``; each is returned
    sorted, so the same seed always gives the same examples in the same order.
    """
    check_split(split)
    check_seed(seed)
    check_fractions(val_fraction, test_fraction)
    perm = np.random.default_rng(seed).permutation(n)
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * n)
    parts = {"test": perm[:n_test], "val": perm[n_test : n_test + n_val], "train": perm[n_test + n_val :]}
    return np.sort(parts[split])


def binarize_images(x: torch.Tensor, binarize: str | None, *, seed: int) -> torch.Tensor:
    """Binarise images ``x: (N, ...)`` with values in [0, 1].

    ``"threshold"``: ``1[x > 0.5]``. ``"bernoulli"``: one draw ``b ~ Bernoulli(x)`` per pixel from
    ``numpy.random.default_rng([seed, 1])`` over the whole data set, made once so the binarised
    set is static (the "stochastic binarisation" of Salakhutdinov & Murray 2008, Sec. 5, used by
    Burda et al. 2016). ``None`` returns ``x`` unchanged.
    """
    check_binarize(binarize)
    if binarize is None:
        return x
    if binarize == "threshold":
        return (x > 0.5).to(x.dtype)
    u = np.random.default_rng([seed, 1]).random(tuple(x.shape))
    return (torch.from_numpy(u) < x.double()).to(x.dtype)
