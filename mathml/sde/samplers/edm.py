"""The stochastic sampler of Karras et al. 2022 ("Elucidating the Design Space of Diffusion-Based
Generative Models", NeurIPS, Alg. 2) for any linear SDE, in the scaled variables x̃ = x / α_t and
σ̃ = σ_t / α_t (their eq. 4 with s(t) = α_t, σ(t) = σ̃_t)."""

from __future__ import annotations

import math

import torch

from mathml.checks import check_nonnegative, check_positive

from ..schedules import karras_grid
from ._common import SQRT2M1, Schedule, Score, check_common, declare, denoise_step, make_grid


@declare(order=2.0, nfe_per_step=2)
def edm_stochastic(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
                   schedule: Schedule | torch.Tensor = karras_grid, denoise: bool = False, s_churn: float = 0.0,
                   s_tmin: float = 0.0, s_tmax: float = math.inf, s_noise: float = 1.0) -> torch.Tensor:
    """Karras et al. 2022, Alg. 2 (stochastic Heun with "churn"), on x̃ = x / α_t, σ̃ = σ_t / α_t:

        γ_i = min(S_churn / N, √2 − 1) if S_tmin ≤ σ̃_i ≤ S_tmax else 0,   σ̂ = (1 + γ_i) σ̃_i,
        x̂ = x̃_i + √(σ̂² − σ̃_i²) ε,  ε ~ N(0, S_noise² I),
        d = (x̂ − D(x̂; σ̂)) / σ̂,   x̃_{i+1} = x̂ + (σ̃_{i+1} − σ̂) d,
        d′ = (x̃_{i+1} − D(x̃_{i+1}; σ̃_{i+1})) / σ̃_{i+1},   x̃_{i+1} = x̂ + (σ̃_{i+1} − σ̂)(d + d′) / 2,

    where (x̃ − D(x̃; σ̃)) / σ̃ = −σ_t s(x, t) at the time t with σ̃_t = σ̃ (D is Tweedie's denoiser
    (x + σ_t² s) / α_t in x̃ units). σ̂ is capped at σ̃_T, so the score is never asked beyond t = T. The
    state is kept as x = α_t x̃. With S_churn = 0 this is Alg. 1 (``pf_ode_heun``): global order 2,
    the declared ``order``; churn adds noise of size √(2γ) σ̃ per step. Two score evaluations per step.

    Args:
        sde, score, x_T, steps, generator, denoise: as in ``euler_maruyama`` (x_T: (B, ...)).
        schedule: default ``karras_grid`` (ρ = 7).
        s_churn: S_churn ≥ 0 (total churn; 0 is deterministic).
        s_tmin, s_tmax: the σ̃ range where churn is applied.
        s_noise: S_noise > 0, the scale of the added noise.

    Returns:
        (B, ...) samples at t_N.
    """
    steps = check_common(sde, score, x_T, steps, generator)
    s_churn = check_nonnegative(s_churn, "s_churn")
    s_tmin = check_nonnegative(s_tmin, "s_tmin")
    s_tmax = float(s_tmax) if s_tmax == math.inf else check_nonnegative(s_tmax, "s_tmax")
    s_noise = check_positive(s_noise, "s_noise")
    grid = make_grid(sde, steps, schedule, x_T)
    st = grid.sigma_tilde
    gamma = [min(s_churn / steps, SQRT2M1, st[0] / st[i] - 1.0) if s_tmin <= st[i] <= s_tmax else 0.0
             for i in range(steps)]
    sig_hat = torch.tensor([(1.0 + gamma[i]) * st[i] for i in range(steps)], dtype=torch.float64)
    t_hat = sde.t_from_log_snr(-2.0 * torch.log(sig_hat))
    t_hat = torch.where(torch.tensor(gamma) > 0, t_hat, torch.tensor(grid.t[:-1], dtype=torch.float64))
    a_hat, s_hat = (v.tolist() for v in sde.alpha_sigma(t_hat))
    times_hat = t_hat.to(dtype=x_T.dtype, device=x_T.device)
    sig_hat = [sh / ah for ah, sh in zip(a_hat, s_hat)]  # σ̃ at t̂ as the SDE computes it
    x, b = x_T, x_T.shape[0]
    for i in range(steps):
        if gamma[i] > 0.0:  # x̂ = α̂ (x̃_i + √(σ̂² − σ̃_i²) ε), t̂ with σ̃_t̂ = σ̂
            eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            noise = a_hat[i] * s_noise * math.sqrt(sig_hat[i] ** 2 - st[i] ** 2)
            x = x.mul(a_hat[i] / grid.alpha[i]).add_(eps, alpha=noise)
            t_i = times_hat[i].expand(b)
        else:
            t_i = grid.time(i, b)
        a = grid.alpha[i + 1] / a_hat[i]
        k = grid.alpha[i + 1] * (st[i + 1] - sig_hat[i])
        s_i = score(x, t_i)
        x_pred = torch.add(x, s_i, alpha=-k * s_hat[i] / a).mul_(a)
        s_next = score(x_pred, grid.time(i + 1, b))
        x = torch.add(x, s_i, alpha=-0.5 * k * s_hat[i] / a).mul_(a).add_(s_next, alpha=-0.5 * k * grid.sigma[i + 1])
    return denoise_step(score, x, grid) if denoise else x
