"""DataModules: metadata before setup, batch layout, seeded shuffling, argument checks, configs."""

from pathlib import Path

import lightning as L
import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mathml.data import DatasetNotFoundError, digits
from mathml_recipes.data import OfflineDigitsDataModule, Toy2DDataModule, TorchvisionDataModule

CONF = Path(__file__).resolve().parents[2] / "conf" / "data"


def _all_labels(loader):
    return torch.cat([batch[1] for batch in loader])


def test_metadata_is_known_before_setup(tmp_path):
    assert (OfflineDigitsDataModule("digits").data_shape, OfflineDigitsDataModule("digits").num_levels) == ((1, 8, 8), 17)
    assert OfflineDigitsDataModule("digits", binarize="threshold").num_levels == 2
    assert (OfflineDigitsDataModule("mnist_subset").data_shape, OfflineDigitsDataModule("mnist_subset").num_levels) == ((1, 28, 28), 256)
    assert TorchvisionDataModule("cifar10", str(tmp_path)).data_shape == (3, 32, 32)
    assert (Toy2DDataModule().data_shape, Toy2DDataModule().num_levels) == ((2,), None)


def test_digits_batches_and_split_sizes():
    dm = OfflineDigitsDataModule("digits", batch_size=100, seed=0)
    dm.setup("fit")
    dm.setup("test")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (100, 1, 8, 8) and y.shape == (100,)
    for split, loader in (("val", dm.val_dataloader()), ("test", dm.test_dataloader())):
        assert torch.equal(torch.cat([b[0] for b in loader]), digits(split))  # in order, nothing dropped
    assert _all_labels(dm.train_dataloader()).numel() == digits("train").shape[0]


def test_train_shuffling_is_seeded_per_epoch():
    def order(seed, epoch):
        dm = OfflineDigitsDataModule("digits", batch_size=64, seed=seed)
        dm.setup("fit")
        loader = dm.train_dataloader()
        loader.sampler.set_epoch(epoch)
        return torch.cat([b[0] for b in loader])

    assert torch.equal(order(0, 0), order(0, 0))
    assert torch.equal(order(0, 3), order(0, 3))
    assert not torch.equal(order(0, 0), order(0, 1))
    assert not torch.equal(order(0, 0), order(1, 0))
    assert torch.equal(order(0, 0).sort(0).values, order(0, 1).sort(0).values)  # same examples


class _Recorder(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.first = []

    def training_step(self, batch, batch_idx):
        if batch_idx == 0:
            self.first.append(batch[0].clone())
        return (self.w * batch[0].mean()).sum()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no `validation_step`")
@pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning")
def test_lightning_sets_the_sampler_epoch(tmp_path):
    module = _Recorder()
    trainer = L.Trainer(
        max_epochs=2, limit_train_batches=1, limit_val_batches=0, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path, accelerator="cpu",
    )
    trainer.fit(module, datamodule=Toy2DDataModule(n_train=64, n_val=8, n_test=8, batch_size=8))
    ref = Toy2DDataModule(n_train=64, n_val=8, n_test=8, batch_size=8)
    ref.setup("fit")
    loader = ref.train_dataloader()
    assert len(module.first) == 2 and not torch.equal(module.first[0], module.first[1])
    for epoch, seen in enumerate(module.first):
        loader.sampler.set_epoch(epoch)
        assert torch.equal(seen, next(iter(loader))[0])


def test_toy_splits_are_disjoint_draws():
    dm = Toy2DDataModule("checkerboard", n_train=50, n_val=20, n_test=10, batch_size=16, seed=2)
    dm.setup()
    batch = next(iter(dm.val_dataloader()))
    assert len(batch) == 1 and batch[0].shape == (16, 2)
    sizes = [len(dm.datasets[s]) for s in ("train", "val", "test")]
    assert sizes == [50, 20, 10]
    rows = torch.cat([dm.datasets[s].tensors[0] for s in ("train", "val", "test")])
    assert torch.unique(rows, dim=0).shape[0] == 80


def test_torchvision_module_fails_in_prepare_data(tmp_path):
    dm = TorchvisionDataModule("mnist", str(tmp_path / "absent"), batch_size=8)
    with pytest.raises(DatasetNotFoundError, match="MNIST/raw"):
        dm.prepare_data()
    with pytest.raises(DatasetNotFoundError):
        dm.setup("fit")
    assert not (tmp_path / "absent").exists()


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: OfflineDigitsDataModule("digits", batch_size=0), "batch_size"),
        (lambda: OfflineDigitsDataModule("digits", binarize="yes"), "binarize"),
        (lambda: OfflineDigitsDataModule("digits", val_fraction=1.0), "val_fraction"),
        (lambda: OfflineDigitsDataModule("digits", test_fraction=-0.1), "test_fraction"),
        (lambda: OfflineDigitsDataModule("mnist_subset", num_workers=-1), "num_workers"),
        (lambda: OfflineDigitsDataModule("digits", seed=-3), "seed"),
        (lambda: OfflineDigitsDataModule("svhn"), "dataset"),
        (lambda: TorchvisionDataModule("svhn", "."), "name"),
        (lambda: Toy2DDataModule("spiral"), "name"),
        (lambda: Toy2DDataModule(n_val=0), "n_val"),
    ],
)
def test_invalid_arguments_name_the_argument(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize(
    ("make", "key", "right"),
    [
        (lambda: OfflineDigitsDataModule("digits", data_shape=[1, 28, 28], num_levels=17), "data.data_shape",
         "data.data_shape=[1,8,8]"),
        (lambda: OfflineDigitsDataModule("mnist_subset", data_shape=[1, 28, 28], num_levels=17), "data.num_levels",
         "data.num_levels=256"),
        (lambda: OfflineDigitsDataModule("digits", binarize="bernoulli", data_shape=[1, 8, 8], num_levels=17),
         "data.num_levels", "data.num_levels=2"),
        (lambda: Toy2DDataModule(data_shape=[2], num_levels=256), "data.num_levels", "data.num_levels=null"),
        (lambda: TorchvisionDataModule("cifar10", ".", data_shape=[1, 32, 32], num_levels=256), "data.data_shape",
         "data.data_shape=[3,32,32]"),
    ],
)
def test_stated_metadata_is_checked_against_the_data(make, key, right):
    with pytest.raises(ValueError) as info:
        make()
    message = str(info.value)
    assert "\n" not in message and message.startswith(key) and message.endswith(right)


@pytest.mark.parametrize("path", sorted(CONF.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_data_config_states_its_metadata(path, tmp_path):
    cfg = OmegaConf.create({"seed": 0, "paths": {"data_dir": str(tmp_path)}, "data": OmegaConf.load(path)})
    dm = instantiate(cfg.data)
    assert list(dm.data_shape) == list(cfg.data.data_shape) and dm.num_levels == cfg.data.num_levels
    # torchvision's files are not on this machine: its stated values were checked against torchvision_info.
    if not isinstance(dm, TorchvisionDataModule):
        dm.setup("fit")
        x = next(iter(dm.train_dataloader()))[0]
        assert tuple(x.shape[1:]) == dm.data_shape
        if dm.num_levels is not None:  # every value is some k / (L - 1)
            k = x * (dm.num_levels - 1)
            torch.testing.assert_close(k, k.round(), rtol=0, atol=1e-4)
            assert k.round().unique().numel() <= dm.num_levels and k.max() <= dm.num_levels - 1
