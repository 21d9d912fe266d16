"""Callbacks that write a diffusion run's sample pictures: scatter plots for 2-D data, image grids
for images. Samples come from the module's ``sample`` (EMA weights, the configured sampler)."""

from __future__ import annotations

import math
import os

import torch
from lightning import Callback, LightningModule, Trainer

from mathml.checks import check_positive_int

from .loggers import log_images


def save_samples(x: torch.Tensor, path: str, *, reference: torch.Tensor | None = None, title: str = "") -> str:
    """Write ``x`` as a PNG: a scatter plot when x is (n, 2) (with ``reference`` points in grey
    behind it), else an image grid of x viewed as (n, C, H, W) clamped to [0, 1]. Returns ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    x = x.detach().float().cpu()
    if x.dim() == 2 and x.shape[1] == 2:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        if reference is not None:
            r = reference.detach().float().cpu()
            ax.scatter(r[:, 0], r[:, 1], s=1, c="0.75", label="data")
        ax.scatter(x[:, 0], x[:, 1], s=1, c="C0", label="samples")
        ax.set_aspect("equal")
        if title:
            ax.set_title(title, fontsize=8)
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return path
    from torchvision.utils import save_image

    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise ValueError(f"samples must be (n, 2) points or (n, C, H, W) images, got shape {tuple(x.shape)}")
    x = x.clamp(0, 1)
    scale = max(1, 32 // min(x.shape[-2:]))
    if scale > 1:
        x = torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest")
    save_image(x, path, nrow=max(1, int(math.sqrt(x.shape[0]))), pad_value=1.0)
    return path


class DiffusionSamples(Callback):
    """After every ``every_n_epochs``-th validation, write ``samples/epoch_XXX.png``; after testing,
    ``samples.png``; with a wandb logger, also log them there (``val/samples`` at each picture's
    step, ``test/samples``). The same generator seed every time, so pictures of successive epochs
    differ only by the model.

    Args:
        out_dir: the run directory.
        n: samples per picture.
        every_n_epochs: validation epochs between pictures (>= 1).
        seed: seed of the sampling generator.
    """

    def __init__(self, out_dir: str, n: int = 1000, every_n_epochs: int = 1, seed: int = 0) -> None:
        check_positive_int(n, "n")
        check_positive_int(every_n_epochs, "every_n_epochs")
        self.out_dir, self.n, self.every, self.seed = str(out_dir), int(n), int(every_n_epochs), int(seed)
        self.paths: list[str] = []

    def _write(self, trainer: Trainer, pl_module: LightningModule, name: str, title: str, key: str) -> None:
        g = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        x = pl_module.sample(self.n, generator=g)
        self.paths.append(save_samples(x, os.path.join(self.out_dir, name), title=title))
        log_images(trainer, key, [self.paths[-1]])  # to wandb too, when the run logs there

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero or (trainer.current_epoch + 1) % self.every:
            return
        self._write(trainer, pl_module, os.path.join("samples", f"epoch_{trainer.current_epoch:03d}.png"),
                    f"epoch {trainer.current_epoch}, step {trainer.global_step}", "val/samples")

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.is_global_zero:
            self._write(trainer, pl_module, "samples.png", f"step {trainer.global_step} (EMA)", "test/samples")
