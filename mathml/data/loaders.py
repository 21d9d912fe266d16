"""Seeded data loaders whose batch order depends only on (seed, epoch), so a resumed run sees the
same batches as an uninterrupted one."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from torch.utils.data import DataLoader, Dataset, Sampler

from mathml.checks import check_nonnegative_int, check_positive_int


class EpochSeededSampler(Sampler[int]):
    """Shuffles ``range(n)`` with ``numpy.random.default_rng([seed, epoch])``.

    Call ``set_epoch(e)`` at the start of epoch e (Lightning does so for every training epoch);
    the order of epoch e then depends only on (seed, e). The order is drawn when the first index is
    requested, not when the iterator is created, so ``set_epoch`` may come in between.

    ``resume_from(e, start)`` makes the next pass over epoch e begin at position ``start`` of that
    epoch's order, for a run restored from a checkpoint taken mid-epoch: the order is rotated, so the
    length stays ``n`` (``DistributedSampler`` wrappers index into it) and the first ``n - start``
    indices are exactly those an uninterrupted run would have drawn next.

    Args:
        n: number of examples (>= 1).
        seed: int >= 0.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n = check_positive_int(n, "n")
        self.seed = check_nonnegative_int(seed, "seed")
        self.epoch = 0
        self._resume: tuple[int, int] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = check_nonnegative_int(epoch, "epoch")

    def resume_from(self, epoch: int, start: int) -> None:
        """Begin the next pass over epoch ``epoch`` at position ``start`` (0 <= start < n) of its order."""
        check_nonnegative_int(epoch, "epoch")
        check_nonnegative_int(start, "start")
        if start >= self.n:
            raise ValueError(f"start must be < n = {self.n}, got {start}")
        self._resume = (epoch, start)

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        if self._resume is not None:
            epoch, start = self._resume
            self._resume = None
            if epoch == self.epoch:
                order = np.roll(order, -start)
        yield from order.tolist()

    def __len__(self) -> int:
        return self.n


def check_loader_args(*, batch_size: int, seed: int, num_workers: int) -> None:
    """Raise ``ValueError`` naming the argument unless ``batch_size`` >= 1, ``seed`` >= 0 and
    ``num_workers`` >= 0 are ints (the arguments of ``seeded_loader``)."""
    check_positive_int(batch_size, "batch_size")
    check_nonnegative_int(seed, "seed")
    check_nonnegative_int(num_workers, "num_workers")


def seeded_loader(dataset: Dataset, *, batch_size: int, seed: int, num_workers: int, shuffle: bool) -> DataLoader:
    """A ``DataLoader`` over ``dataset`` (keeping the last partial batch); with ``shuffle`` its order
    comes from an ``EpochSeededSampler(len(dataset), seed)``, otherwise it is the dataset's order.
    Workers, when ``num_workers > 0``, persist across epochs."""
    check_loader_args(batch_size=batch_size, seed=seed, num_workers=num_workers)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSeededSampler(len(dataset), seed) if shuffle else None,
        drop_last=False,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
    )
