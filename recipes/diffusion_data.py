"""Data for diffusion recipes on known 2-D distributions: fresh draws every training step.

When the data distribution is known (a 2-D toy set, or the ring of Gaussians whose density is
exact), training on a fixed finite sample only adds overfitting noise. ``FreshToy2DDataModule``
instead draws every training batch anew, from a generator keyed by (seed, rank, epoch, batch), so
a resumed run sees exactly the batches an uninterrupted run would. Validation and test sets are
fixed draws made once. For the Gaussian mixture each test batch also carries the exact
log-density of its points, ``(x, log p(x))``, so the recipe reports the exact NLL gap.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from mathml import data as mdata
from mathml.distributions import GaussianMixture

from .ddp import eval_sampler

MIXTURE = "gaussian_mixture_2d"
NAMES = (MIXTURE, *(n for n in mdata.TOY_2D_SETS if n != MIXTURE))


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"data.{name} must be an int >= 1, got {value!r}")
    return value


def ring_mixture(n_modes: int = 8, radius: float = 4.0, std: float = 0.3) -> GaussianMixture:
    """Equal-weight mixture of ``n_modes`` isotropic Gaussians N(μ_k, std² I₂) with
    μ_k = radius (cos 2πk/K, sin 2πk/K): the "8 Gaussians" of FFJORD (Grathwohl et al. 2019, Fig. 2)
    for K = 8; radius 4, std 0.3 is the mixture of issue 6's sampler benchmark."""
    _positive_int(n_modes, "n_modes")
    for name, v in (("radius", radius), ("std", std)):
        if not v > 0:
            raise ValueError(f"data.{name} must be > 0, got {v!r}")
    angle = 2 * math.pi * torch.arange(n_modes, dtype=torch.float64) / n_modes
    means = radius * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    return GaussianMixture(torch.full((n_modes,), 1.0 / n_modes, dtype=torch.float64), means,
                           torch.full((n_modes,), std**2, dtype=torch.float64))


class _KeySampler(Sampler):
    """Yields (epoch, i) for i < n; Lightning calls ``set_epoch`` at the start of every epoch."""

    def __init__(self, n: int) -> None:
        self.n, self.epoch = n, 0
        self._start: dict[int, int] = {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def resume_from(self, epoch: int, start: int) -> None:
        """Begin the next pass over ``epoch`` at key ``start`` (rotated, as ``EpochSeededSampler.resume_from``)."""
        self._start = {int(epoch): int(start) % self.n}

    def __iter__(self):
        # A generator: its body, and so the read of self.epoch, runs at the first draw. On resume
        # Lightning creates the iterator *before* it calls set_epoch (seen with Lightning 2.6.6),
        # so an eager read here would replay the previous epoch's keys.
        epoch = self.epoch
        start = self._start.pop(epoch, 0)
        self._start = {}
        for i in range(self.n):
            yield (epoch, (start + i) % self.n)

    def __len__(self) -> int:
        return self.n


class _FreshBatches(Dataset):
    """Item (epoch, i) is a whole batch drawn with a generator keyed by (seed, rank, epoch, i)."""

    def __init__(self, draw, batch_size: int, seed: int, rank: int) -> None:
        self.draw, self.batch_size, self.seed, self.rank = draw, batch_size, seed, rank

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor]:
        epoch, i = key
        k = ((self.seed * 1_000_003 + self.rank) * 1_000_003 + epoch) * 1_000_000_007 + i
        g = torch.Generator().manual_seed(k % (2**63 - 1))
        return (self.draw(self.batch_size, g),)


class FreshToy2DDataModule(L.LightningDataModule):
    """A 2-D toy distribution, training on fresh draws; batches ``(x,)`` with x: (B, 2), and on the
    test split ``(x, log p(x))`` when the density is exact (the Gaussian mixture).

    Args:
        name: ``"gaussian_mixture_2d"`` (``ring_mixture(n_modes, radius, std)``, exact density) or
            another ``mathml.data.TOY_2D_SETS`` name (two_moons, swiss_roll_2d, checkerboard).
        batch_size: points per training batch.
        batches_per_epoch: training batches per epoch (each freshly drawn).
        n_val, n_test: sizes of the fixed validation and test sets.
        seed: keys every draw.
        n_modes, radius, std: the mixture's parameters (used for ``gaussian_mixture_2d`` only).
        data_shape, num_levels: the values the config states, checked ([2] and None).
    """

    has_labels = False

    def __init__(self, name: str = MIXTURE, batch_size: int = 512, batches_per_epoch: int = 500, n_val: int = 2000,
                 n_test: int = 5000, seed: int = 0, n_modes: int = 8, radius: float = 4.0, std: float = 0.3,
                 data_shape: Sequence[int] | None = None, num_levels: int | None = None) -> None:
        super().__init__()
        if name not in NAMES:
            raise ValueError(f"data.name must be one of {', '.join(NAMES)}; got {name!r}")
        mdata.check_loader_args(batch_size=batch_size, seed=seed, num_workers=0)
        self.batch_size, self.seed = batch_size, seed
        self.batches_per_epoch = _positive_int(batches_per_epoch, "batches_per_epoch")
        self.n_val = _positive_int(n_val, "n_val")
        self.n_test = _positive_int(n_test, "n_test")
        if data_shape is not None and [int(s) for s in data_shape] != [2]:
            raise ValueError(f"data.data_shape={list(data_shape)} does not match 2-D toy data; set data.data_shape=[2]")
        if num_levels is not None:
            raise ValueError(f"data.num_levels={num_levels} does not match continuous 2-D data; set data.num_levels=null")
        self.name = name
        self.data_shape, self.num_levels = (2,), None
        self.mixture = ring_mixture(n_modes, radius, std) if name == MIXTURE else None
        self.datasets: dict[str, TensorDataset] = {}

    def _draw(self, n: int, generator: torch.Generator) -> torch.Tensor:
        if self.mixture is not None:
            return self.mixture.sample(n, generator=generator).to(torch.float32)
        return mdata.toy_2d(self.name, n, generator=generator)

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:
            return
        # Fixed evaluation sets from their own stream (never equal to a training key).
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + 999_983)
        val, test = self._draw(self.n_val, g), self._draw(self.n_test, g)
        self.datasets["val"] = TensorDataset(val)
        if self.mixture is not None:
            log_p = self.mixture.log_prob(test.to(torch.float64))
            self.datasets["test"] = TensorDataset(test, log_p)
        else:
            self.datasets["test"] = TensorDataset(test)

    def train_dataloader(self) -> DataLoader:
        rank = self.trainer.global_rank if self.trainer is not None else 0
        return DataLoader(_FreshBatches(self._draw, self.batch_size, self.seed, rank), batch_size=None,
                          sampler=_KeySampler(self.batches_per_epoch))

    def _fixed(self, split: str) -> DataLoader:
        self.setup()
        # Under DDP, eval_sampler splits the set so that every point is evaluated exactly once.
        return DataLoader(self.datasets[split], batch_size=self.batch_size * 4,
                          sampler=eval_sampler(self.datasets[split], self.trainer))

    def val_dataloader(self) -> DataLoader:
        return self._fixed("val")

    def test_dataloader(self) -> DataLoader:
        return self._fixed("test")
