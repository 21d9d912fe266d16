"""Time grids for diffusion samplers: decreasing ``(steps + 1,)`` tensors from T down to t_min.

Every schedule places its points in some reparametrisation of time and maps them back to the
SDE's own time t through the SDE's closed forms. Two quantities of a linear SDE with transition
x_t | x₀ ~ N(α_t x₀, σ_t² I) (``mathml.sde.base``) are used:

    σ̃_t = σ_t / α_t          the noise level of the scaled state x̃ = x / α_t (Karras et al. 2022,
                             "Elucidating the Design Space of Diffusion-Based Generative Models",
                             NeurIPS, §4 and eq. 4 with s(t) = α_t, σ(t) = σ̃_t);
    λ_t = log(α_t² / σ_t²) = −2 log σ̃_t    the log signal-to-noise ratio (``sde.log_snr``), inverted
                             in closed form by ``sde.t_from_log_snr``.

Grids are computed in float64 and cast to ``dtype`` at the end; their endpoints are exactly T and
t_min. A schedule is any callable ``schedule(sde, steps, *, t_min=None, dtype=None, device=None)``
with this contract, so users can pass their own to every sampler.
"""

from __future__ import annotations

import math

import torch

from mathml.checks import check_positive, check_positive_int

from .base import LinearSDE

__all__ = ["karras_grid", "log_snr_grid", "uniform_grid", "warped_log_snr_grid"]


def _endpoints(sde: LinearSDE, steps: int, t_min: float | None) -> tuple[int, float, float]:
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"sde must be a mathml.sde LinearSDE (VPSDE, SubVPSDE, VESDE, EDMSDE), got {type(sde).__name__}")
    steps = check_positive_int(steps, "steps")
    t_end = sde.t_min if t_min is None else check_positive(t_min, "t_min")
    if not t_end < sde.T:
        raise ValueError(f"t_min must be below T = {sde.T}, got {t_end}")
    return steps, float(sde.T), float(t_end)


def _finish(t: torch.Tensor, t_start: float, t_end: float, dtype, device) -> torch.Tensor:
    """Pin the endpoints exactly (the round trip through λ may move them by an ulp), check, cast."""
    values = t.tolist()
    values[0], values[-1] = t_start, t_end
    if any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError("the schedule is not strictly decreasing at this resolution; use fewer steps or a larger t_min")
    return torch.tensor(values, dtype=dtype or torch.get_default_dtype(), device=device)


def uniform_grid(sde: LinearSDE, steps: int, *, t_min: float | None = None, dtype=None, device=None) -> torch.Tensor:
    """t_i = T + (i / N)(t_min − T), i = 0..N: equal steps in the SDE's own time (Song et al. 2021,
    "Score-Based Generative Modeling through SDEs", ICLR, App. C and G).

    Args:
        sde: the diffusion.
        steps: N ≥ 1, the number of intervals.
        t_min: the last time (default ``sde.t_min``).
        dtype, device: of the result (default: torch's default dtype, CPU).

    Returns:
        (N + 1,) times, strictly decreasing from T to t_min.
    """
    steps, t0, t1 = _endpoints(sde, steps, t_min)
    t = torch.linspace(t0, t1, steps + 1, dtype=torch.float64)
    return _finish(t, t0, t1, dtype, device)


