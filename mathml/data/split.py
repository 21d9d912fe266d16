"""Seeded train/val/test splits and binarisation shared by the image loaders, and the check of
their arguments (public, so a DataModule can validate them when it is built, before any file is read)."""

from __future__ import annotations

import numpy as np
import torch

from mathml.checks import check_choice, check_in_open_interval, check_nonnegative_int

SPLITS = ("train", "val", "test")
BINARIZE = (None, "threshold", "bernoulli")


def check_split_args(
    *, seed: int, val_fraction: float, test_fraction: float | None = None, binarize: str | None = None
) -> None:
    """Raise ``ValueError`` naming the argument unless the split arguments are valid.

    ``seed`` an int >= 0; each fraction in (0, 1) and, when ``test_fraction`` is given,
    ``val_fraction + test_fraction < 1`` (some training data is left); ``binarize`` in ``BINARIZE``.
    """
    check_nonnegative_int(seed, "seed")
    check_in_open_interval(val_fraction, "val_fraction", 0.0, 1.0)
    if test_fraction is not None:
        check_in_open_interval(test_fraction, "test_fraction", 0.0, 1.0)
        if val_fraction + test_fraction >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1 to leave training data, "
                f"got {val_fraction} + {test_fraction}"
            )
    check_choice(binarize, "binarize", BINARIZE)


def split_indices(n: int, split: str, *, seed: int, val_fraction: float, test_fraction: float) -> np.ndarray:
    """Indices of one part of a fixed seeded train/val/test partition of ``range(n)``.

    ``numpy.random.default_rng(seed).permutation(n)`` (PCG64, identical on every machine) is cut
    into test (the first ``round(test_fraction * n)``), val (the next ``round(val_fraction * n)``)
    and train (the rest). The three parts are disjoint and cover ``range(n)``; each is returned
    sorted, so the same seed always gives the same examples in the same order.
    """
    check_choice(split, "split", SPLITS)
    check_split_args(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction)
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
    check_choice(binarize, "binarize", BINARIZE)
    if binarize is None:
        return x
    if binarize == "threshold":
        return (x > 0.5).to(x.dtype)
    u = np.random.default_rng([seed, 1]).random(tuple(x.shape))
    return (torch.from_numpy(u) < x.double()).to(x.dtype)
