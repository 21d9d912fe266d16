"""Latency on the local one-node SLURM controller (scripts/start_slurm.sh): from `sbatch` to the
first training step of a one-node job, and from the pre-emption signal to the requeued job's first
training step.

Each repetition launches one real job, `mathml-train -m hydra/launcher=slurm` with the small
deterministic vae_digits run of tests/cluster/test_slurm.py (4 batches an epoch, 3 epochs), plus the
test probe callback (tests/cluster/slurm_probe.py, on PYTHONPATH: no benchmark code in the library),
which appends the wall time of the first training step of every attempt of the job, and pauses at
step 6 (after the first checkpoint) until the job receives SIGUSR2. This script then sends
`scancel --signal=USR2 <job>` (what SLURM sends `signal_delay_s` before a time limit); mathml's
SaveOnSignal saves at the end of the batch, submitit requeues, the requeued job resumes.

Timestamps, all on this machine's clock:
- t_sbatch: the modification time of submitit's submission script (written just before `sbatch`);
- t_start / t_restart: submitit's "Starting with JobEnvironment" log line of each attempt (the job's
  Python process is up and has unpickled the job);
- t_first / t_first_again: the probe's first-training-step times of each attempt;
- t_signal: just before `scancel --signal=USR2`; t_requeue: submitit's "Caught signal" log line,
  which SaveOnSignal triggers after saving the checkpoint (submitit then runs `scontrol requeue`).

    .venv/bin/python benchmarks/slurm_latency.py              # 3 repetitions -> benchmarks/results/slurm_latency.json
    .venv/bin/python benchmarks/slurm_latency.py --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE_DIR = ROOT / "tests" / "cluster"
TINY = ["trainer.max_epochs=3", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2", "model.eval_k=8", "model.eval_chunk=4", "test_ckpt=last",
        "callbacks.progress_bar=null", "callbacks.image_grids=null"]
PAUSE_AT_STEP = 6
_SUBMITIT_TIME = re.compile(r"submitit \w+ \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})\) - (.*)")


def _submitit_events(log: Path) -> list[tuple[float, str]]:
    """(unix time, message) of submitit's own log lines in a job's stderr log."""
    events = []
    for line in log.read_text().splitlines():
        m = _SUBMITIT_TIME.match(line)
        if m:
            events.append((datetime.strptime(m[1], "%Y-%m-%d %H:%M:%S,%f").timestamp(), m[2]))
    return events


def one_rep(work: Path) -> dict:
    probe = work / "probe"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline",
           "PYTHONPATH": os.pathsep.join([str(PROBE_DIR), os.environ.get("PYTHONPATH", "")])}
    env.pop("SLURM_RESTART_COUNT", None)
    cmd = [sys.executable, "-m", "mathml_scripts.train", "-m", "hydra/launcher=slurm", f"hydra.sweep.dir={work / 'sweep'}",
           "seed=0", *TINY, "+callbacks.probe._target_=slurm_probe.Probe", f"+callbacks.probe.log_dir={probe}",
           f"+callbacks.probe.pause_at_step={PAUSE_AT_STEP}"]
    t_command = time.time()
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    job, deadline = None, time.monotonic() + 300
    while job is None and time.monotonic() < deadline and proc.poll() is None:
        paused = list(probe.glob("paused.*"))
        job = paused[0].name.split(".", 1)[1] if paused else None
        time.sleep(0.02)
    if job is None:
        out, _ = proc.communicate(timeout=60)
        raise RuntimeError(f"the job never reached step {PAUSE_AT_STEP}:\n{out[-3000:]}")
    t_signal = time.time()
    subprocess.run(["scancel", "--signal=USR2", job], check=True, timeout=30)
    out, _ = proc.communicate(timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the sweep failed:\n{out[-3000:]}")

    folder = work / "sweep" / ".submitit" / job
    (script,) = folder.glob("*_submission.sh")
    t_sbatch = script.stat().st_mtime
    events = sorted(set(_submitit_events(next(folder.glob("*_0_log.out"))) + _submitit_events(next(folder.glob("*_0_log.err")))))
    starts = [t for t, msg in events if msg.startswith("Starting with")]
    caught = [t for t, msg in events if msg.startswith("Caught signal")]
    firsts = [line.split() for line in (probe / f"first_step.{job}").read_text().splitlines()]
    restarts = re.search(r"Restarts=(\d+)", subprocess.run(["scontrol", "show", "job", job], capture_output=True,
                                                            text=True).stdout)
    assert len(starts) == 2 and len(firsts) == 2 and [f[2] for f in firsts] == ["0", "1"], (starts, firsts)
    (t_start, t_restart), (t_first, t_first_again) = starts, [float(f[0]) for f in firsts]
    return {
        "job": job, "restarts": int(restarts[1]) if restarts else None, "resumed_at_step": int(firsts[1][3]),
        "command_to_sbatch_s": t_sbatch - t_command,
        "sbatch_to_first_step_s": t_first - t_sbatch,
        "sbatch_to_job_process_s": t_start - t_sbatch,
        "job_process_to_first_step_s": t_first - t_start,
        "signal_to_first_step_after_requeue_s": t_first_again - t_signal,
        "signal_to_saved_and_requeue_call_s": caught[0] - t_signal if caught else None,
        "requeue_call_to_job_process_s": t_restart - caught[0] if caught else None,
        "job_process_to_first_step_after_requeue_s": t_first_again - t_restart,
    }


def _cluster_facts() -> dict:
    conf = subprocess.run(["scontrol", "show", "config"], capture_output=True, text=True).stdout
    keep = ("AuthInfo", "SchedulerParameters", "SchedulerType", "SelectType", "ProctrackType", "SLURM_VERSION")
    facts = {k.strip(): v.strip() for line in conf.splitlines() if "=" in line for k, v in [line.split("=", 1)]
             if k.strip() in keep}
    node = subprocess.run(["sinfo", "-h", "-N", "-o", "%N CPUs=%c mem=%m MB"], capture_output=True, text=True)
    return facts | {"node": node.stdout.strip()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "slurm_latency.json"))
    args = p.parse_args()
    if "is UP" not in subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=10).stdout:
        sys.exit("slurm_latency: no SLURM controller answers `scontrol ping`; run `bash scripts/start_slurm.sh` first")
    reps = []
    for i in range(args.reps):
        with tempfile.TemporaryDirectory(prefix="slurm_latency_") as work:
            reps.append(one_rep(Path(work)))
        print(json.dumps(reps[-1]), flush=True)
    keys = [k for k in reps[0] if k.endswith("_s")]
    median = {k: statistics.median(r[k] for r in reps if r[k] is not None) for k in keys}
    result = {
        "command": "python benchmarks/slurm_latency.py --reps %d" % args.reps,
        "median": median, "reps": reps, "cluster": _cluster_facts(),
        "machine": {"cpus": os.cpu_count(), "load_avg_1_5_15": os.getloadavg(), "python": platform.python_version()},
        "when": datetime.now().isoformat(timespec="seconds"),
    }
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(median, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
