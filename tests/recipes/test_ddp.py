"""DDP on two CPU processes (gloo): one run folder, rank-0 outputs, identical weights on both ranks,
test metrics gathered over the whole test set, and local multiruns whose ranks stay in their job.

Lightning's DDP re-launches the command for rank 1, so every run here is a subprocess with a
timeout (ENV.md gotcha 2). It runs in ``tmp_path`` as its working directory, so a rank that wrote
anywhere but its run folder (a stray ``outputs/`` or ``multirun/`` folder) would show up there.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = "tests.recipes.ddp_probe.ParameterHash"
# A small diffusion_toy2d run: 101 test points do not divide by 2 ranks (Lightning's own sampler would
# evaluate one of them twice) and make an uneven last batch on each rank (test batch 4 x 8 = 32).
TOY = ["experiment=diffusion_toy2d", "trainer.max_epochs=1", "data.batches_per_epoch=6", "data.batch_size=8",
       "data.n_val=64", "data.n_test=101", "model.network.width=32", "callbacks.diffusion_samples.n=64",
       "callbacks.progress_bar=null"]
DDP = ["trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2"]


def _cli(cwd: Path, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "mathml_scripts.train", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_eval_sampler_gives_every_point_to_exactly_one_rank():
    from types import SimpleNamespace

    import torch
    from torch.utils.data import DistributedSampler, TensorDataset

    from mathml_recipes.ddp import eval_sampler

    data = TensorDataset(torch.arange(101))
    assert eval_sampler(data, None) is None and eval_sampler(data, SimpleNamespace(world_size=1, global_rank=0)) is None
    parts = [list(eval_sampler(data, SimpleNamespace(world_size=2, global_rank=r))) for r in (0, 1)]
    assert sorted(parts[0] + parts[1]) == list(range(101)) and [len(p) for p in parts] == [51, 50]
    # What Lightning injects otherwise (DistributedSampler, drop_last=False): point 0 evaluated twice.
    padded = [list(DistributedSampler(data, num_replicas=2, rank=r, shuffle=False)) for r in (0, 1)]
    assert len(padded[0] + padded[1]) == 102 and (padded[0] + padded[1]).count(0) == 2
    with pytest.raises(ValueError, match="1 points cannot be split over 2 processes"):
        eval_sampler(TensorDataset(torch.arange(1)), SimpleNamespace(world_size=2, global_rank=0))


def _hashes(folder: Path) -> list[str]:
    return [p.read_text().split()[0] for p in sorted(folder.glob("rank*.sha256"))]


@pytest.mark.slow
def test_ddp_run_keeps_one_folder_identical_weights_and_gathers_test_metrics(tmp_path, compose_train):
    r = _cli(tmp_path, "hydra.run.dir=run", *TOY, *DDP, f"+callbacks.probe._target_={PROBE}",
             f"+callbacks.probe.out_dir={tmp_path / 'probe'}")
    assert r.returncode == 0, r.stderr[-3000:]
    # One folder, one metrics.json, rank 0's outputs only (rank 1 leaves just its Hydra log file).
    assert sorted(p.name for p in tmp_path.iterdir()) == ["probe", "run"]
    run = tmp_path / "run"
    assert [p.relative_to(tmp_path) for p in tmp_path.rglob("metrics.json")] == [Path("run/metrics.json")]
    assert sorted(p.name for p in run.glob("*.log")) == ["train.log", "train_ddp_process_1.log"]
    assert not list(run.rglob("*rank*")) and (run / "samples.png").is_file()
    # DDP averaged the gradients of different data (each rank draws its own batches): same weights.
    hashes = _hashes(tmp_path / "probe")
    assert len(hashes) == 2 and hashes[0] == hashes[1]

    # One process evaluates the same checkpoint (last.ckpt, what test_ckpt=last used) on the whole test set.
    ddp = json.loads((run / "metrics.json").read_text())["metrics"]
    cfg = compose_train(*TOY, out="reference")
    from hydra.utils import instantiate

    model, dm = instantiate(cfg.model), instantiate(cfg.data)
    trainer = L.Trainer(accelerator="cpu", devices=1, max_epochs=1, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, datamodule=dm, ckpt_path=run / "checkpoints" / "last.ckpt")  # restores weights and step
    trainer.test(model, datamodule=dm, verbose=False)
    one = {k: float(v) for k, v in trainer.callback_metrics.items()}
    # −log p(x) of the data needs no solver: only the summation order differs (float32 means of
    # 101 values, a few ulps). With one point counted twice (padding) it would move by ~|Δ|/102 ≈ 1e-2.
    assert ddp["test/nll_exact_nats"] == pytest.approx(one["test/nll_exact_nats"], rel=1e-6)
    # The model's NLL comes from an adaptive ODE solve per batch; the step sizes depend on the batch
    # (rank 0's batches hold points 0, 2, 4, ..., one process's 0, 1, 2, ...), so each point's value
    # may move within the solver's error control, rtol·|log p| + atol per step (nll_rtol = nll_atol
    # = 1e-5); 10 x that bounds the accumulation over the steps (measured difference: 6e-6 nats).
    tol = 10 * (cfg.model.nll_rtol * abs(one["test/nll_nats"]) + cfg.model.nll_atol)
    for k in ("test/nll_nats", "test/nll_gap_nats"):
        assert abs(ddp[k] - one[k]) <= tol, (k, ddp[k], one[k], tol)
    assert ddp["test/nll_gap_se"] == pytest.approx(one["test/nll_gap_se"], rel=1e-3)
    # Sample metrics: rank 0 draws as one process would and compares with every test point.
    assert ddp["test/sliced_wasserstein"] == pytest.approx(one["test/sliced_wasserstein"], rel=1e-5)
    assert ddp["test/mmd2"] == pytest.approx(one["test/mmd2"], rel=1e-4)


@pytest.mark.slow
def test_local_multirun_with_ddp_gives_exactly_the_sweeps_job_folders(tmp_path):
    # Without mathml_recipes.ddp.pin_ddp_relaunch rank 1 re-ran the whole sweep and left a second
    # multirun/<date>/<time> folder with its own job folders.
    r = _cli(tmp_path, "-m", "seed=0,1", *TOY, *DDP, "model.sample_metrics=false",
             f"+callbacks.probe._target_={PROBE}", f"+callbacks.probe.out_dir={tmp_path / 'probe'}/seed_${{seed}}",
             timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    assert len([p for p in tmp_path.iterdir() if p.name != "probe"]) == 1, sorted(tmp_path.iterdir())
    sweeps = [p.parent for p in tmp_path.rglob("multirun.yaml")]
    assert len(sweeps) == 1, sweeps
    jobs = sorted(p.parent for p in sweeps[0].rglob("metrics.json"))
    assert len(jobs) == 2 and len(list(tmp_path.rglob("metrics.json"))) == 2
    assert sorted(json.loads((j / "metrics.json").read_text())["seed"] for j in jobs) == [0, 1]
    for j in jobs:  # each job's two ranks logged in the job's own folder
        assert sorted(p.name for p in j.glob("train_ddp_process_*.log")) == ["train_ddp_process_1.log"]
    # The second job rendezvoused with its own rank 1 (a fresh process group), not the first job's.
    for seed in (0, 1):
        hashes = _hashes(tmp_path / "probe" / f"seed_{seed}")
        assert len(hashes) == 2 and hashes[0] == hashes[1], seed
    assert _hashes(tmp_path / "probe" / "seed_0") != _hashes(tmp_path / "probe" / "seed_1")
