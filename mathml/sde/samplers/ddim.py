"""DDIM (Song, Meng & Ermon 2021, "Denoising Diffusion Implicit Models", ICLR, eq. 12) for any
linear SDE."""

from __future__ import annotations

import math

import torch

from mathml.checks import check_nonnegative

from ..schedules import log_snr_grid
from ._common import Schedule, Score, check_common, declare, denoise_step, make_grid


@declare(order=1.0, nfe_per_step=1)
def ddim(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
         schedule: Schedule | torch.Tensor = log_snr_grid, denoise: bool = False, eta: float = 0.0) -> torch.Tensor:
    """DDIM from t = t_i to s = t_{i+1} (Song, Meng & Ermon 2021, eq. 12, with their √ᾱ = our α_t
    and √(1 − ᾱ) = our σ_t, so it holds for every linear SDE):

        x̂₀ = (x_t + σ_t² s(x_t, t)) / α_t,   ε̂ = −σ_t s(x_t, t),
        x_s = α_s x̂₀ + √(σ_s² − c²) ε̂ + c z,   z ~ N(0, I),
        c = η σ_s √(1 − e^{2(λ_t − λ_s)})   (eq. 16: η = 1 is DDPM's ancestral step).

    With η = 0 this is the exact first-order exponential integrator of the probability-flow ODE in
    λ = log(α/σ) (Lu et al. 2022, "DPM-Solver", eq. 3.7 and §4.1; also Euler's method in
    (x / α_t, σ̃_t)): global order 1. One score evaluation per step; ``generator`` is used only when
    η > 0.

    Args:
        sde, score, x_T, steps, generator, denoise: as in ``euler_maruyama`` (x_T: (B, ...)).
        schedule: default ``log_snr_grid`` (equal steps in λ).
        eta: η ≥ 0.

    Returns:
        (B, ...) samples at t_N.
    """
    steps = check_common(sde, score, x_T, steps, generator)
    eta = check_nonnegative(eta, "eta")
    grid = make_grid(sde, steps, schedule, x_T)
    al, sg, lam = grid.alpha, grid.sigma, grid.lam
    coef = []
    for i in range(steps):
        c = eta * sg[i + 1] * math.sqrt(-math.expm1(2.0 * (lam[i] - lam[i + 1])))
        a = al[i + 1] / al[i]
        b = sg[i] * (a * sg[i] - math.sqrt(max(sg[i + 1] ** 2 - c * c, 0.0)))  # coefficient of s
        coef.append((a, b, c))
    x, n = x_T, x_T.shape[0]
    for i, (a, b, c) in enumerate(coef):
        x = torch.add(x, score(x, grid.time(i, n)), alpha=b / a).mul_(a)
        if c > 0.0:
            x = x.add_(torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device), alpha=c)
    return denoise_step(score, x, grid) if denoise else x
