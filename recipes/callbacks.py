"""Callbacks that write a run's artefacts (sample and reconstruction grids)."""

from __future__ import annotations

import math
import os

import torch
from lightning import Callback, LightningModule, Trainer
from torchvision.utils import save_image

from mathml.checks import check_positive_int

from .loggers import log_images


def _viewable(x: torch.Tensor) -> torch.Tensor:
    """Images (N, C, H, W) clamped to [0, 1], enlarged (nearest) to at least 32 pixels a side."""
    x = x.detach().clamp(0, 1).float().cpu()
    scale = max(1, 32 // min(x.shape[-2:]))
    return torch.nn.functional.interpolate(x, scale_factor=scale, mode="nearest") if scale > 1 else x


class ImageGrids(Callback):
    """After testing, write ``samples.png`` (x ~ p_θ(x|z), z ~ p(z)) and
    ``reconstructions.png`` (the test images, then their reconstructions in the same order) into ``out_dir``;
    with a wandb logger, also log them there (``test/samples``, ``test/reconstructions``).

    Args:
        out_dir: folder for the PNGs (created if missing).
        n: number of images per grid.
        seed: seed of the generator that draws the prior samples.
    """

    def __init__(self, out_dir: str, n: int = 64, seed: int = 0) -> None:
        check_positive_int(n, "n")
        self.out_dir, self.n, self.seed = str(out_dir), int(n), int(seed)
        self.paths: list[str] = []
        self._batch: torch.Tensor | None = None

    def on_test_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0:
            self._batch = batch[0][: self.n].detach()

    def on_test_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        g = torch.Generator(device=pl_module.device).manual_seed(self.seed)
        samples = pl_module.sample(self.n, generator=g)
        nrow = max(1, int(math.sqrt(self.n)))
        self.paths = [os.path.join(self.out_dir, "samples.png")]
        save_image(_viewable(samples), self.paths[0], nrow=nrow, pad_value=1.0)
        if self._batch is not None:
            x = self._batch.to(pl_module.device)
            pair = torch.cat([x, pl_module.reconstruct(x).to(x.dtype)])
            path = os.path.join(self.out_dir, "reconstructions.png")
            save_image(_viewable(pair), path, nrow=nrow, pad_value=1.0)
            self.paths.append(path)
        for path in self.paths:  # to wandb too, when the run logs there
            log_images(trainer, f"test/{os.path.splitext(os.path.basename(path))[0]}", [path])
