"""Denoising score matching over a linear SDE (Vincent 2011; Song et al. 2021, eq. 7).

The weighted objective over continuous time (Song et al. 2021, "Score-Based Generative Modeling
through Stochastic Differential Equations", ICLR, eq. 7) is

    J(θ) = E_{t ~ q} λ(t) E_{x₀} E_{x_t | x₀} ‖ s_θ(x_t, t) − ∇ log p_{0t}(x_t | x₀) ‖²,

with x_t = α_t x₀ + σ_t ε, ε ~ N(0, I), and ∇ log p_{0t}(x_t | x₀) = −ε/σ_t. Denoising score
matching (Vincent 2011, "A Connection Between Score Matching and Denoising Autoencoders",
§4.2) makes its minimiser the marginal score ∇ log p_t. The per-sample estimate is

    loss = w(t) ‖ σ_t s_θ(x_t, t) + ε ‖²,      w(t) = λ(t) / σ_t²,

written in ε-space, where the target has unit scale at every t (‖σ_t s + ε‖² is the ε-prediction
error of Ho et al. 2020, eq. 14). ``importance_weighted=True`` multiplies w by
u(t)/q(t) = 1/((T − t_min) q(t)), so that the loss estimates the uniform-time objective of eq. 7
whatever the proposal q (an importance sampler, Song, Durkan, Murray & Ermon 2021).

Gaussian data, the analytic floor used by the tests: for x₀ ~ N(m, s² I) in D dims the exact score
at t is −(x − α m)/(α² s² + σ²); with x − α m = α s z + σ ε (z, ε independent standard normals),

    σ s(x_t) + ε = α s (α s ε − σ z)/(α² s² + σ²),   E‖σ s + ε‖² = D α² s²/(α² s² + σ²),

the smallest value of E‖σ s_θ + ε‖² at that t.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mathml.checks import check_generator, check_tensor
from mathml.sde.base import LinearSDE, append_dims

from .weighting import SigmaSquaredWeighting, TimeDistribution, UniformTime, Weighting

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["DenoisingScoreMatching"]


def _check_t_min(sde: LinearSDE, t_min: float | None) -> float:
    if t_min is None:
        return float(sde.t_min)
    if isinstance(t_min, bool) or not isinstance(t_min, (int, float)) or not 0 < t_min < sde.T:
        raise ValueError(f"t_min must be a number in (0, T) = (0, {sde.T}) or None (the SDE's t_min), got {t_min!r}")
    return float(t_min)


def _check_sde(sde: object) -> LinearSDE:
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"sde must be a mathml.sde LinearSDE (VPSDE, SubVPSDE, VESDE, EDMSDE), got {type(sde).__name__}")
    return sde


class DenoisingScoreMatching(nn.Module):
    """Per-sample denoising score matching terms over a LinearSDE (see the module docstring).

    Args:
        sde: the forward SDE (gives α_t, σ_t, g(t)², T).
        weighting: λ(t), a ``Weighting`` object or any callable ``(sde, t (B,)) -> (B,)``:
            ``SigmaSquaredWeighting()`` (default; Song et al. 2021), ``LikelihoodWeighting()``
            (Song et al. 2021b), ``EDMWeighting(sigma_data)`` (Karras et al. 2022).
        time_distribution: q(t), a ``TimeDistribution``: ``UniformTime()`` (default),
            ``LogSNRUniformTime()``, ``LogNormalNoiseTime(p_mean, p_std)`` (EDM).
        t_min: smallest time drawn (None: ``sde.t_min``; Song et al. 2021b train likelihood models
            with 1e-5).
        importance_weighted: multiply by 1/((T − t_min) q(t)) so the loss estimates the
            uniform-time objective whatever q (False: the objective is E_{t~q}, as in EDM).

    ``forward(score_model, x0, *, generator=None)``:
        score_model: ``score(x (B, ...), t (B,)) -> (B, ...)`` (a network, or a parametrisation
            wrapper such as ``EpsilonPrediction`` / ``EDMPreconditioning``).
        x0: (B, ...) data. generator: draws t and ε.

    Returns:
        dict of (B,) tensors: ``loss`` = ``weight`` · ``epsilon_error``; ``epsilon_error`` =
        ‖σ_t s_θ(x_t, t) + ε‖² (summed over data dims); ``weight`` = λ(t)/σ_t² (times the
        importance ratio when enabled); ``t``, the times drawn.
    """

    def __init__(self, sde: LinearSDE, *, weighting: Weighting | Callable | None = None,
                 time_distribution: TimeDistribution | None = None, t_min: float | None = None,
                 importance_weighted: bool = False) -> None:
        super().__init__()
        self.sde = _check_sde(sde)
        self.weighting = SigmaSquaredWeighting() if weighting is None else weighting
        if not callable(self.weighting):
            raise TypeError(f"weighting must be a callable weighting(sde, t) -> (B,), e.g. SigmaSquaredWeighting(), "
                            f"got {type(weighting).__name__}")
        self.time_distribution = UniformTime() if time_distribution is None else time_distribution
        if not isinstance(self.time_distribution, TimeDistribution):
            raise TypeError(f"time_distribution must be a TimeDistribution (UniformTime(), LogSNRUniformTime(), "
                            f"LogNormalNoiseTime()), got {type(time_distribution).__name__}")
        self.t_min = _check_t_min(sde, t_min)
        if not isinstance(importance_weighted, bool):
            raise TypeError(f"importance_weighted must be a bool, got {importance_weighted!r}")
        self.importance_weighted = importance_weighted

    def sample_times(self, n: int, *, generator=None, dtype=None, device=None) -> torch.Tensor:
        """n times ``(n,)`` from the time distribution on [t_min, T]."""
        return self.time_distribution.sample(self.sde, n, self.t_min, generator=generator, dtype=dtype, device=device)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """w(t) = λ(t)/σ_t² (× 1/((T − t_min) q(t)) when importance weighted), ``t: (B,)`` → ``(B,)``."""
        w = self.weighting(self.sde, t) / self.sde.alpha_sigma(t)[1] ** 2
        if self.importance_weighted:
            w = w / ((self.sde.T - self.t_min) * self.time_distribution.density(self.sde, t, self.t_min))
        return w

    def terms_at(self, score_model: Score, x0: torch.Tensor, t: torch.Tensor, epsilon: torch.Tensor) -> dict[str, torch.Tensor]:
        """The terms at given times ``t: (B,)`` and noise ``epsilon: (B, ...)`` (no randomness)."""
        alpha, sigma = self.sde.alpha_sigma(t)
        sigma_b = append_dims(sigma, x0.dim())
        x_t = append_dims(alpha, x0.dim()) * x0 + sigma_b * epsilon
        s = score_model(x_t, t)
        if not isinstance(s, torch.Tensor) or s.shape != x0.shape:
            raise ValueError(f"score_model(x, t) must return a tensor of x0's shape {tuple(x0.shape)}, "
                             f"got {tuple(getattr(s, 'shape', ()))}")
        epsilon_error = (sigma_b * s + epsilon).flatten(1).pow(2).sum(1)
        weight = self.weight(t)
        return {"loss": weight * epsilon_error, "epsilon_error": epsilon_error, "weight": weight, "t": t}

    def forward(self, score_model: Score, x0: torch.Tensor, *, generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        if not callable(score_model):
            raise TypeError(f"score_model must be a callable score(x, t), got {type(score_model).__name__}")
        check_tensor(x0, "x0", min_dim=2, shape_doc="(B, ...)")
        check_generator(generator)
        t = self.sample_times(x0.shape[0], generator=generator, dtype=x0.dtype, device=x0.device)
        epsilon = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
        return self.terms_at(score_model, x0, t, epsilon)

    def extra_repr(self) -> str:
        return (f"weighting={self.weighting!r}, time_distribution={self.time_distribution!r}, "
                f"t_min={self.t_min}, importance_weighted={self.importance_weighted}")
