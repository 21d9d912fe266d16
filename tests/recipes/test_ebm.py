"""EBM recipe: configs compose and build for both objectives, training from the command line writes
its files, resume is bit-exact (the replay buffer travels in the checkpoint), and a short run beats a
fixed sliced-Wasserstein threshold."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from mathml_recipes.ebm import EBMModule

ROOT = Path(__file__).resolve().parents[2]
TINY = ["experiment=ebm_toy2d", "data.batches_per_epoch=3", "data.batch_size=32", "data.n_val=32",
        "data.n_test=64", "model.energy.hidden=[16,16]", "ebm_objective.langevin_steps=3",
        "ebm_objective.buffer.capacity=100", "model.sample_steps=5", "model.sw_projections=20",
        "callbacks.diffusion_samples.n=50", "callbacks.diffusion_samples.every_n_epochs=1",
        "trainer.log_every_n_steps=1", "callbacks.progress_bar=null"]


@pytest.mark.parametrize("objective", ["cd", "ssm"])
def test_experiments_build_and_their_losses_are_finite(objective, compose_train):
    for experiment in ("ebm_toy2d", "ebm_digits"):
        cfg = compose_train(f"experiment={experiment}", f"ebm_objective={objective}")
        OmegaConf.resolve(cfg)
        dm = instantiate(cfg.data)
        dm.setup("fit")
        model = instantiate(cfg.model)
        assert isinstance(model, EBMModule) and model.data_shape == tuple(dm.data_shape)
        x = next(iter(dm.train_dataloader()))[0][:8]
        terms = model._terms(x, torch.Generator().manual_seed(0))
        assert terms["loss"].shape == (8,) and torch.isfinite(terms["loss"]).all()
        terms["loss"].mean().backward()
        # Every weight gets a finite gradient (score matching sees only -grad E, so the output bias,
        # an additive constant of E, gets none).
        grads = {n: p.grad for n, p in model.energy.named_parameters()}
        assert all(g is not None and torch.isfinite(g).all() for n, g in grads.items() if n.endswith("weight"))
        assert model.sample(4, generator=torch.Generator().manual_seed(1)).shape == (4, *dm.data_shape)


def _run(args, timeout=900):
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_toy2d_trains_from_the_command_line_and_writes_its_files(tmp_path):
    run = tmp_path / "run"
    r = _run(["-m", "mathml_scripts.train", f"hydra.run.dir={run}", *TINY, "trainer.max_epochs=2"])
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    for k in ("test/sliced_wasserstein", "test/mmd2", "test/ksd"):
        assert k in metrics and torch.isfinite(torch.tensor(metrics[k])), k
    for f in ("checkpoints/last.ckpt", "samples.png", "samples/epoch_001.png"):
        assert (run / f).is_file(), f
    csv = (run / "logs" / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    assert {"train/loss", "val/loss", "train/cd", "val/energy_neg"} <= set(csv)
    state = torch.load(run / "checkpoints/last.ckpt", weights_only=True)["state_dict"]
    assert state["objective.buffer.samples"].shape == (100, 2) and bool(state["objective.buffer.filled"])


@pytest.mark.slow
def test_resume_matches_an_uninterrupted_run(tmp_path, compose_train):
    from mathml_scripts.train import train

    common = [*TINY, "test_ckpt=last"]
    full = train(compose_train("trainer.max_epochs=4", *common, out="full"))
    train(compose_train("trainer.max_epochs=2", *common, out="part"))
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    resumed = train(compose_train("trainer.max_epochs=4", f"ckpt_path={last}", *common, out="resumed"))
    for k in ("test/sliced_wasserstein", "test/mmd2", "test/ksd"):
        assert resumed[k] == full[k], (k, resumed[k], full[k])
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert "objective.buffer.samples" in a
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_toy2d_beats_a_fixed_sliced_wasserstein_threshold(tmp_path):
    """200 steps of sliced score matching from the command line. Measured with exactly these settings:
    SW₂ = 0.367 trained, 1.147 untrained (one step; the Gaussian reference alone), and 0.234 for exact
    draws of the mixture vs the test set. Threshold 0.7: about twice the trained value and well below
    the untrained one (fixed seed 0, so the run is deterministic)."""
    run = tmp_path / "run"
    r = _run(["-m", "mathml_scripts.train", f"hydra.run.dir={run}", "experiment=ebm_toy2d", "ebm_objective=ssm",
              "trainer.max_epochs=2", "data.batches_per_epoch=100", "data.n_test=1000", "model.sample_steps=300",
              "model.sw_projections=200", "callbacks.progress_bar=null"])
    assert r.returncode == 0, r.stderr[-3000:]
    sw = json.loads((run / "metrics.json").read_text())["metrics"]["test/sliced_wasserstein"]
    assert sw < 0.7, sw
