"""mathml-train sweeps through hydra/launcher=slurm on a real SLURM controller.

The one-node cluster of scripts/start_slurm.sh (`.ci/run` starts it); without it these tests skip
and say why. `scontrol ping` decides at once (sbatch would take ~9 s to fail with the daemons down).

- One sweep of two identical short trainings (same seed) through the SLURM launcher. Job 0 gets the
  pre-emption signal (SIGUSR2, what SLURM sends `signal_delay_s` before the time limit, here via
  `scancel --signal=USR2`) mid-training, after its first checkpoint; mathml's SaveOnSignal saves,
  submitit requeues, the requeued job resumes from its own checkpoint in its own folder. Job 1 runs
  uninterrupted. Both finish; the CPU run is deterministic, so their final metrics and weights must be
  exactly equal.
- DDP under SLURM: trainer=ddp on 2 CPU processes, which srun starts as 2 SLURM tasks
  (tasks_per_node follows trainer.devices) and Lightning's SLURMEnvironment joins: one folder.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def _slurm_missing() -> str | None:
    """Why the SLURM tests cannot run here, or None."""
    if shutil.which("scontrol") is None or shutil.which("sbatch") is None:
        return "SLURM is not installed (bash scripts/start_slurm.sh installs and starts a one-node cluster)"
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return "`scontrol ping` did not answer within 10 s"
    if "is UP" not in ping.stdout:
        said = ((ping.stdout + ping.stderr).strip().splitlines() or ["no output"])[0]
        return f"no SLURM controller answers `scontrol ping` ({said}); run scripts/start_slurm.sh"
    sacct = subprocess.run(["sacct", "-o", "JobID,State,NodeList", "--parsable2", "-j", "1"], capture_output=True,
                           text=True, timeout=10)
    if sacct.returncode != 0:  # submitit would never notice a job that dies without a result
        return f"`sacct` fails ({sacct.stderr.strip()[:200]}); scripts/start_slurm.sh installs a stand-in"
    return None


_MISSING = _slurm_missing()
pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.skipif(_MISSING is not None, reason=str(_MISSING))]

# A small deterministic run (as tests/recipes/fault_injection.py): vae_digits, 4 batches an epoch,
# 3 epochs = 12 steps; the first checkpoint is written at the end of epoch 0 (step 4).
TINY = ["trainer.max_epochs=3", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2", "model.eval_k=8", "model.eval_chunk=4", "test_ckpt=last",
        "callbacks.progress_bar=null", "callbacks.image_grids=null"]
PAUSE_AT_STEP = 6  # mid-epoch 1: after the first checkpoint, before the end


def _env() -> dict[str, str]:
    # sbatch passes the environment on to the job (submitit's default --export): one thread per job,
    # this folder importable for the probe callback, wandb kept local.
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    env.pop("SLURM_RESTART_COUNT", None)
    return env


def _sweep(cwd: Path, *overrides: str) -> subprocess.Popen:
    """`mathml-train -m hydra/launcher=slurm ...` from ``cwd`` (its multirun/ folder lands there)."""
    return subprocess.Popen([sys.executable, "-m", "mathml_scripts.train", "-m", "hydra/launcher=slurm", *overrides],
                            cwd=cwd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _only_sweep_dir(cwd: Path) -> Path:
    """The one sweep folder under cwd/multirun/<date>/, named <time>_<uid>."""
    sweeps = list((cwd / "multirun").glob("*/*"))
    assert len(sweeps) == 1, sweeps
    assert re.fullmatch(r"\d\d-\d\d-\d\d_[0-9a-f]{6}", sweeps[0].name), sweeps[0]
    return sweeps[0]


def _run_preempted_sweep(cwd: Path) -> dict:
    """Run the two-job sweep, signal job 0 once it pauses at PAUSE_AT_STEP, wait for the end."""
    probe = cwd / "probe"
    proc = _sweep(cwd, "seed=3", *TINY, "+callbacks.probe._target_=slurm_probe.Probe",
                  f"+callbacks.probe.log_dir={probe}", f"+callbacks.probe.pause_at_step={PAUSE_AT_STEP},null")
    job, deadline = None, time.monotonic() + 180
    while job is None and time.monotonic() < deadline and proc.poll() is None:
        paused = list(probe.glob("paused.*"))
        job = paused[0].name.split(".", 1)[1] if paused else None
        time.sleep(0.1)
    if job is not None:
        subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
    try:
        out, _ = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    show = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout if job else ""
    return {"cwd": cwd, "probe": probe, "job": job, "returncode": proc.returncode, "out": out, "show": show}


def test_a_sweep_through_slurm_whose_preempted_job_is_requeued_and_ends_as_if_uninterrupted(tmp_path):
    # One sweep serves both checks (one test, so pytest-xdist never runs the sweep twice).
    s = _run_preempted_sweep(tmp_path)
    assert s["job"] is not None, "job 0 never reached the pause step:\n" + s["out"][-4000:]
    assert s["returncode"] == 0, s["out"][-4000:]

    # (a) Two trainings ran as SLURM jobs into one sweep folder, one subfolder each.
    sweep = _only_sweep_dir(s["cwd"])
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == ["0", "1", "multirun.yaml"]
    for num in (0, 1):
        job_dir = sweep / str(num)
        summary = json.loads((job_dir / "metrics.json").read_text())
        assert summary["seed"] == 3 and 0 < summary["metrics"]["test/nll_nats"] < 1e4
        # Each job ran in its own sweep subfolder: the ${mathml.uid:} suffix was resolved once, by the
        # launching process, and reached the jobs through the config cache that Hydra copies.
        hydra_cfg = yaml.safe_load((job_dir / ".hydra" / "hydra.yaml").read_text())["hydra"]
        assert Path(hydra_cfg["runtime"]["output_dir"]) == job_dir.resolve()
        assert hydra_cfg["launcher"]["_target_"].endswith("SlurmLauncher")
    # submitit's files live inside the sweep folder: the array job's, and one folder per array task.
    array = s["job"].split("_")[0]
    assert sorted(p.name for p in (sweep / ".submitit").iterdir() if p.is_dir()) == [array, f"{array}_0", f"{array}_1"]

    # (b) Job 0 was pre-empted and requeued once by SLURM ...
    assert "Restarts=1" in s["show"], s["show"]
    # ... the probe logged the first training step of each attempt: job 0 ran twice (restart count 0,
    # then 1, starting after the step its pre-emption checkpoint holds), job 1 once ...
    starts = {f.name.split(".", 1)[1]: [line.split() for line in f.read_text().splitlines()]
              for f in s["probe"].glob("first_step.*")}
    (a0, a1), (b0,) = starts[f"{array}_0"], starts[f"{array}_1"]
    assert (a0[2], a1[2], b0[2]) == ("0", "1", "0") and int(a1[3]) > PAUSE_AT_STEP
    # ... and the requeued job resumed from its own checkpoint, in its own folder (same <uid>) ...
    log = (sweep / "0" / "train.log").read_text()
    assert "resuming from" in log and str(sweep / "0" / "checkpoints") in log, log[-3000:]
    # ... to end exactly where the uninterrupted job ends (deterministic CPU training).
    m0, m1 = (json.loads((sweep / n / "metrics.json").read_text())["metrics"] for n in ("0", "1"))
    assert m0 == m1
    c0, c1 = (torch.load(sweep / n / "checkpoints" / "last.ckpt", weights_only=True) for n in ("0", "1"))
    assert c0["global_step"] == c1["global_step"] == 12
    assert c0["state_dict"].keys() == c1["state_dict"].keys()
    assert all(torch.equal(c0["state_dict"][k], c1["state_dict"][k]) for k in c1["state_dict"])


def test_ddp_under_slurm_two_tasks_one_folder(tmp_path):
    # tasks_per_node follows trainer.devices=2: srun starts 2 tasks, Lightning's SLURMEnvironment makes them
    # the 2 DDP ranks (it launches no process itself).
    proc = _sweep(tmp_path, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "trainer.max_epochs=1",
                  "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1",
                  "model.eval_k=8", "model.eval_chunk=4", "callbacks.progress_bar=null")
    out, _ = proc.communicate(timeout=240)
    assert proc.returncode == 0, out[-4000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multirun"]  # no stray outputs/ of a rank
    sweep = _only_sweep_dir(tmp_path)
    assert sorted(p.name for p in sweep.iterdir() if not p.name.startswith(".")) == ["0", "multirun.yaml"]
    (submitted,) = [p for p in (sweep / ".submitit").iterdir() if p.is_dir()]
    assert "--ntasks-per-node=2" in next(submitted.glob("*_submission.sh")).read_text()
    assert sorted(p.name.split("_")[-2] for p in submitted.glob("*_result.pkl")) == ["0", "1"]  # both tasks
    log = (sweep / "0" / "train.log").read_text()
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log
    summary = json.loads((sweep / "0" / "metrics.json").read_text())
    assert 0 < summary["metrics"]["test/nll_nats"] < 1e4
