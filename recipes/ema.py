"""Averaging functions for ``torch.optim.swa_utils.AveragedModel``: the exponential moving average
of the weights, optionally with the warm-up of TensorFlow's ``ExponentialMovingAverage``
(``num_updates``; used for diffusion models by Song et al. 2021's code), so that short runs are not
dominated by the initial weights."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn


def ema_multi_avg_fn(decay: float, warmup: bool = False) -> Callable:
    """A ``multi_avg_fn`` for ``AveragedModel``: θ̄ ← β θ̄ + (1 − β) θ after every update, with
    β = decay, or with ``warmup`` β_n = min(decay, (1 + n)/(10 + n)) where n is the number of updates
    averaged so far (``AveragedModel.n_averaged``, saved in the state dict, so resume is exact).
    AveragedModel's first update copies θ."""
    if not 0.0 <= decay < 1.0:
        raise ValueError(f"ema decay must lie in [0, 1), got {decay}")
    if not warmup:
        return get_ema_multi_avg_fn(decay)

    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = int(num_averaged)
        beta = min(decay, (1.0 + n) / (10.0 + n))
        for a, c in zip(averaged, current):
            a.lerp_(c, 1.0 - beta)

    return update
