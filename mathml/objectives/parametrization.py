"""Network parametrisations as adapters to the one contract ``score(x, t)``.

A diffusion network may predict the noise ε, the clean data x₀, the velocity v, or a
preconditioned denoiser (EDM). Everything else in mathml (objectives, samplers, likelihoods) speaks
``score(x, t) -> ∇ₓ log p_t(x)``. The wrappers below turn a network ``net(x, t) -> shape of x``
(``x: (B, ...)``, ``t: (B,)``) into that score (a class-conditional ``net(x, t, y)`` receives the
optional labels ``y: (B,)`` of ``score(x, t, y)``, for ``mathml.sde.ClassifierFreeGuidance``); the
functions convert a prediction of one kind into another, given the transition x_t = α_t x₀ + σ_t ε
of a linear SDE (``mathml.sde``, Song et al. 2021, eq. 29). All of them rest on two identities of
that Gaussian transition:

- the conditional score (Vincent 2011, §4.2; Song et al. 2021, eq. 7):
  ∇ₓ log N(x_t; α_t x₀, σ_t² I) = −(x_t − α_t x₀)/σ_t² = −ε/σ_t;
- Tweedie's formula (Efron 2011, "Tweedie's formula and selection bias", eq. 2.8, for the
  scaled Gaussian): E[x₀ | x_t] = (x_t + σ_t² ∇ₓ log p_t(x_t)) / α_t,

so at the optimum ε̂ = −σ_t s, x̂₀ = (x_t + σ_t² s)/α_t, and s = (α_t x̂₀ − x_t)/σ_t².

Per-sample scalars α_t, σ_t are ``(B,)`` tensors (or 0-d), broadcast against data by
``append_dims``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mathml.checks import check_positive, check_tensor
from mathml.sde.base import LinearSDE, append_dims, as_time

Net = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = [
    "DataPrediction",
    "EDMPreconditioning",
    "EpsilonPrediction",
    "VelocityPrediction",
    "data_from_score",
    "edm_coefficients",
    "edm_output_from_score",
    "epsilon_from_score",
    "score_from_data",
    "score_from_epsilon",
    "score_from_velocity",
    "velocity_from_score",
]


def _b(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return append_dims(torch.as_tensor(v, dtype=x.dtype, device=x.device), x.dim())


# -- conversions ---------------------------------------------------------------------------------
def score_from_epsilon(epsilon: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    """s = −ε̂ / σ_t (the conditional score −ε/σ_t, Song et al. 2021, eq. 7; Ho et al. 2020, §3.2).

    Args:
        epsilon: (B, ...) predicted noise ε̂.
        sigma_t: (B,) or 0-d noise scale σ_t.
    """
    return -epsilon / _b(sigma_t, epsilon)


def epsilon_from_score(score: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    """ε̂ = −σ_t s (the inverse of ``score_from_epsilon``). ``score: (B, ...)``, ``sigma_t: (B,)``."""
    return -_b(sigma_t, score) * score


def score_from_data(x: torch.Tensor, x0: torch.Tensor, alpha_t: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    """s = (α_t x̂₀ − x_t) / σ_t² (Tweedie's formula solved for the score; Efron 2011, eq. 2.8).

    Args:
        x: (B, ...) noisy data x_t.
        x0: (B, ...) predicted clean data x̂₀.
        alpha_t, sigma_t: (B,) or 0-d transition coefficients.
    """
    return (_b(alpha_t, x) * x0 - x) / _b(sigma_t, x) ** 2


def data_from_score(x: torch.Tensor, score: torch.Tensor, alpha_t: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    """x̂₀ = (x_t + σ_t² s) / α_t (Tweedie's formula, Efron 2011, eq. 2.8). Shapes as ``score_from_data``."""
    return (x + _b(sigma_t, x) ** 2 * score) / _b(alpha_t, x)


def score_from_velocity(x: torch.Tensor, v: torch.Tensor, alpha_t: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    """The score from a velocity prediction v̂ (Salimans & Ho 2022, "Progressive Distillation",
    §4 and App. D: v = α_t ε − σ_t x₀).

    With x_t = α x₀ + σ ε the map (x₀, ε) → (x_t, v) is the matrix [[α, σ], [−σ, α]] of
    determinant α² + σ², so ε̂ = (σ x_t + α v̂)/(α² + σ²) and x̂₀ = (α x_t − σ v̂)/(α² + σ²)
    (Salimans & Ho's x̂ = α z − σ v̂ when α² + σ² = 1, the VP case); s = −ε̂/σ.

    Args:
        x: (B, ...) noisy data x_t; v: (B, ...) predicted velocity.
        alpha_t, sigma_t: (B,) or 0-d.
    """
    a, s = _b(alpha_t, x), _b(sigma_t, x)
    return -(s * x + a * v) / (s * (a * a + s * s))


def velocity_from_score(x: torch.Tensor, score: torch.Tensor, alpha_t: torch.Tensor, sigma_t: torch.Tensor) -> torch.Tensor:
    """v̂ = α ε̂ − σ x̂₀ with ε̂ = −σ s and x̂₀ = (x + σ² s)/α, i.e. v̂ = −σ (x + (α² + σ²) s)/α
    (Salimans & Ho 2022, §4). Shapes as ``score_from_velocity``."""
    a, s = _b(alpha_t, x), _b(sigma_t, x)
    return -s * (x + (a * a + s * s) * score) / a


def edm_coefficients(sigma: torch.Tensor, sigma_data: float) -> tuple[torch.Tensor, ...]:
    """EDM preconditioning (Karras et al. 2022, "Elucidating the Design Space...", Table 1, "Ours";
    derived in App. B.6):

        c_skip = σ_data² / (σ² + σ_data²),     c_out = σ σ_data / √(σ² + σ_data²),
        c_in   = 1 / √(σ² + σ_data²),          c_noise = ¼ ln σ.

    Args:
        sigma: noise levels σ, any shape.
        sigma_data: σ_data > 0, the data's standard deviation (0.5 in the paper).

    Returns:
        (c_skip, c_out, c_in, c_noise), each of ``sigma``'s shape.
    """
    sd2 = sigma_data**2
    total = sigma**2 + sd2
    return sd2 / total, sigma * sigma_data / total.sqrt(), total.rsqrt(), 0.25 * torch.log(sigma)


def edm_output_from_score(x: torch.Tensor, score: torch.Tensor, alpha_t: torch.Tensor, sigma_t: torch.Tensor,
                          sigma_data: float) -> torch.Tensor:
    """The raw network output F that ``EDMPreconditioning`` turns into ``score`` (the inverse of
    Karras et al. 2022, eq. 7): with x̃ = x/α_t, σ̃ = σ_t/α_t and D = (x + σ_t² s)/α_t (Tweedie),

        F = (D − c_skip(σ̃) x̃) / c_out(σ̃)        (F's training target when s is the true score, eq. 8).

    Args:
        x: (B, ...) noisy data x_t; score: (B, ...).
        alpha_t, sigma_t: (B,) or 0-d. sigma_data: σ_data > 0.
    """
    a = _b(alpha_t, x)
    c_skip, c_out, _, _ = edm_coefficients(torch.as_tensor(sigma_t / alpha_t, dtype=x.dtype, device=x.device),
                                           check_positive(sigma_data, "sigma_data"))
    return (data_from_score(x, score, alpha_t, sigma_t) - _b(c_skip, x) * x / a) / _b(c_out, x)


# -- wrappers ------------------------------------------------------------------------------------
class _Parametrization(nn.Module):
    """Holds ``net`` and ``sde``; subclasses give ``forward(x, t) -> score``."""

    def __init__(self, net: Net, sde: LinearSDE) -> None:
        super().__init__()
        if not callable(net):
            raise TypeError(f"net must be a callable net(x, t) -> tensor of x's shape, got {type(net).__name__}")
        if not isinstance(sde, LinearSDE):
            raise TypeError(f"sde must be a mathml.sde LinearSDE, got {type(sde).__name__}")
        self.net = net
        self.sde = sde

    def _inputs(self, x: torch.Tensor, t: torch.Tensor):
        check_tensor(x, "x", min_dim=1, shape_doc="(B, ...)")
        t = as_time(t, x)
        alpha, sigma = self.sde.alpha_sigma(t)
        return t, alpha, sigma

    def _call_net(self, x: torch.Tensor, c: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        # y: optional (B,) class labels, passed on to a class-conditional net(x, t, y) (e.g. mathml.layers.UNet).
        out = self.net(x, c) if y is None else self.net(x, c, y)
        if out.shape != x.shape:
            raise ValueError(f"net(x, t) must return x's shape {tuple(x.shape)}, got {tuple(out.shape)}")
        return out

    def denoise(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """x̂₀ = E[x₀ | x_t] implied by this score (Tweedie's formula). ``x: (B, ...)``, ``t: (B,)``."""
        t, alpha, sigma = self._inputs(x, t)
        return data_from_score(x, self(x, t, y), alpha, sigma)


class EpsilonPrediction(_Parametrization):
    """score(x, t) = −net(x, t) / σ_t for a network predicting ε (Ho et al. 2020, eq. 11–12;
    Song et al. 2021, eq. 7).

    Args:
        net: ``net(x (B, ...), t (B,)) -> ε̂ (B, ...)``.
        sde: the LinearSDE giving σ_t.
    """

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, _, sigma = self._inputs(x, t)
        return score_from_epsilon(self._call_net(x, t, y), sigma)


class DataPrediction(_Parametrization):
    """score(x, t) = (α_t net(x, t) − x)/σ_t² for a network predicting x₀ (Tweedie's formula,
    Efron 2011, eq. 2.8).

    Args:
        net: ``net(x (B, ...), t (B,)) -> x̂₀ (B, ...)``.
        sde: the LinearSDE giving α_t, σ_t.
    """

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, alpha, sigma = self._inputs(x, t)
        return score_from_data(x, self._call_net(x, t, y), alpha, sigma)


class VelocityPrediction(_Parametrization):
    """score(x, t) from a network predicting v = α_t ε − σ_t x₀ (Salimans & Ho 2022, §4); see
    ``score_from_velocity``.

    Args:
        net: ``net(x (B, ...), t (B,)) -> v̂ (B, ...)``.
        sde: the LinearSDE giving α_t, σ_t.
    """

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, alpha, sigma = self._inputs(x, t)
        return score_from_velocity(x, self._call_net(x, t, y), alpha, sigma)


class EDMPreconditioning(_Parametrization):
    """The EDM denoiser (Karras et al. 2022, eq. 7 with Table 1) as a score, for any LinearSDE.

    Karras et al. write x = s(t) x̃ with x̃ ~ p(x̃; σ̃), the data blurred by noise of level σ̃
    (their eq. 4 and §4); for a linear SDE s = α_t and σ̃ = σ_t/α_t, x̃ = x/α_t. The denoiser is

        D_θ(x̃; σ̃) = c_skip(σ̃) x̃ + c_out(σ̃) F_θ(c_in(σ̃) x̃, c_noise(σ̃))          (eq. 7)

    with the coefficients of ``edm_coefficients``, and the score of x follows from Tweedie's
    formula in x̃ (Karras et al. eq. 3, ∇ log p(x̃; σ̃) = (D − x̃)/σ̃²) and the chain rule x = α x̃:

        ∇ₓ log p_t(x) = (D_θ(x̃; σ̃) − x̃) / (α_t σ̃²) = (α_t D_θ − x) / σ_t².

    Args:
        net: F_θ, ``net(c_in x̃ (B, ...), c_noise (B,)) -> (B, ...)``.
        sde: any LinearSDE (EDMSDE gives α = 1, σ̃ = t; VP works too).
        sigma_data: σ_data > 0 (0.5 in the paper).
    """

    def __init__(self, net: Net, sde: LinearSDE, sigma_data: float = 0.5) -> None:
        super().__init__(net, sde)
        self.sigma_data = check_positive(sigma_data, "sigma_data")

    def denoise(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """D_θ(x̃; σ̃) with x̃ = x/α_t, σ̃ = σ_t/α_t (eq. 7): the clean-data estimate, (B, ...)."""
        t, alpha, sigma = self._inputs(x, t)
        return self._denoise(x, alpha, sigma, y)

    def _denoise(self, x, alpha, sigma, y=None) -> torch.Tensor:
        sigma_tilde = sigma / alpha
        c_skip, c_out, c_in, c_noise = edm_coefficients(sigma_tilde, self.sigma_data)
        x_tilde = x / _b(alpha, x)
        return _b(c_skip, x) * x_tilde + _b(c_out, x) * self._call_net(_b(c_in, x) * x_tilde, c_noise, y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        t, alpha, sigma = self._inputs(x, t)
        return score_from_data(x, self._denoise(x, alpha, sigma, y), alpha, sigma)

    def extra_repr(self) -> str:
        return f"sigma_data={self.sigma_data}"

