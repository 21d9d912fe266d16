"""The Ornstein–Uhlenbeck process as a linear SDE (Uhlenbeck & Ornstein 1930; Särkkä & Solin 2019,
"Applied Stochastic Differential Equations", Example 6.8)."""

from __future__ import annotations

import math

import torch

from mathml.checks import check_positive

from .base import LinearSDE


class OrnsteinUhlenbeckSDE(LinearSDE):
    """dx = −θ x dt + σ dw on t ∈ [0, T].

    Transition: α_t = e^{−θt}, σ_t² = σ²/(2θ) (1 − e^{−2θt}) (Särkkä & Solin 2019, eq. 6.23); the
    stationary law N(0, σ²/(2θ)) is the prior. λ_t = −log(σ²/(2θ)) − log(e^{2θt} − 1), so
    t = log(1 + 2θ e^{−λ}/σ²) / (2θ).

    Args:
        theta: mean-reversion rate θ > 0. sigma: noise scale σ > 0. T: end time. t_min: where
            samplers stop.
    """

    def __init__(self, theta: float = 1.0, sigma: float = math.sqrt(2.0), T: float = 5.0, t_min: float = 1e-3) -> None:
        super().__init__()
        self.theta = check_positive(theta, "theta")
        self.sigma = check_positive(sigma, "sigma")
        self.T = check_positive(T, "T")
        self.t_min = check_positive(t_min, "t_min")

    def alpha_sigma(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        var = self.sigma**2 / (2 * self.theta) * -torch.expm1(-2 * self.theta * t)
        return torch.exp(-self.theta * t), torch.sqrt(var)

    def log_snr(self, t: torch.Tensor) -> torch.Tensor:
        return -math.log(self.sigma**2 / (2 * self.theta)) - torch.log(torch.expm1(2 * self.theta * t))

    def drift_coefficient(self, t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, -self.theta)

    def diffusion_squared(self, t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, self.sigma**2)

    def t_from_log_snr(self, log_snr: torch.Tensor) -> torch.Tensor:
        return torch.log1p(2 * self.theta * torch.exp(-log_snr) / self.sigma**2) / (2 * self.theta)

    @property
    def prior_std(self) -> float:
        return self.sigma / math.sqrt(2 * self.theta)

    def extra_repr(self) -> str:
        return f"theta={self.theta}, sigma={self.sigma}, " + super().extra_repr()
