"""Image diffusion configs: the U-Net experiments build for VP, VE and EDM with class labels, the
sizes of diffusion_mnist / diffusion_cifar10 instantiate and run, the GPU trainer's switches, and
diffusion_mnist_subset trains from the command line and writes its sample grid."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mathml_recipes.diffusion import DiffusionModule
from mathml_recipes.performance import PerformanceFlags, trainer

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["model.network.base_channels=8", "model.network.num_heads=1", "model.network.norm_groups=4"]
FORMULATIONS = {
    "vp": ["sde=vp", "score_matching=dsm"],
    "ve": ["sde=ve", "sde.sigma_max=30.0", "score_matching=dsm"],
    "edm": ["sde=edm", "score_matching=dsm_edm", "model.parametrization._target_=mathml.objectives.EDMPreconditioning"],
}


def _randomise_output(model: DiffusionModule) -> None:
    # re-draw the zero-initialised convolutions (block outputs, attention projections, the output layer)
    torch.manual_seed(0)
    for m in model.score_model.modules():
        if isinstance(m, torch.nn.Conv2d) and m.weight.abs().max() == 0:
            m.reset_parameters()


@pytest.mark.parametrize("formulation", sorted(FORMULATIONS))
def test_mnist_subset_experiment_trains_and_samples_with_labels(formulation, compose_train):
    cfg = compose_train("experiment=diffusion_mnist_subset", *SMALL, *FORMULATIONS[formulation], "sampler.steps=2")
    OmegaConf.resolve(cfg)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    model = instantiate(cfg.model)
    assert isinstance(model, DiffusionModule) and model.data_shape == tuple(dm.data_shape) == (1, 28, 28)
    assert model.score_model.net.num_classes == 10 == model.hparams.num_classes
    _randomise_output(model)  # a live output layer, so gradients and samples depend on every part
    model.ema.module.load_state_dict(model.score_model.state_dict())
    x, y = next(iter(dm.train_dataloader()))
    x, y = x[:8], y[:8]
    terms = model._terms(model.score_model, x, torch.Generator().manual_seed(0), y)
    assert terms["loss"].shape == (8,) and torch.isfinite(terms["loss"]).all()
    terms["loss"].mean().backward()  # the class embedding is trained through the dropped-out labels
    assert model.score_model.net.class_embedding.weight.grad.abs().sum() > 0
    g = lambda: torch.Generator().manual_seed(1)  # noqa: E731
    s = model.sample(4, generator=g())
    assert s.shape == (4, 1, 28, 28) and torch.isfinite(s).all()
    # the labels steer the samples (guidance scale 2 by default); guidance scale 0 ignores them
    other = model.sample(4, generator=g(), labels=torch.tensor([5, 6, 7, 8]))
    assert (other - s).abs().max() > 1e-4
    u0 = model.sample(4, generator=g(), guidance_scale=0.0)
    u1 = model.sample(4, generator=g(), guidance_scale=0.0, labels=torch.tensor([5, 6, 7, 8]))
    assert torch.equal(u0, u1)


@pytest.mark.parametrize("overrides", [
    ["model=diffusion_unet"],  # default data: 8x8 digits
    ["model=diffusion_unet", "model.network.channel_multipliers=[1,2,2]", "model.network.attention_resolutions=[8,2]"],
    ["experiment=diffusion_mnist"],
    ["experiment=diffusion_mnist", "model.network.channel_multipliers=[1,2]", "model.network.attention_resolutions=[]"],
    ["experiment=diffusion_cifar10"],
    ["experiment=diffusion_cifar10", "model.network.channel_multipliers=[1,2,2]",
     "model.network.attention_resolutions=[16,8]", "model.network.num_res_blocks=1"],
], ids=["unet-digits", "unet-digits-3-levels", "mnist", "mnist-2-levels", "cifar10", "cifar10-3-levels"])
def test_config_sweep_instantiates_and_runs_a_forward_pass(overrides, compose_train):
    # The torchvision experiments are sized for a GPU; here their architecture at 8 base channels.
    cfg = compose_train(*overrides, *SMALL)
    OmegaConf.resolve(cfg)
    model = instantiate(cfg.model)
    shape = tuple(cfg.data.data_shape)
    levels = cfg.data.num_levels
    x = torch.randint(0, levels, (2, *shape), generator=torch.Generator().manual_seed(0)) / (levels - 1)
    loss = model._terms(model.score_model, x, torch.Generator().manual_seed(0),
                        torch.tensor([1, 2]) if model.hparams.num_classes else None)["loss"]
    assert loss.shape == (2,) and torch.isfinite(loss).all()


def test_gpu_trainer_config_states_bf16_and_the_switches(compose_train):
    cfg = compose_train("experiment=diffusion_cifar10", "trainer=gpu")
    assert cfg.trainer.precision == "bf16-mixed" and cfg.trainer.tf32 is True
    assert cfg.trainer._target_ == "mathml_recipes.performance.trainer"
    # the same factory on the CPU: the flags callback is appended to the given callbacks
    t = trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                channels_last=True, callbacks=[])
    flags = [c for c in t.callbacks if isinstance(c, PerformanceFlags)]
    assert len(flags) == 1 and flags[0].channels_last and not flags[0].compile
    with pytest.raises(TypeError, match="trainer.compile must be a bool"):
        PerformanceFlags(compile="yes")


def test_performance_flags_set_tf32_and_channels_last():
    model = torch.nn.Conv2d(1, 4, 3)
    pl = torch.nn.Module()
    pl.add_module("score_model", model)
    before = torch.get_float32_matmul_precision()
    try:
        PerformanceFlags(tf32=True, channels_last=True).setup(None, pl, "fit")
        assert torch.get_float32_matmul_precision() == "high"
        assert model.weight.is_contiguous(memory_format=torch.channels_last)
    finally:
        torch.set_float32_matmul_precision(before)


@pytest.mark.slow
def test_mnist_subset_trains_from_the_command_line_and_writes_a_sample_grid(tmp_path):
    run = tmp_path / "run"
    args = ["-m", "mathml_scripts.train", "experiment=diffusion_mnist_subset", f"hydra.run.dir={run}", *SMALL,
            "trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1",
            "trainer.check_val_every_n_epoch=1", "data.batch_size=8", "sampler.steps=2",
            "callbacks.diffusion_samples.n=10", "callbacks.diffusion_samples.every_n_epochs=1",
            "model.nll_rtol=0.1", "model.nll_atol=0.1", "callbacks.progress_bar=null"]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trainable parameters" in (run / "train.log").read_text()
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    assert 0 < metrics["test/bits_per_dim"] < 64 and "test/nll_gap_nats" not in metrics  # labels are not densities
    for f in ("checkpoints/last.ckpt", "samples/epoch_000.png", "samples.png"):
        assert (run / f).is_file(), f
