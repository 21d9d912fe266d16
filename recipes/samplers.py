"""Resume-exact shuffling: the permutation of epoch e depends only on (seed, e)."""

from __future__ import annotations

from collections.abc import Iterator, Sized

import torch
from torch.utils.data import Sampler


class EpochSeededRandomSampler(Sampler[int]):
    """Random permutation drawn from ``torch.Generator().manual_seed(seed + epoch)``.

    A generator created once and advanced epoch after epoch cannot be restored on resume; this
    sampler needs no state beyond the epoch number, which Lightning sets through ``set_epoch``
    before every training epoch, so a resumed run sees the same batches as an uninterrupted one.
    """

    def __init__(self, data_source: Sized, seed: int = 0) -> None:
        self.n = len(data_source)
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n
