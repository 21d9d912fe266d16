"""Priors p(z) as modules, so they follow the model's device and dtype."""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Independent, Normal


class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I_d) (Kingma & Welling 2014, §3).

    Args:
        latent_dim: d. ``forward()`` returns a distribution with event_shape ``(d,)``.
    """

    def __init__(self, latent_dim: int) -> None:
        super().__init__()
        if int(latent_dim) < 1:
            raise ValueError(f"latent_dim must be >= 1, got {latent_dim}")
        self.register_buffer("loc", torch.zeros(int(latent_dim)), persistent=False)

    def forward(self) -> Independent:
        return Independent(Normal(self.loc, torch.ones_like(self.loc)), 1)
