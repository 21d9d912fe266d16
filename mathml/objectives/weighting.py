"""Weightings λ(t) and time distributions for denoising score matching over a linear SDE.

The objectives draw a time t ~ q(t) per sample and weight the squared score error by λ(t)
(Song et al. 2021, "Score-Based Generative Modeling through SDEs", eq. 7). Both are small objects
passed to the objective (a config builds them by ``_target_``), never strings:

- weightings ``w(sde, t) -> λ(t)``, ``t: (B,)`` → ``(B,)``, the factor on ‖s_θ − ∇ log p_{0t}‖²
  (score space): ``SigmaSquaredWeighting`` (σ_t², Song et al. 2021), ``LikelihoodWeighting``
  (g(t)², Song, Durkan, Murray & Ermon 2021), ``EDMWeighting`` (Karras et al. 2022);
- time distributions with ``sample(sde, n, t_min, ...)`` and ``density(sde, t, t_min)``:
  ``UniformTime`` (Song et al. 2021, eq. 7), ``LogSNRUniformTime`` (the importance sampler of the
  likelihood weighting), ``LogNormalNoiseTime`` (Karras et al. 2022, §5, p_train).

A fact used twice: for a linear SDE, dσ_t²/dt = 2 f σ_t² + g² and λ_t = log α_t² − log σ_t², so

    dλ_t/dt = 2f − (2 f σ_t² + g²)/σ_t² = −g(t)²/σ_t².

Hence drawing t with density ∝ g²/σ² is drawing λ uniformly (Kingma et al. 2021, "Variational
Diffusion Models", write the continuous-time loss as an integral over λ for this reason).
"""

from __future__ import annotations

import abc
import math

import torch

from mathml.checks import check_generator, check_positive
from mathml.sde.base import LinearSDE

__all__ = [
    "EDMWeighting",
    "LikelihoodWeighting",
    "LogNormalNoiseTime",
    "LogSNRUniformTime",
    "SigmaSquaredWeighting",
    "TimeDistribution",
    "UniformTime",
    "Weighting",
]


# -- weightings ----------------------------------------------------------------------------------
class Weighting(abc.ABC):
    """λ(t): ``weighting(sde, t (B,)) -> (B,)``, the factor on the score-space squared error."""

    @abc.abstractmethod
    def __call__(self, sde: LinearSDE, t: torch.Tensor) -> torch.Tensor: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SigmaSquaredWeighting(Weighting):
    """λ(t) = σ_t² (Song et al. 2021, §3.3: λ ∝ 1/E‖∇ log p_{0t}‖² = σ_t²/D). The loss becomes
    the ε-prediction error ‖σ_t s_θ + ε‖² (Ho et al. 2020, eq. 14)."""

    def __call__(self, sde: LinearSDE, t: torch.Tensor) -> torch.Tensor:
        return sde.alpha_sigma(t)[1] ** 2


class LikelihoodWeighting(Weighting):
    """λ(t) = g(t)², the likelihood weighting (Song, Durkan, Murray & Ermon 2021, "Maximum
    Likelihood Training of Score-Based Diffusion Models", Thm. 1): with it,
    J_SM = ½ ∫ E λ(t) ‖s_θ − ∇ log p_t‖² dt bounds KL(p_data ‖ p_θ) up to the prior's KL, and the
    denoising loss differs from J_SM by a constant independent of θ (Vincent 2011, §4.2).
    Pair it with ``LogSNRUniformTime`` and ``importance_weighted=True`` for a low-variance estimate
    (Song et al. 2021b's importance sampling with q(t) ∝ g²/σ²)."""

    def __call__(self, sde: LinearSDE, t: torch.Tensor) -> torch.Tensor:
        return sde.diffusion_squared(t)


class EDMWeighting(Weighting):
    """Karras et al. 2022's loss weight λ(σ̃) = (σ̃² + σ_data²)/(σ̃ σ_data)² on ‖D_θ − x₀‖² (§5,
    Table 1, "Ours"), written in score space for any LinearSDE.

    With σ̃ = σ_t/α_t and D = (x + σ_t² s)/α_t (Tweedie), D − x₀ = (σ_t²/α_t)(s + ε/σ_t), so
    ‖D − x₀‖² = σ̃² σ_t² ‖s − ∇ log p_{0t}‖² and the score-space weight is

        λ(t) = σ_t² (σ̃² + σ_data²) / σ_data².

    With EDM preconditioning it makes the effective target of F_θ unit-variance (eq. 8).

    Args:
        sigma_data: σ_data > 0 (0.5 in the paper).
    """

    def __init__(self, sigma_data: float = 0.5) -> None:
        self.sigma_data = check_positive(sigma_data, "sigma_data")

    def __call__(self, sde: LinearSDE, t: torch.Tensor) -> torch.Tensor:
        alpha, sigma = sde.alpha_sigma(t)
        sigma_tilde = sigma / alpha
        return sigma**2 * (sigma_tilde**2 + self.sigma_data**2) / self.sigma_data**2

    def __repr__(self) -> str:
        return f"EDMWeighting(sigma_data={self.sigma_data})"


