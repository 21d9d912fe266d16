"""Variance-preserving (VP) and sub-VP SDEs (Song et al. 2021, ICLR, eqs. 11 and 12).

Both use the linear schedule β(t) = β_min + t (β_max − β_min) on t ∈ [0, 1] (the continuous limit of
DDPM's β_i, Song et al. 2021, App. B) and its integral

    B(t) = ∫₀ᵗ β(s) ds = β_min t + ½ t² (β_max − β_min).
"""

from __future__ import annotations

import torch

from mathml.checks import check_positive

from .base import LinearSDE


class _LinearBetaSchedule(LinearSDE):
    """Shared β(t), B(t) and the check β_max > β_min > 0 (a base for the two VP-type SDEs)."""

    def __init__(self, beta_min: float, beta_max: float, t_min: float) -> None:
        super().__init__()
        self.beta_min = check_positive(beta_min, "beta_min")
        self.beta_max = check_positive(beta_max, "beta_max")
        if self.beta_max <= self.beta_min:
            raise ValueError(f"beta_max must exceed beta_min, got beta_min={beta_min}, beta_max={beta_max}")
        self.T = 1.0
        self.t_min = check_positive(t_min, "t_min")

    def beta(self, t: torch.Tensor) -> torch.Tensor:
        """β(t) = β_min + t (β_max − β_min)."""
        return self.beta_min + t * (self.beta_max - self.beta_min)

    def integrated_beta(self, t: torch.Tensor) -> torch.Tensor:
        """B(t) = β_min t + ½ t² (β_max − β_min)."""
        return t * (self.beta_min + 0.5 * t * (self.beta_max - self.beta_min))

    def _t_from_integrated_beta(self, b: torch.Tensor) -> torch.Tensor:
        """The root t ≥ 0 of ½ Δ t² + β_min t − B = 0, Δ = β_max − β_min, in the cancellation-free
        form t = 2B / (β_min + √(β_min² + 2ΔB))."""
        delta = self.beta_max - self.beta_min
        return 2.0 * b / (self.beta_min + torch.sqrt(self.beta_min**2 + 2.0 * delta * b))

    def drift_coefficient(self, t: torch.Tensor) -> torch.Tensor:
        """f(t) = −½ β(t) (eqs. 11 and 12)."""
        return -0.5 * self.beta(t)

    def extra_repr(self) -> str:
        return f"beta_min={self.beta_min}, beta_max={self.beta_max}, " + super().extra_repr()


class VPSDE(_LinearBetaSchedule):
    """dx = −½ β(t) x dt + √β(t) dw (Song et al. 2021, eq. 11).

    Transition (eq. 29): α_t = exp(−½ B(t)), σ_t² = 1 − exp(−B(t)); prior N(0, I).
    λ_t = −log(e^{B(t)} − 1), so B = softplus(−λ).

    Args:
        beta_min, beta_max: β(0) and β(1) (Song et al. use 0.1 and 20).
        t_min: where samplers stop (Song et al. use 1e-3 for sampling, 1e-5 for likelihoods).
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3) -> None:
        super().__init__(beta_min, beta_max, t_min)

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.integrated_beta(t)
        return torch.exp(-0.5 * b), torch.sqrt(-torch.expm1(-b))

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        return -torch.log(torch.expm1(self.integrated_beta(t)))

    def diffusion_squared(self, t: torch.Tensor) -> torch.Tensor:
        """g(t)² = β(t)."""
        return self.beta(t)

    def t_from_log_snr(self, log_snr: torch.Tensor) -> torch.Tensor:
        return self._t_from_integrated_beta(torch.nn.functional.softplus(-log_snr))

    @property
    def prior_std(self) -> float:
        return 1.0


class SubVPSDE(_LinearBetaSchedule):
    """dx = −½ β(t) x dt + √(β(t) (1 − e^{−2B(t)})) dw (Song et al. 2021, eq. 12).

    Transition (eq. 29): α_t = exp(−½ B(t)), σ_t = 1 − exp(−B(t)) (its variance is bounded by the
    VP SDE's); prior N(0, I). With a = α_t and r = e^{λ/2} = a / (1 − a²),
    a = 2r / (1 + √(1 + 4r²)) and B = −2 log a.

    Args:
        beta_min, beta_max: β(0) and β(1) (Song et al. use 0.1 and 20).
        t_min: where samplers stop.
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3) -> None:
        super().__init__(beta_min, beta_max, t_min)

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.integrated_beta(t)
        return torch.exp(-0.5 * b), -torch.expm1(-b)

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        b = self.integrated_beta(t)
        return -b - 2.0 * torch.log(-torch.expm1(-b))

    def diffusion_squared(self, t: torch.Tensor) -> torch.Tensor:
        """g(t)² = β(t) (1 − e^{−2B(t)})."""
        return -self.beta(t) * torch.expm1(-2.0 * self.integrated_beta(t))

    def t_from_log_snr(self, log_snr: torch.Tensor) -> torch.Tensor:
        # a = 2r / (1 + √(1 + 4r²)) with r = e^{λ/2}; log a computed without overflow for large λ.
        r = torch.exp(0.5 * log_snr)
        log_a = torch.log(2.0 * r) - torch.log1p(torch.sqrt(1.0 + 4.0 * r * r))
        return self._t_from_integrated_beta(-2.0 * log_a)

    @property
    def prior_std(self) -> float:
        return 1.0
