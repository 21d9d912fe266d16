"""What logging to wandb (offline) adds to a short `mathml-train` run, and what `mathml-report` costs.

    .venv/bin/python benchmarks/wandb_overhead.py [--rounds 3] [--out benchmarks/results/wandb_overhead.json]

Each round runs the same tiny vae_digits training (2 epochs x 3 batches, one test batch) as a fresh
process with `logger=csv`, `logger=wandb` and `logger=wandb logger.wandb.log_model=true`, in that
order, no API key (so wandb is offline), and records the wall time of each process. The figure is
the median over rounds of (wandb run − csv run) in seconds: wandb's fixed cost per run (service
start, run folder, images, artifacts), which does not grow with the length of training. Then
`mathml-report` runs on a folder of the wandb runs (a sweep stand-in) and its wall time is recorded.
The load average is recorded too: the shared machine's load makes single timings noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TINY = ["trainer.max_epochs=2", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1",
        "+trainer.limit_test_batches=1", "model.eval_k=8", "model.eval_chunk=4", "callbacks.progress_bar=null"]
VARIANTS = {"csv": ["logger=csv"], "wandb": ["logger=wandb"], "wandb_log_model": ["logger=wandb", "logger.wandb.log_model=true"]}


def _run(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "wandb_overhead.json"))
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wandb_overhead_"))
    env = {**os.environ, "HOME": str(tmp / "home"), "NETRC": str(tmp / "home" / ".netrc"), "WANDB_MODE": "offline",
           "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    env.pop("WANDB_API_KEY", None)
    walls: dict[str, list[float]] = {k: [] for k in VARIANTS}
    load = [os.getloadavg()[0]]
    for i in range(args.rounds):
        for name, extra in VARIANTS.items():
            run_dir = tmp / "runs" / str(i) if name == "wandb" else tmp / name / str(i)
            cmd = [sys.executable, "-m", "mathml_scripts.train", f"hydra.run.dir={run_dir}", f"seed={i}", *TINY, *extra]
            walls[name].append(_run(cmd, env))
            print(f"round {i} {name}: {walls[name][-1]:.1f} s", flush=True)
        load.append(os.getloadavg()[0])
    report_wall = _run([str(Path(sys.executable).parent / "mathml-report"), str(tmp / "runs"), "--group-by", "trainer.max_epochs"], env)
    result = {
        "command": f"benchmarks/wandb_overhead.py --rounds {args.rounds}",
        "wall_s": walls,
        "median_extra_s": {k: statistics.median(w - c for w, c in zip(walls[k], walls["csv"])) for k in VARIANTS if k != "csv"},
        "median_csv_s": statistics.median(walls["csv"]),
        "mathml_report_s": report_wall,
        "load_average_1min": load,
        "cpus": os.cpu_count(),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
