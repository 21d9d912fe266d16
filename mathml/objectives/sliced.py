"""Sliced score matching (Song, Garg, Shi & Ermon 2019, "Sliced Score Matching: A Scalable
Approach to Density and Score Estimation", UAI).

Hyvärinen's score matching (Hyvärinen 2005, "Estimation of Non-Normalized Statistical Models by
Score Matching", eq. 4; after integration by parts, Thm. 1)

    J(θ) = E_{p_d}[ tr(∇ₓ s_θ(x)) + ½ ‖s_θ(x)‖² ]  =  ½ E_{p_d}‖s_θ − ∇ log p_d‖² − ½ E_{p_d}‖∇ log p_d‖²

needs the full Jacobian trace. Projecting onto random directions v with E[v vᵀ] = I gives the
sliced objective (Song et al. 2019, eqs. 6–7), with the same expectation,

    J(θ; p_v) = E_{p_v} E_{p_d}[ vᵀ ∇ₓ s_θ(x) v + ½ (vᵀ s_θ(x))² ],

estimated with M projections per data point (eq. 8); vᵀ∇ₓ s v = vᵀ ∇ₓ(vᵀ s) costs one
Jacobian-vector product by autograd. When E[v vᵀ] = I (Gaussian or Rademacher v) the second term
can be integrated in closed form, E_v (vᵀ s)² = ‖s‖², the variance-reduced SSM-VR (Song et al. 2019,
§3): E[vᵀ ∇ₓ s v + ½ ‖s‖²].

Noise-conditional (with an SDE): x_t = α_t x₀ + σ_t ε at t ~ q(t), and the per-sample term
λ(t) J(θ(·, t); p_v) at x_t estimates E_t λ(t) [½ E_{p_t}‖s_θ − ∇ log p_t‖² − const(t)], the
weighted Fisher divergence to the diffused marginals (the quantity DSM also estimates, up to a
different constant).
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import torch
from torch import nn

from mathml.checks import check_generator, check_positive_int, check_tensor
from mathml.sde.base import LinearSDE, append_dims

from .denoising import _check_t_min
from .weighting import SigmaSquaredWeighting, TimeDistribution, UniformTime, Weighting

__all__ = ["GaussianProjection", "Projection", "RademacherProjection", "SlicedScoreMatching"]


class Projection(abc.ABC):
    """A distribution p_v of projection (probe) vectors with E[v vᵀ] = I."""

    @abc.abstractmethod
    def sample(self, shape, *, generator: torch.Generator | None = None, dtype=None, device=None) -> torch.Tensor:
        """Draws of ``shape``; every coordinate independent with mean 0 and variance 1."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class RademacherProjection(Projection):
    """v with independent ±1 coordinates (the lowest-variance Hutchinson probe: Hutchinson 1989)."""

    def sample(self, shape, *, generator=None, dtype=None, device=None):
        bits = torch.randint(0, 2, tuple(shape), generator=generator, device=device)
        return (2 * bits - 1).to(dtype or torch.get_default_dtype())


class GaussianProjection(Projection):
    """v ~ N(0, I)."""

    def sample(self, shape, *, generator=None, dtype=None, device=None):
        return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device)


