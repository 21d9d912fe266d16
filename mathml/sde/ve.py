"""Variance-exploding (VE) SDE (Song et al. 2021, ICLR, eq. 9; the continuous limit of NCSN)."""

from __future__ import annotations

import math

import torch

from mathml.checks import check_positive

from .base import LinearSDE


class VESDE(LinearSDE):
    """dx = √(d[σ²(t)]/dt) dw with σ(t) = σ_min (σ_max/σ_min)^t on t ∈ [0, 1] (Song et al. 2021,
    eq. 9 and App. B).

    So f(t) = 0 and g(t)² = 2 log(σ_max/σ_min) σ(t)². The transition from x(0) = x₀ is exact:
    α_t = 1, σ_t² = σ(t)² − σ_min² (the variance accumulated since t = 0; Song et al.'s code uses
    σ(t)², which treats x₀ as already perturbed by σ_min). Prior N(0, σ_max² I) (eq. 30).
    λ_t = −log σ_t², so t = log(1 + e^{−λ}/σ_min²) / (2 log(σ_max/σ_min)).

    Args:
        sigma_min, sigma_max: σ(0) and σ(1) (Song et al. use 0.01 and 50 for CIFAR-10; σ_max should
            be about the largest distance between training points, Song & Ermon 2020, Technique 1).
        t_min: where samplers stop.
    """

    def __init__(self, sigma_min: float = 0.01, sigma_max: float = 50.0, t_min: float = 1e-5) -> None:
        super().__init__()
        self.sigma_min = check_positive(sigma_min, "sigma_min")
        self.sigma_max = check_positive(sigma_max, "sigma_max")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max must exceed sigma_min, got sigma_min={sigma_min}, sigma_max={sigma_max}")
        self.T = 1.0
        self.t_min = check_positive(t_min, "t_min")
        self._log_ratio = math.log(self.sigma_max / self.sigma_min)

    def noise_level(self, t: torch.Tensor) -> torch.Tensor:
        """σ(t) = σ_min (σ_max/σ_min)^t."""
        return self.sigma_min * torch.exp(t * self._log_ratio)

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # σ_t² = σ_min² (e^{2t log ρ} − 1), written with expm1 so small t keeps its precision.
        return torch.ones_like(t), self.sigma_min * torch.sqrt(torch.expm1(2.0 * t * self._log_ratio))

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        return -2.0 * math.log(self.sigma_min) - torch.log(torch.expm1(2.0 * t * self._log_ratio))

    def drift_coefficient(self, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(t)

    def diffusion_squared(self, t: torch.Tensor) -> torch.Tensor:
        """g(t)² = 2 log(σ_max/σ_min) σ(t)²."""
        return 2.0 * self._log_ratio * self.noise_level(t) ** 2

    def t_from_log_snr(self, log_snr: torch.Tensor) -> torch.Tensor:
        return torch.log1p(torch.exp(-log_snr) / self.sigma_min**2) / (2.0 * self._log_ratio)

    @property
    def prior_std(self) -> float:
        return self.sigma_max

    def extra_repr(self) -> str:
        return f"sigma_min={self.sigma_min}, sigma_max={self.sigma_max}, " + super().extra_repr()