def karras_grid(sde: LinearSDE, steps: int, *, rho: float = 7.0, t_min: float | None = None,
                dtype=None, device=None) -> torch.Tensor:
    """Karras et al. 2022, eq. 5, on the scaled noise level σ̃ = σ_t / α_t:

        σ̃_i = (σ̃_max^{1/ρ} + (i / N)(σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ,   i = 0..N,

    with σ̃_max = σ̃_T and σ̃_min = σ̃_{t_min}, mapped back by t_i = t_from_log_snr(−2 log σ̃_i). For
    ``EDMSDE`` (σ_t = t, α_t = 1) this is the EDM schedule itself. ρ = 7 is Karras et al.'s choice;
    larger ρ puts more steps at low noise, ρ = 1 is uniform in σ̃.

    Args:
        sde: the diffusion.
        steps: N ≥ 1.
        rho: ρ > 0.
        t_min, dtype, device: as in ``uniform_grid``.

    Returns:
        (N + 1,) times, strictly decreasing from T to t_min.
    """
    steps, t0, t1 = _endpoints(sde, steps, t_min)
    rho = check_positive(rho, "rho")
    lam = sde.log_snr(torch.tensor([t0, t1], dtype=torch.float64))
    sigma_max, sigma_min = torch.exp(-0.5 * lam).tolist()  # σ̃ = e^{−λ/2}
    i = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    sigma = (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return _finish(sde.t_from_log_snr(-2.0 * torch.log(sigma)), t0, t1, dtype, device)


def log_snr_grid(sde: LinearSDE, steps: int, *, t_min: float | None = None, dtype=None, device=None) -> torch.Tensor:
    """Equal steps in the log-SNR λ_t = log(α_t² / σ_t²), the "logSNR" time steps of Lu et al. 2022
    ("DPM-Solver", NeurIPS, §3.3 and App. D.1): λ_i = λ_T + (i / N)(λ_{t_min} − λ_T), t_i =
    t_from_log_snr(λ_i). Exponential integrators (DDIM, DPM-Solver++) step in λ, so this grid makes
    every step h = λ_{i+1} − λ_i the same.

    Args and returns: as in ``uniform_grid``.
    """
    steps, t0, t1 = _endpoints(sde, steps, t_min)
    lam0, lam1 = sde.log_snr(torch.tensor([t0, t1], dtype=torch.float64)).tolist()
    lam = torch.linspace(lam0, lam1, steps + 1, dtype=torch.float64)
    return _finish(sde.t_from_log_snr(lam), t0, t1, dtype, device)


def warped_log_snr_grid(sde: LinearSDE, steps: int, *, warp: float = 0.3, t_min: float | None = None,
                        dtype=None, device=None) -> torch.Tensor:
    """A log-SNR grid with shorter steps in the middle of the λ range and longer ones at its ends:

        λ_i = λ_T + (λ_{t_min} − λ_T) F(i / N),   F(u) = u + (w / 2π) sin(2πu),   0 ≤ w < 1,

    so the step in λ is proportional to F′(u) = 1 + w cos(2πu): (1 + w) times the uniform step at
    both ends, (1 − w) times it at the midpoint λ = (λ_T + λ_{t_min}) / 2 (σ̃ ≈ 1.3 for the default
    VPSDE). w = 0 is ``log_snr_grid``. This is mathml's construction (not from a paper): for a
    probability-flow solver stepping in λ, the local error of an exponential integrator is largest at
    intermediate noise, where the denoiser moves between modes, and smallest at the ends (measured
    per step on Gaussian mixtures). The default w = 0.3 was tuned with ``exponential_adams`` on three
    tuning targets (see there), not on any benchmark target.

    Args:
        sde, steps, t_min, dtype, device: as in ``uniform_grid``.
        warp: w in [0, 1).

    Returns:
        (N + 1,) times, strictly decreasing from T to t_min.
    """
    steps, t0, t1 = _endpoints(sde, steps, t_min)
    if isinstance(warp, bool) or not isinstance(warp, (int, float)) or not 0.0 <= warp < 1.0:
        raise ValueError(f"warp must be a number in [0, 1), got {warp!r}")
    lam0, lam1 = sde.log_snr(torch.tensor([t0, t1], dtype=torch.float64)).tolist()
    u = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    lam = lam0 + (lam1 - lam0) * (u + warp / (2 * math.pi) * torch.sin(2 * math.pi * u))
    return _finish(sde.t_from_log_snr(lam), t0, t1, dtype, device)