class SlicedScoreMatching(nn.Module):
    """Per-sample sliced score matching terms (module docstring), on the data or, with an SDE, on
    its perturbed marginals.

    Args:
        sde: None (plain SSM on the data; the model is ``score(x)``) or a LinearSDE (noise-conditional;
            the model is ``score(x, t)``).
        n_projections: M ≥ 1 projections per data point (Song et al. 2019, eq. 8).
        projection: p_v, ``RademacherProjection()`` (default) or ``GaussianProjection()``.
        variance_reduced: replace ½(vᵀs)² by its expectation ½‖s‖² (SSM-VR; needs E[v vᵀ] = I,
            true of both projections here).
        weighting, time_distribution, t_min: with an SDE, λ(t) (default σ_t², which keeps the terms
            O(D) at every t), q(t) (default uniform) and the smallest time (default ``sde.t_min``),
            as in ``DenoisingScoreMatching``.

    ``forward(score_model, x, *, generator=None)``: ``x: (B, ...)`` data; returns a dict of (B,)
    tensors: ``loss`` (= weight · (jacobian + norm)), ``jacobian`` (mean over projections of
    vᵀ∇ₓ s v), ``norm`` (½(vᵀs)² or ½‖s‖², averaged likewise) and, with an SDE, ``t`` and ``weight``.
    """

    def __init__(self, sde: LinearSDE | None = None, *, n_projections: int = 1,
                 projection: Projection | None = None, variance_reduced: bool = False,
                 weighting: Weighting | Callable | None = None, time_distribution: TimeDistribution | None = None,
                 t_min: float | None = None) -> None:
        super().__init__()
        if sde is not None and not isinstance(sde, LinearSDE):
            raise TypeError(f"sde must be None or a mathml.sde LinearSDE, got {type(sde).__name__}")
        self.sde = sde
        self.n_projections = check_positive_int(n_projections, "n_projections")
        self.projection = RademacherProjection() if projection is None else projection
        if not isinstance(self.projection, Projection):
            raise TypeError(f"projection must be a Projection (RademacherProjection(), GaussianProjection()), "
                            f"got {type(projection).__name__}")
        if not isinstance(variance_reduced, bool):
            raise TypeError(f"variance_reduced must be a bool, got {variance_reduced!r}")
        self.variance_reduced = variance_reduced
        self.weighting = SigmaSquaredWeighting() if weighting is None else weighting
        if not callable(self.weighting):
            raise TypeError(f"weighting must be a callable weighting(sde, t) -> (B,), got {type(weighting).__name__}")
        self.time_distribution = UniformTime() if time_distribution is None else time_distribution
        if not isinstance(self.time_distribution, TimeDistribution):
            raise TypeError(f"time_distribution must be a TimeDistribution, got {type(time_distribution).__name__}")
        if sde is not None:
            self.t_min = _check_t_min(sde, t_min)
        elif t_min is not None:
            raise ValueError("t_min needs an sde (it is the smallest diffusion time), got sde=None")

    def sliced_terms(self, score: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *,
                     generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(jacobian, norm), each (B,): the two terms of eq. 8 for ``score(x (B·M, ...))`` at ``x: (B, ...)``,
        averaged over the M projections."""
        b, m = x.shape[0], self.n_projections
        x_rep = x.detach().unsqueeze(0).expand(m, *x.shape).reshape(m * b, *x.shape[1:]).requires_grad_(True)
        v = self.projection.sample(x_rep.shape, generator=generator, dtype=x.dtype, device=x.device)
        with torch.enable_grad():
            s = score(x_rep)
            if not isinstance(s, torch.Tensor) or s.shape != x_rep.shape:
                raise ValueError(f"score_model must return a tensor of x's shape {tuple(x_rep.shape)}, "
                                 f"got {tuple(getattr(s, 'shape', ()))}")
            v_s = (v * s).flatten(1).sum(1)  # vᵀ s
            (grad,) = torch.autograd.grad(v_s.sum(), x_rep, create_graph=True)  # ∇ₓ(vᵀ s) = Jᵀ v
        jacobian = (grad * v).flatten(1).sum(1)  # vᵀ J v
        norm = 0.5 * (s.flatten(1).pow(2).sum(1) if self.variance_reduced else v_s.pow(2))
        return jacobian.reshape(m, b).mean(0), norm.reshape(m, b).mean(0)

    def forward(self, score_model: Callable, x: torch.Tensor, *, generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        if not callable(score_model):
            raise TypeError(f"score_model must be callable, got {type(score_model).__name__}")
        check_tensor(x, "x", min_dim=2, shape_doc="(B, ...)")
        check_generator(generator)
        if self.sde is None:
            jacobian, norm = self.sliced_terms(score_model, x, generator=generator)
            return {"loss": jacobian + norm, "jacobian": jacobian, "norm": norm}
        b, m = x.shape[0], self.n_projections
        t = self.time_distribution.sample(self.sde, b, self.t_min, generator=generator, dtype=x.dtype, device=x.device)
        alpha, sigma = self.sde.alpha_sigma(t)
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x_t = append_dims(alpha, x.dim()) * x + append_dims(sigma, x.dim()) * eps
        t_rep = t.repeat(m)
        jacobian, norm = self.sliced_terms(lambda y: score_model(y, t_rep), x_t, generator=generator)
        weight = self.weighting(self.sde, t)
        return {"loss": weight * (jacobian + norm), "jacobian": jacobian, "norm": norm, "t": t, "weight": weight}

    def extra_repr(self) -> str:
        return (f"n_projections={self.n_projections}, projection={self.projection!r}, "
                f"variance_reduced={self.variance_reduced}")
