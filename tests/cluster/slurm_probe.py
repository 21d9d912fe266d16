"""Test helper for tests/cluster/test_slurm.py and benchmarks/slurm_latency.py: a Lightning callback
added to a real ``mathml-train`` job from the command line
(``+callbacks.probe._target_=slurm_probe.Probe``, with this folder on PYTHONPATH).

- It appends ``<time.time()> <SLURM_JOB_ID> <SLURM_RESTART_COUNT> <global_step>`` to
  ``<log_dir>/first_step.<job>`` at the end of the first training batch of every attempt (the first
  run and each requeued run of the job), so the latency benchmark can read when training started.
- With ``pause_at_step`` set, on the first attempt only it stops at the end of that training step,
  writes ``<log_dir>/paused.<job>`` and waits (at most ``max_wait_s``) until the process receives
  ``signal_name``, so the test can send the pre-emption signal at a known point in training. The
  signal still reaches the handler installed before (mathml's SaveOnSignal), which saves and requeues.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from lightning import Callback


class Probe(Callback):
    def __init__(self, log_dir: str, pause_at_step: int | None = None, signal_name: str = "SIGUSR2",
                 max_wait_s: float = 120.0) -> None:
        self.log_dir, self.pause_at_step = Path(log_dir), pause_at_step
        self.signum, self.max_wait_s = getattr(signal, signal_name), float(max_wait_s)
        self._first_seen = False

    @staticmethod
    def _job() -> str:
        job = os.environ.get("SLURM_ARRAY_JOB_ID")
        if job is not None:
            return f"{job}_{os.environ['SLURM_ARRAY_TASK_ID']}"
        return os.environ.get("SLURM_JOB_ID", f"pid{os.getpid()}")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_rank != 0:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        restart = os.environ.get("SLURM_RESTART_COUNT", "0")
        if not self._first_seen:
            self._first_seen = True
            with open(self.log_dir / f"first_step.{self._job()}", "a") as f:
                f.write(f"{time.time():.6f} {self._job()} {restart} {trainer.global_step}\n")
        if self.pause_at_step is None or restart not in ("", "0") or trainer.global_step != self.pause_at_step:
            return
        received: list[int] = []
        previous = signal.getsignal(self.signum)

        def note(signum, frame):
            received.append(signum)
            if callable(previous):
                previous(signum, frame)

        signal.signal(self.signum, note)
        (self.log_dir / f"paused.{self._job()}").write_text(f"{time.time():.6f} {trainer.global_step}\n")
        deadline = time.monotonic() + self.max_wait_s
        while not received and time.monotonic() < deadline:
            time.sleep(0.02)
        signal.signal(self.signum, previous)
