"""Euler–Maruyama on the reverse-time SDE (Song et al. 2021, "Score-Based Generative Modeling
through SDEs", ICLR, eq. 6; Kloeden & Platen 1992, "Numerical Solution of SDEs", §9.1)."""

from __future__ import annotations

import math

import torch

from ..schedules import uniform_grid
from ._common import Schedule, Score, check_common, declare, denoise_step, make_grid


def _check_brownian(brownian, generator, sde, x_T) -> None:
    if brownian is None:
        return
    if generator is not None:
        raise ValueError("give either generator or brownian, not both")
    if not callable(brownian):
        raise TypeError(f"brownian must be a torchsde Brownian object (e.g. torchsde.BrownianInterval), "
                        f"got {type(brownian).__name__}")
    size = tuple(getattr(brownian, "shape", ()))
    if math.prod(size) != x_T.numel():
        raise ValueError(f"brownian must have {x_T.numel()} elements (shape (B, D) = ({x_T.shape[0]}, "
                         f"{x_T[0].numel()}) or x_T's shape {tuple(x_T.shape)}), got shape {size}")


@declare(order=1.0, nfe_per_step=1)
def euler_maruyama(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
                   schedule: Schedule | torch.Tensor = uniform_grid, denoise: bool = False,
                   brownian=None) -> torch.Tensor:
    """Sample by Euler–Maruyama on the reverse SDE dx = [f(t) x − g(t)² ∇log p_t(x)] dt + g(t) dw̄
    (Song et al. 2021, eq. 6), from t_i to t_{i+1} < t_i with h_i = t_i − t_{i+1}:

        x_{i+1} = x_i − h_i [f(t_i) x_i − g(t_i)² s(x_i, t_i)] + g(t_i) ΔW_i,   ΔW_i ~ N(0, h_i I).

    The noise of the reverse SDE is additive (g depends on t only), so Euler–Maruyama has strong
    order 1 here (Kloeden & Platen 1992, §10.2, Milstein's correction vanishes); declared ``order = 1``.
    One score evaluation per step.

    Args:
        sde: the diffusion (a ``LinearSDE``).
        score: score(x (B, ...), t (B,)) -> (B, ...).
        x_T: (B, ...) starting states at t = T (e.g. ``sde.prior_sample``).
        steps: N ≥ 1 solver steps.
        generator: torch.Generator for the increments ΔW_i (None: torch's global generator).
        schedule: schedule function or explicit (N + 1,) decreasing times (default uniform in t).
        denoise: finish with Tweedie's x̂₀ = (x + σ² s) / α at t_N (one more evaluation).
        brownian: instead of ``generator``, a torchsde Brownian object (e.g.
            ``torchsde.BrownianInterval(t0=0, t1=T − t_N, size=(B, D))``) in the reverse time s = T − t;
            ΔW_i = brownian(s_i, s_{i+1}). The same path at every step size gives strong-error tests.

    Returns:
        (B, ...) samples at t_N (or x̂₀ with ``denoise``).
    """
    steps = check_common(sde, score, x_T, steps, generator)
    _check_brownian(brownian, generator, sde, x_T)
    grid = make_grid(sde, steps, schedule, x_T)
    t = torch.tensor(grid.t, dtype=torch.float64)
    f = sde.drift_coefficient(t).tolist()
    g2 = sde.diffusion_squared(t).tolist()
    T = float(sde.T)
    x, b = x_T, x_T.shape[0]
    for i in range(steps):
        h = grid.t[i] - grid.t[i + 1]
        s = score(x, grid.time(i, b))
        if brownian is None:
            dw = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            c = math.sqrt(g2[i] * h)
        else:
            dw = brownian(T - grid.t[i], T - grid.t[i + 1]).reshape(x.shape)
            c = math.sqrt(g2[i])
        # x + h (−f x + g² s) + g ΔW, as (1 − h f) x + (h g²) s + c z
        x = torch.add(x, s, alpha=h * g2[i] / (1.0 - h * f[i])).mul_(1.0 - h * f[i]).add_(dw, alpha=c)
    return denoise_step(score, x, grid) if denoise else x
