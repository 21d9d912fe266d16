"""A callback the DDP tests load into every rank (``+callbacks.probe._target_=tests.recipes.ddp_probe.ParameterHash``):
at the end of training each rank writes the SHA-256 of its model's state (parameters and buffers,
EMA copies included) to ``<out_dir>/rank<r>.sha256``, so a test can compare the ranks' weights
byte for byte. It writes outside the run folder on purpose (the run folder must hold rank 0's
outputs only)."""

from __future__ import annotations

import hashlib
import os

from lightning import Callback, LightningModule, Trainer


class ParameterHash(Callback):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = str(out_dir)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        h = hashlib.sha256()
        for name, t in sorted(pl_module.state_dict().items()):
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        os.makedirs(self.out_dir, exist_ok=True)
        with open(os.path.join(self.out_dir, f"rank{trainer.global_rank}.sha256"), "w") as f:
            f.write(f"{h.hexdigest()} {trainer.global_step}\n")
