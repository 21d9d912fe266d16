"""Fault injection for tests/recipes/test_faults.py and benchmarks/fault_table.py.

``InjectFault`` is a Lightning callback added to a real ``mathml-train`` run from the command line
(``+callbacks.fault._target_=fault_injection.InjectFault`` with this folder on PYTHONPATH); each fault
happens at a chosen global step:

- ``kill``: SIGKILL at the end of training batch ``at_step`` (mid-epoch; nothing can be saved);
- ``kill_in_checkpoint_write``: SIGKILL after half of the first checkpoint written at or after
  ``at_step`` has reached the disk;
- ``kill_in_validation``: SIGKILL in the first validation batch at or after ``at_step``;
- ``sigterm`` / ``sigusr1``: that signal to this process during the training batch that makes step
  ``at_step`` (``SaveOnSignal`` saves at its end and stops);
- ``sigterm_after_batch_end``: SIGTERM after ``SaveOnSignal``'s batch-end hook of step ``at_step``
  (Lightning then raises ``SIGTERMException``; the save happens in ``on_exception``);
- ``nan_loss``: the loss of training batch ``at_step`` is made NaN.

``scenario(...)`` runs one fault followed by a resume with ``ckpt_path=last`` and reports what was lost.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import torch
from lightning import Callback

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
KINDS = ("kill", "kill_in_checkpoint_write", "kill_in_validation", "sigterm", "sigusr1", "sigterm_after_batch_end",
         "nan_loss")


class InjectFault(Callback):
    def __init__(self, kind: str, at_step: int) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        self.kind, self.at_step = kind, int(at_step)

    def _due(self, trainer) -> bool:
        return trainer.global_step >= self.at_step

    def setup(self, trainer, pl_module, stage: str) -> None:
        if self.kind != "kill_in_checkpoint_write":
            return
        real_save, fault = torch.save, self

        def half_then_die(obj, f, *args, **kwargs):
            if not fault._due(trainer):
                return real_save(obj, f, *args, **kwargs)
            import io

            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            data = buf.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            os.kill(os.getpid(), signal.SIGKILL)

        torch.save = half_then_die

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self.kind == "nan_loss" and trainer.global_step == self.at_step:
            # The recipes' per-sample terms, poisoned once: the loss of this step is NaN. (NaN inputs
            # would not get that far: torch.distributions' argument checks reject NaN parameters.)
            original = pl_module._terms

            def poisoned(*args, **kwargs):
                pl_module.__dict__.pop("_terms")
                terms = original(*args, **kwargs)
                return {**terms, "loss": terms["loss"] * float("nan")}

            pl_module.__dict__["_terms"] = poisoned
        if self.kind in ("sigterm", "sigusr1") and trainer.global_step == self.at_step - 1:
            # arrives during the batch whose optimiser step makes global_step == at_step
            os.kill(os.getpid(), signal.SIGTERM if self.kind == "sigterm" else signal.SIGUSR1)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step != self.at_step:
            return
        if self.kind == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.kind == "sigterm_after_batch_end":
            # after SaveOnSignal's own batch-end hook (it comes earlier in the callback list)
            os.kill(os.getpid(), signal.SIGTERM)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        if self.kind == "kill_in_validation" and not trainer.sanity_checking and self._due(trainer):
            os.kill(os.getpid(), signal.SIGKILL)


# A small deterministic run: vae_digits, 4 batches an epoch, 3 epochs (12 steps), exact on the CPU.
TINY = ["trainer.max_epochs=3", "+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2",
        "+trainer.limit_test_batches=2", "model.eval_k=8", "model.eval_chunk=4", "test_ckpt=last",
        "trainer.log_every_n_steps=1", "callbacks.progress_bar=null", "callbacks.image_grids=null"]
STEPS_PER_EPOCH = 4


def cli(run_dir: Path, *overrides: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``mathml-train`` in a subprocess (so SIGKILL kills only it), with this folder importable."""
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    env.pop("SLURM_RESTART_COUNT", None)
    return subprocess.run([sys.executable, "-m", "mathml_scripts.train", f"hydra.run.dir={run_dir}", *TINY, *overrides],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


def final_state(run_dir: Path) -> tuple[dict[str, float], dict[str, torch.Tensor], int]:
    """(metrics.json metrics, last.ckpt weights, last.ckpt global step) of a finished run."""
    metrics = json.loads((run_dir / "metrics.json").read_text())["metrics"]
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    return metrics, ckpt["state_dict"], int(ckpt["global_step"])


def scenario(kind: str, at_step: int, run_dir: Path, *, truncate_newest: bool = False) -> dict:
    """Run with a fault at ``at_step``, then resume with ``ckpt_path=last`` in the same folder.

    ``truncate_newest``: instead of a fault, a clean run stopped after ``at_step`` steps (max_steps)
    whose newest checkpoint is then cut to half its size before the resume.
    Returns the fault run's exit status and output tail, the step the resume started from (read from its
    log), the resumed run's final state, and the number of steps lost.
    """
    if truncate_newest:
        first = cli(run_dir, f"trainer.max_steps={at_step}")
        newest = run_dir / "checkpoints" / "last.ckpt"
        data = newest.read_bytes()
        newest.write_bytes(data[: len(data) // 2])
    else:
        first = cli(run_dir, f"+callbacks.fault._target_=fault_injection.InjectFault",
                    f"+callbacks.fault.kind={kind}", f"+callbacks.fault.at_step={at_step}")
    resumed = cli(run_dir, "ckpt_path=last")
    start_step, resumed_from = None, None
    for m in re.finditer(r"resuming from (\S+) at step (\d+)", resumed.stdout + resumed.stderr):
        resumed_from, start_step = m.group(1), int(m.group(2))
    return {"fault": first, "resume": resumed, "resumed_from": resumed_from, "start_step": start_step}
