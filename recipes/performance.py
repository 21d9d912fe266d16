"""GPU training switches for any recipe: TF32 matmuls, channels-last weights, torch.compile.

``trainer(...)`` builds a ``lightning.Trainer`` with a ``PerformanceFlags`` callback appended, so a
trainer config (``conf/trainer/gpu.yaml``) states the switches beside ``precision: bf16-mixed``:

    mathml-train experiment=diffusion_cifar10 trainer=gpu trainer.compile=true trainer.channels_last=true
"""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch


class PerformanceFlags(L.Callback):
    """At ``setup``: TF32 matmuls and convolutions (``torch.set_float32_matmul_precision("high")``,
    ``torch.backends.cudnn.allow_tf32``), channels-last weights, and ``nn.Module.compile()`` (in place,
    so checkpoint keys are unchanged) of the module attribute ``compile_attr`` of the LightningModule.

    Args:
        tf32: allow TF32 in float32 matmuls and cuDNN convolutions (Ampere and later).
        channels_last: convert the module's 4-D weights to ``torch.channels_last``.
        compile: compile ``getattr(pl_module, compile_attr)`` with ``torch.compile``.
        compile_attr: the trained network's attribute (``score_model`` in the diffusion recipe).
    """

    def __init__(self, tf32: bool = True, channels_last: bool = False, compile: bool = False,
                 compile_attr: str = "score_model") -> None:
        for name, v in (("tf32", tf32), ("channels_last", channels_last), ("compile", compile)):
            if not isinstance(v, bool):
                raise TypeError(f"trainer.{name} must be a bool, got {v!r}")
        self.tf32, self.channels_last, self.compile, self.compile_attr = tf32, channels_last, compile, compile_attr

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.tf32:
            torch.set_float32_matmul_precision("high")
            torch.backends.cudnn.allow_tf32 = True
        if self.channels_last:
            pl_module.to(memory_format=torch.channels_last)
        if self.compile and stage == "fit":
            module = getattr(pl_module, self.compile_attr, None)
            if not isinstance(module, torch.nn.Module):
                raise ValueError(f"trainer.compile: the LightningModule has no module attribute {self.compile_attr!r}")
            module.compile()


def trainer(*, tf32: bool = True, channels_last: bool = False, compile: bool = False,
            compile_attr: str = "score_model", callbacks: Sequence[L.Callback] | None = None,
            **kwargs) -> L.Trainer:
    """``lightning.Trainer(**kwargs)`` with ``PerformanceFlags(tf32, channels_last, compile, compile_attr)``
    appended to ``callbacks``."""
    flags = PerformanceFlags(tf32=tf32, channels_last=channels_last, compile=compile, compile_attr=compile_attr)
    return L.Trainer(callbacks=[*(callbacks or []), flags], **kwargs)
