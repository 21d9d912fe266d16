"""DDP overhead on the CPU: training steps/s of 2 data-parallel processes (gloo) vs 1 process at the
same per-process batch, same model and recipe.

Each measurement is a fresh ``--worker`` subprocess that builds the experiment from its config and
trains with Lightning (``strategy="ddp"`` on 2 CPU devices, or one device), one thread per process
(``torch.set_num_threads(1)``, ``OMP_NUM_THREADS=1``), validation, checkpoints, loggers and the
progress bar off. Rank 0 times every step that follows another step of the same epoch (the interval
between consecutive ``on_train_batch_end`` calls: loading the batch, forward, backward with DDP's
gradient all-reduce, optimizer step), after ``--warmup`` steps; epoch boundaries are left out
because with a fixed data set 2 ranks reach them twice as often. Steps/s = timed steps / time.
The two settings alternate over ``--rounds`` rounds; the figure is the median over rounds of the
ratio steps/s(2 processes) / steps/s(1 process): 1.0 means no overhead (2 processes then process
twice the samples per second), 0.5 means DDP buys nothing. The 1-minute load average before and
after each measurement is recorded: the machine is shared, and a second process competes for cores.

    .venv/bin/python benchmarks/ddp_overhead.py                               # vae_digits and diffusion_digits
    .venv/bin/python benchmarks/ddp_overhead.py --experiments vae_digits --steps 50 --rounds 1 --out /tmp/x.json
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
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "ddp_overhead.json"


def _timer_callback(warmup: int, out: str):
    from lightning import Callback

    class StepTimer(Callback):
        """Rank 0: seconds between consecutive step ends within an epoch, after ``warmup`` steps."""

        def __init__(self) -> None:
            self.last: tuple[int, float, float] | None = None  # (epoch, wall, cpu) of the previous step end
            self.wall = self.cpu = 0.0
            self.steps = 0

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self.last = None

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            now, cpu = time.perf_counter(), time.process_time()
            if self.last is not None and trainer.global_step > warmup:
                self.wall += now - self.last[1]
                self.cpu += cpu - self.last[2]
                self.steps += 1
            self.last = (trainer.current_epoch, now, cpu)

        def on_train_end(self, trainer, pl_module) -> None:
            if trainer.is_global_zero:
                with open(out, "w") as f:
                    json.dump({"steps": self.steps, "wall_s": self.wall, "cpu_s": self.cpu,
                               "world_size": trainer.world_size}, f)

    return StepTimer()


def worker(experiment: str, devices: int, steps: int, warmup: int, out: str) -> None:
    """Train ``experiment`` for warmup + steps optimizer steps on ``devices`` CPU processes."""
    import torch

    torch.set_num_threads(1)
    import lightning as L
    from hydra.utils import instantiate

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _compose import compose_train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_train(tmp, f"experiment={experiment}")
        L.seed_everything(cfg.seed, verbose=False)
        dm, model = instantiate(cfg.data), instantiate(cfg.model)
        trainer = L.Trainer(
            accelerator="cpu", devices=devices, strategy="ddp" if devices > 1 else "auto",
            max_steps=warmup + steps + 1, max_epochs=-1, limit_val_batches=0, num_sanity_val_steps=0,
            logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
            log_every_n_steps=cfg.trainer.get("log_every_n_steps", 50), callbacks=[_timer_callback(warmup, out)],
        )
        trainer.fit(model, datamodule=dm)


def _measure(experiment: str, devices: int, steps: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "timing.json")
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, os.path.abspath(__file__), "--worker", "--experiments", experiment,
                            "--devices", str(devices), "--steps", str(steps), "--warmup", str(warmup), "--out", out],
                           cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
        if r.returncode != 0:
            raise RuntimeError(f"worker {experiment} devices={devices} failed:\n{r.stderr[-3000:]}")
        res = json.loads(Path(out).read_text())
    res.update(devices=devices, steps_per_s=res["steps"] / res["wall_s"], steps_per_cpu_s=res["steps"] / res["cpu_s"],
               process_wall_s=time.perf_counter() - t0, load1_before=load_before, load1_after=os.getloadavg()[0])
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--experiments", nargs="+", default=["vae_digits", "diffusion_digits"])
    p.add_argument("--steps", type=int, default=300, help="timed steps per measurement")
    p.add_argument("--warmup", type=int, default=20, help="untimed steps first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--devices", type=int, default=1, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        worker(a.experiments[0], a.devices, a.steps, a.warmup, a.out)
        return

    results = {}
    for exp in a.experiments:
        rounds = []
        for i in range(a.rounds):
            # Alternate which setting goes first, so a drift in the machine's load hits both alike.
            order = (1, 2) if i % 2 == 0 else (2, 1)
            m = {d: _measure(exp, d, a.steps, a.warmup) for d in order}
            ratio = m[2]["steps_per_s"] / m[1]["steps_per_s"]
            rounds.append({"one_process": m[1], "two_processes": m[2], "ratio": ratio})
            print(f"{exp} round {i}: 1 proc {m[1]['steps_per_s']:.1f} steps/s, 2 procs {m[2]['steps_per_s']:.1f} "
                  f"steps/s, ratio {ratio:.3f} (load {m[1]['load1_before']:.1f}/{m[2]['load1_before']:.1f})", flush=True)
        ratios = [r["ratio"] for r in rounds]
        results[exp] = {
            "median_ratio": statistics.median(ratios), "ratios": ratios,
            "median_steps_per_s_1": statistics.median(r["one_process"]["steps_per_s"] for r in rounds),
            "median_steps_per_s_2": statistics.median(r["two_processes"]["steps_per_s"] for r in rounds),
            "rounds": rounds,
        }
    import torch

    summary = {
        "what": "training steps/s, 2 DDP CPU processes (gloo) / 1 process, same per-process batch; 1 thread per process",
        "command": " ".join([".venv/bin/python", "benchmarks/ddp_overhead.py", *sys.argv[1:]]),
        "steps": a.steps, "warmup": a.warmup, "rounds": a.rounds, "cpu_count": os.cpu_count(),
        "torch": torch.__version__, "utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), "results": results,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: {m: v[m] for m in ("median_ratio", "median_steps_per_s_1", "median_steps_per_s_2")}
                      for k, v in results.items()}, indent=2))


if __name__ == "__main__":
    main()