# -- time distributions --------------------------------------------------------------------------
class TimeDistribution(abc.ABC):
    """A distribution q(t) on [t_min, T] to draw diffusion times from."""

    @abc.abstractmethod
    def sample(self, sde: LinearSDE, n: int, t_min: float, *, generator: torch.Generator | None = None,
               dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
        """n times, ``(n,)``, in [t_min, T]."""

    @abc.abstractmethod
    def density(self, sde: LinearSDE, t: torch.Tensor, t_min: float) -> torch.Tensor:
        """q(t) for ``t: (B,)`` → ``(B,)`` (for importance weighting)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _uniform(n, generator, dtype, device) -> torch.Tensor:
    check_generator(generator)
    dev = device if device is not None else (generator.device if generator is not None else None)
    return torch.rand(n, generator=generator, dtype=dtype, device=dev)


class UniformTime(TimeDistribution):
    """t ~ U[t_min, T] (Song et al. 2021, eq. 7, with Song et al.'s ε = t_min); q = 1/(T − t_min)."""

    def sample(self, sde, n, t_min, *, generator=None, dtype=None, device=None):
        return t_min + (sde.T - t_min) * _uniform(n, generator, dtype, device)

    def density(self, sde, t, t_min):
        return torch.full_like(t, 1.0 / (sde.T - t_min))


class LogSNRUniformTime(TimeDistribution):
    """λ ~ U[λ_T, λ_{t_min}], t = λ⁻¹(λ) (``sde.t_from_log_snr``, exact for every SDE here).

    Its density in t is q(t) = (g(t)²/σ_t²) / (λ_{t_min} − λ_T) (module docstring), the
    importance distribution Song et al. 2021b use for the likelihood weighting: with
    ``LikelihoodWeighting`` and importance weighting the per-sample weight is the constant
    (λ_{t_min} − λ_T)/(T − t_min).
    """

    @staticmethod
    def _range(sde, t_min, like):
        ends = sde.log_snr(torch.tensor([sde.T, t_min], dtype=like.dtype, device=like.device))
        return ends[0], ends[1]

    def sample(self, sde, n, t_min, *, generator=None, dtype=None, device=None):
        u = _uniform(n, generator, dtype, device)
        lam_T, lam_0 = self._range(sde, t_min, u)
        return sde.t_from_log_snr(lam_T + (lam_0 - lam_T) * u).clamp(t_min, sde.T)

    def density(self, sde, t, t_min):
        lam_T, lam_0 = self._range(sde, t_min, t)
        return sde.diffusion_squared(t) / sde.alpha_sigma(t)[1] ** 2 / (lam_0 - lam_T)


class LogNormalNoiseTime(TimeDistribution):
    """ln σ̃ ~ N(P_mean, P_std²) with σ̃ = σ_t/α_t = e^{−λ_t/2} (Karras et al. 2022, §5 and Table 1:
    P_mean = −1.2, P_std = 1.2), then t = λ⁻¹(−2 ln σ̃), clamped to [t_min, T] (the few draws
    outside the SDE's range sit at its ends).

    Density away from the clamped ends: q(t) = N(ln σ̃_t; P_mean, P_std²) · |d ln σ̃/dt| with
    d ln σ̃/dt = −½ dλ/dt = g²/(2σ²).

    Args:
        p_mean: P_mean. p_std: P_std > 0.
    """

    def __init__(self, p_mean: float = -1.2, p_std: float = 1.2) -> None:
        if isinstance(p_mean, bool) or not isinstance(p_mean, (int, float)) or not math.isfinite(p_mean):
            raise ValueError(f"p_mean must be a finite number, got {p_mean!r}")
        self.p_mean = float(p_mean)
        self.p_std = check_positive(p_std, "p_std")

    def sample(self, sde, n, t_min, *, generator=None, dtype=None, device=None):
        check_generator(generator)
        dev = device if device is not None else (generator.device if generator is not None else None)
        ln_sigma = self.p_mean + self.p_std * torch.randn(n, generator=generator, dtype=dtype, device=dev)
        return sde.t_from_log_snr(-2.0 * ln_sigma).clamp(t_min, sde.T)

    def density(self, sde, t, t_min):
        alpha, sigma = sde.alpha_sigma(t)
        z = (torch.log(sigma / alpha) - self.p_mean) / self.p_std
        normal = torch.exp(-0.5 * z * z) / (self.p_std * math.sqrt(2 * math.pi))
        return normal * sde.diffusion_squared(t) / (2.0 * sigma**2)

    def __repr__(self) -> str:
        return f"LogNormalNoiseTime(p_mean={self.p_mean}, p_std={self.p_std})"
