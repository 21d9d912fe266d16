"""The EDM process σ(t) = t (Karras et al. 2022, "Elucidating the Design Space of Diffusion-Based
Generative Models", NeurIPS, eq. 4 and Table 1, "Ours")."""

from __future__ import annotations

import torch

from mathml.checks import check_positive

from .base import LinearSDE


class EDMSDE(LinearSDE):
    """dx = √(2 σ̇(t) σ(t)) dw with σ(t) = t and s(t) = 1 (Karras et al. 2022, eq. 4 with Table 1).

    So f(t) = 0, g(t)² = 2t, and x(t) | x₀ ~ N(x₀, t² I): α_t = 1, σ_t = t, λ_t = −2 log t. Time is
    the noise level itself, t ∈ [0, σ_max]; the prior is N(0, σ_max² I).

    Args:
        sigma_min: where samplers stop (``t_min``; Karras et al. use 0.002).
        sigma_max: T (Karras et al. use 80).
    """

    def __init__(self, sigma_min: float = 0.002, sigma_max: float = 80.0) -> None:
        super().__init__()
        self.sigma_min = check_positive(sigma_min, "sigma_min")
        self.sigma_max = check_positive(sigma_max, "sigma_max")
        if self.sigma_max <= self.sigma_min:
            raise ValueError(f"sigma_max must exceed sigma_min, got sigma_min={sigma_min}, sigma_max={sigma_max}")
        self.T = self.sigma_max
        self.t_min = self.sigma_min

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.ones_like(t), t

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        return -2.0 * torch.log(t)

    def drift_coefficient(self, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(t)

    def diffusion_squared(self, t: torch.Tensor) -> torch.Tensor:
        """g(t)² = 2 σ̇ σ = 2t."""
        return 2.0 * t

    def t_from_log_snr(self, log_snr: torch.Tensor) -> torch.Tensor:
        return torch.exp(-0.5 * log_snr)

    @property
    def prior_std(self) -> float:
        return self.sigma_max

    def extra_repr(self) -> str:
        return f"sigma_min={self.sigma_min}, sigma_max={self.sigma_max}"
