"""Embeddings of a scalar time (or noise level) per sample, for time-conditioned networks.

Two standard choices:

- Gaussian Fourier features (Tancik et al. 2020, "Fourier Features Let Networks Learn High
  Frequency Functions in Low Dimensional Domains", NeurIPS, eq. 5 with B ~ N(0, s²); used for the
  time input of score networks by Song et al. 2021, ICLR, App. H.1):
      γ(t) = [sin(2π b t), cos(2π b t)],  b ∈ R^{d/2} fixed, b_i ~ N(0, s²).
- Sinusoidal embeddings (Vaswani et al. 2017, "Attention Is All You Need", §3.5; used for the
  diffusion step by Ho et al. 2020, App. B):
      γ(t)_{i} = sin(c t · ω_i), γ(t)_{d/2+i} = cos(c t · ω_i),  ω_i = max_period^{−i/(d/2)}.

Both map ``t: (B,)`` to ``(B, dim)``; both are fixed (no trainable parameters), so the EMA of a
network that holds them averages only what it learns.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mathml.checks import check_positive, check_positive_int, check_tensor


def _check_dim(dim: object) -> int:
    dim = check_positive_int(dim, "dim")
    if dim % 2:
        raise ValueError(f"dim must be even (sin and cos halves), got {dim}")
    return dim


def _check_t(t: object) -> torch.Tensor:
    t = check_tensor(t, "t", shape_doc="(B,)")
    if t.dim() != 1:
        raise ValueError(f"t must have shape (B,), got {tuple(t.shape)}")
    return t


class GaussianFourierEmbedding(nn.Module):
    """γ(t) = [sin(2π b t), cos(2π b t)] with b ~ N(0, scale² I) drawn once (Tancik et al. 2020, eq. 5).

    Args:
        dim: embedding size d (even).
        scale: s, the standard deviation of the frequencies b. Song et al. 2021 use s = 16 for
            t ∈ [0, 1]; a smaller s gives a smoother dependence on t.
        seed: seed of the draw of b (a buffer, saved in checkpoints).

    Shapes: ``t: (B,) -> (B, dim)``.
    """

    def __init__(self, dim: int = 64, scale: float = 16.0, seed: int = 0) -> None:
        super().__init__()
        self.dim = _check_dim(dim)
        self.scale = check_positive(scale, "scale")
        g = torch.Generator().manual_seed(int(seed))
        self.register_buffer("b", torch.randn(dim // 2, generator=g) * self.scale)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = _check_t(t)
        angle = 2.0 * math.pi * t[:, None] * self.b.to(t.dtype)
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, scale={self.scale}"


class SinusoidalEmbedding(nn.Module):
    """γ(t) = [sin(c t ω_i), cos(c t ω_i)]_{i < d/2}, ω_i = max_period^{−i/(d/2)}
    (Vaswani et al. 2017, §3.5; Ho et al. 2020, App. B).

    Args:
        dim: embedding size d (even).
        time_scale: c, multiplies t first (Ho et al. embed the step index, t ∈ {1..1000}; with
            continuous t ∈ [0, 1] use c = 1000 to get the same frequencies).
        max_period: the longest period, 10,000 in Vaswani et al.

    Shapes: ``t: (B,) -> (B, dim)``.
    """

    def __init__(self, dim: int = 64, time_scale: float = 1000.0, max_period: float = 10_000.0) -> None:
        super().__init__()
        self.dim = _check_dim(dim)
        self.time_scale = check_positive(time_scale, "time_scale")
        self.max_period = check_positive(max_period, "max_period")
        half = dim // 2
        self.register_buffer("omega", torch.exp(-math.log(self.max_period) * torch.arange(half) / half))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = _check_t(t)
        angle = self.time_scale * t[:, None] * self.omega.to(t.dtype)
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, time_scale={self.time_scale}, max_period={self.max_period}"
