"""hydra/launcher=local: a sweep's jobs as submitit processes on this machine (no SLURM needed)."""

import json
import os
import re
import subprocess
import sys

import pytest

FAST = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1",
        "+trainer.limit_test_batches=1", "model.eval_k=8", "model.eval_chunk=4", "callbacks.progress_bar=null",
        "callbacks.image_grids=null"]


@pytest.mark.slow  # one short training in a submitit subprocess: ~10-20 s
def test_a_sweep_through_the_local_submitit_launcher(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline"}
    r = subprocess.run([sys.executable, "-m", "mathml_scripts.train", "-m", "hydra/launcher=local", "seed=5", *FAST],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    (sweep,) = (tmp_path / "multirun").glob("*/*")
    assert re.fullmatch(r"\d\d-\d\d-\d\d_[0-9a-f]{6}", sweep.name)
    summary = json.loads((sweep / "0" / "metrics.json").read_text())
    assert summary["seed"] == 5 and 0 < summary["metrics"]["test/nll_nats"] < 1e4
    # The job ran as a submitit process (its pickles and logs are in the sweep folder), not in the launcher.
    # (submitit's local executor names a job's folder by its process id; it also leaves the "%j" template folder.)
    (job,) = [p for p in (sweep / ".submitit").iterdir() if p.is_dir() and p.name.isdigit()]
    assert list(job.glob("*_result.pkl")) and "Job completed successfully" in next(job.glob("*_log.out")).read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["multirun"]
