"""DPM-Solver++ multistep (Lu et al. 2022b, "DPM-Solver++: Fast Solver for Guided Sampling of
Diffusion Probabilistic Models", arXiv:2211.01095, §4 and Alg. 2; the third-order "3M" variant of
their reference implementation), an exponential Adams–Bashforth method on the data prediction.

The probability-flow ODE in λ = log(α_t / σ_t) with the data prediction x̂₀(x, t) = (x + σ_t² s) / α_t
has the exact solution (Lu et al. 2022b, eq. 8)

    x_{t'} = (σ_{t'} / σ_t) x_t + σ_{t'} ∫_{λ_t}^{λ_{t'}} e^{λ} x̂₀(λ) dλ.

A k-step method replaces x̂₀(λ) by the polynomial p through the last k data predictions
m_0 = x̂₀(λ_i), m_1 = x̂₀(λ_{i−1}), m_2 = x̂₀(λ_{i−2}) (Newton form, derivatives at λ_i) and
integrates exactly: with h = λ_{i+1} − λ_i,

    x_{i+1} = (σ_{i+1}/σ_i) x_i + α_{i+1} [I₀ p(λ_i) + I₁ p′(λ_i) + I₂ p″(λ_i)],
    I₀ = 1 − e^{−h},  I₁ = h − I₀,  I₂ = h²/2 − I₁      (I_n = ∫₀ʰ e^{u−h} uⁿ/n! du),

which for k = 3 is the 3M update. For k = 2 this integrates the linear interpolant exactly (I₁ on
the divided difference), the "heun"-type second-order update of DPM-Solver++'s reference code; Lu
et al. 2022b's Alg. 2 itself puts I₀ h/2 there (their "midpoint" form). The two agree to O(h³) per
step, so both are second order, but they differ at large steps (measured in benchmarks/RESULTS.md).
Global order k; one score evaluation per step.
The first k − 1 steps use orders 1, 2, … (too few past points).
"""

from __future__ import annotations

import functools
import math

import torch

from ..schedules import log_snr_grid
from ._common import Grid, Schedule, Score, check_common, declare, denoise_step, make_grid


def _weights(lam: list[float], i: int, k: int) -> list[float]:
    """w_j with x̂₀-integral ≈ Σ_j w_j m_j for the step i → i+1 of order k (float64)."""
    h = lam[i + 1] - lam[i]
    i0 = -math.expm1(-h)
    i1 = h - i0
    i2 = 0.5 * h * h - i1
    if k == 1:
        return [i0]
    l0, l1 = lam[i], lam[i - 1]
    d01 = 1.0 / (l0 - l1)  # f01 = (m0 − m1) d01
    if k == 2:
        return [i0 + i1 * d01, -i1 * d01]
    l2 = lam[i - 2]
    d12 = 1.0 / (l1 - l2)
    e = 1.0 / (l0 - l2)  # f012 = (f01 − f12) e
    # p′(λ_i) = f01 + f012 (l0 − l1),  p″ = 2 f012
    g = i1 * (l0 - l1) * e + 2.0 * i2 * e  # coefficient of f012
    w0 = i0 + i1 * d01 + g * d01
    w1 = -i1 * d01 - g * d01 - g * d12
    w2 = g * d12
    return [w0, w1, w2]


@functools.lru_cache(maxsize=64)
def multistep_coefficients(grid: Grid, order: int, lower_order_final: bool) -> list[tuple[float, list[float]]]:
    """Per step: (σ_{i+1}/σ_i, [c_j]) so that x_{i+1} = (σ_{i+1}/σ_i) x_i + Σ_j c_j u_{i−j} with
    u_j = α_j x̂₀ = x_j + σ_j² s_j (the 1/α_j folded into c_j)."""
    out = []
    n = grid.steps
    for i in range(n):
        k = min(order, i + 1)
        if lower_order_final:
            k = min(k, n - i)  # the last step first order, the one before at most second
        w = _weights(grid.lam, i, k)
        c = [grid.alpha[i + 1] * w[j] / grid.alpha[i - j] for j in range(k)]
        out.append((grid.sigma[i + 1] / grid.sigma[i], c))
    return out


def _multistep(sde, score, x_T, steps, generator, schedule, denoise, order, lower_order_final):
    steps = check_common(sde, score, x_T, steps, generator)
    grid = make_grid(sde, steps, schedule, x_T)
    coef = multistep_coefficients(grid, order, bool(lower_order_final))
    x, ts, sig2 = x_T, grid.batch_times, [s * s for s in grid.sigma]
    u1 = u2 = None  # u_{i−1}, u_{i−2}
    for i, (a, c) in enumerate(coef):
        u = torch.add(x, score(x, ts[i]), alpha=sig2[i])
        x = u.mul(c[0]).add_(x, alpha=a)
        if len(c) > 1:
            x.add_(u1, alpha=c[1])
            if len(c) > 2:
                x.add_(u2, alpha=c[2])
        u1, u2 = u, u1
    return denoise_step(score, x, grid) if denoise else x


@declare(order=2.0, nfe_per_step=1)
def dpm_solver_2m(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
                  schedule: Schedule | torch.Tensor = log_snr_grid, denoise: bool = False,
                  lower_order_final: bool = False) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022b, §4; the exact-interpolant form, see the module docstring): global order 2, one
    score evaluation per step. Deterministic: ``generator`` is unused.

    Args:
        sde, score, x_T, steps, denoise: as in ``euler_maruyama`` (x_T: (B, ...)).
        schedule: default ``log_snr_grid`` (equal steps h in λ).
        lower_order_final: use first order on the last step (as diffusers does below 15 steps).

    Returns:
        (B, ...) the ODE solution at t_N.
    """
    return _multistep(sde, score, x_T, steps, generator, schedule, denoise, 2, lower_order_final)


@declare(order=3.0, nfe_per_step=1)
def dpm_solver_3m(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
                  schedule: Schedule | torch.Tensor = log_snr_grid, denoise: bool = False,
                  lower_order_final: bool = False) -> torch.Tensor:
    """DPM-Solver++(3M) (the third-order multistep of Lu et al. 2022b; see the module docstring):
    global order 3, one score evaluation per step. Deterministic: ``generator`` is unused.

    Args:
        sde, score, x_T, steps, denoise: as in ``euler_maruyama`` (x_T: (B, ...)).
        schedule: default ``log_snr_grid``.
        lower_order_final: first order on the last step and at most second on the one before.

    Returns:
        (B, ...) the ODE solution at t_N.
    """
    return _multistep(sde, score, x_T, steps, generator, schedule, denoise, 3, lower_order_final)
