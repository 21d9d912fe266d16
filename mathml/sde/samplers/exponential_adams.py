"""Exponential Adams–Bashforth–Moulton multistep methods in λ for the probability-flow ODE, in
predict–evaluate–correct form (the structure of UniPC: Zhao et al. 2023, "UniPC: A Unified
Predictor-Corrector Framework for Fast Sampling of Diffusion Models", NeurIPS, §3, Alg. 1–2), with
the interpolating polynomial integrated exactly.

With λ = log(α_t / σ_t) the probability-flow ODE (Song et al. 2021, eq. 13) has the exact
variation-of-constants solutions (Lu et al. 2022, "DPM-Solver", eq. 3.4; Lu et al. 2022b,
"DPM-Solver++", eq. 8), for the noise prediction ε̂ = −σ_t s(x, t) and the data prediction
x̂₀ = (x + σ_t² s) / α_t:

    x_{t'} = (α_{t'} / α_t) x_t − σ_{t'} ∫₀ʰ e^{h−u} ε̂(λ_t + u) du,
    x_{t'} = (σ_{t'} / σ_t) x_t + α_{t'} ∫₀ʰ e^{u−h} x̂₀(λ_t + u) du,        h = λ_{t'} − λ_t.

An exponential Adams method (Hochbruck & Ostermann 2011, "Exponential multistep methods of Adams
type", BIT 51; DEIS, Zhang & Chen 2023, ICLR, eq. 14 for the Lagrange form) replaces the
prediction by its Lagrange interpolant p through stored values and integrates kernel × p exactly:

    ∫₀ʰ K(u) p(u) du = Σ_j w_j v_j,   w_j = Σ_n c_{jn} n! K_n(h),   ℓ_j(u) = Σ_n c_{jn} uⁿ,
    K_n(h) = ∫₀ʰ e^{h−u} uⁿ/n! du = Σ_{m>n} hᵐ/m!           (noise prediction),
    K_n(h) = ∫₀ʰ e^{u−h} uⁿ/n! du = Σ_{j≥0} (−1)ʲ h^{n+1+j}/(n+1+j)!   (data prediction).

Predictor (UniP, order k): the k newest stored values at λ_i, λ_{i−1}, …. Evaluate the score at
the predicted x_{i+1}. Corrector (UniC): redo the step with the k + 1 values including the new one
at λ_{i+1} (exponential Adams–Moulton, order k + 1), and continue from the corrected state while
keeping the value evaluated at the predicted one (no extra evaluation; Zhao et al. 2023, §3.2). The
last step has no corrector (there is no further evaluation). One score evaluation per step; the
first k − 1 steps use lower orders.
"""

from __future__ import annotations

import functools
import math

import torch

from mathml.checks import check_choice, check_positive_int

from ..schedules import warped_log_snr_grid
from ._common import Grid, Schedule, Score, check_common, declare, denoise_step, make_grid

PREDICTIONS = ("noise", "data")


def _kernel_moments(h: float, count: int, prediction: str) -> list[float]:
    """K_0 … K_{count−1} of the module docstring, in float64 without cancellation for small h."""
    out = []
    for n in range(count):
        if prediction == "noise":  # Σ_{m>n} hᵐ/m!, all terms positive
            term = h ** (n + 1) / math.factorial(n + 1)
            total, m = 0.0, n + 1
            while term > 1e-18 * total or total == 0.0:
                total += term
                m += 1
                term *= h / m
                if term == 0.0:
                    break
            out.append(total)
        elif h < 2.0:  # alternating series, terms shrink fast for h < 2
            term = h ** (n + 1) / math.factorial(n + 1)
            total, m = 0.0, n + 1
            while abs(term) > 1e-18 * abs(total) or total == 0.0:
                total += term
                m += 1
                term *= -h / m
                if term == 0.0:
                    break
            out.append(total)
        else:  # K_0 = 1 − e^{−h}, K_n = hⁿ/n! − K_{n−1} (no cancellation for h ≥ 2)
            out.append(-math.expm1(-h) if n == 0 else h**n / math.factorial(n) - out[-1])
    return out


def lagrange_integrals(nodes: list[float], moments: list[float]) -> list[float]:
    """w_j = ∫₀ʰ K(u) ℓ_j(u) du for the Lagrange basis ℓ_j on ``nodes``, from the kernel moments
    μ_n = ∫₀ʰ K(u) uⁿ/n! du: with ℓ_j(u) = Σ_n c_{j,n} uⁿ, w_j = Σ_n c_{j,n} n! μ_n. Shared by the
    exponential integrators here and in ``dpm_solver_sde`` (each supplies its own kernel K)."""
    k = len(nodes)
    weights = []
    for j in range(k):
        coef = [1.0]  # monomial coefficients of ℓ_j, built factor by factor
        for m in range(k):
            if m == j:
                continue
            scale = 1.0 / (nodes[j] - nodes[m])
            nxt = [0.0] * (len(coef) + 1)
            for n, c in enumerate(coef):
                nxt[n] -= c * nodes[m] * scale
                nxt[n + 1] += c * scale
            coef = nxt
        weights.append(sum(c * math.factorial(n) * moments[n] for n, c in enumerate(coef)))
    return weights


def _lagrange_weights(nodes: list[float], h: float, prediction: str) -> list[float]:
    """w_j = ∫₀ʰ K(u) ℓ_j(u) du for the Lagrange basis ℓ_j on ``nodes`` (offsets from λ_i)."""
    return lagrange_integrals(nodes, _kernel_moments(h, len(nodes), prediction))


def _step_coefficients(grid: Grid, i: int, nodes_at: list[int], prediction: str) -> tuple[float, list[float]]:
    """(a, [c_j]) with x_{i+1} = a x_i + Σ_j c_j v_j for stored values v_j at grid indices ``nodes_at``,
    where v_j = s_j (noise prediction, ε̂ = −σ s folded in) or u_j = x_j + σ_j² s_j (data prediction,
    x̂₀ = u / α folded in)."""
    lam, al, sg = grid.lam, grid.alpha, grid.sigma
    h = lam[i + 1] - lam[i]
    w = _lagrange_weights([lam[j] - lam[i] for j in nodes_at], h, prediction)
    if prediction == "noise":
        return al[i + 1] / al[i], [sg[i + 1] * wj * sg[j] for wj, j in zip(w, nodes_at)]
    return sg[i + 1] / sg[i], [al[i + 1] * wj / al[j] for wj, j in zip(w, nodes_at)]


@functools.lru_cache(maxsize=64)
def _plan(grid: Grid, order: int, prediction: str, corrector: bool) -> tuple[list, list]:
    """Predictor and corrector coefficients of every step (memoised per grid, see ``make_grid``)."""
    pred, corr = [], []
    steps = grid.steps
    for i in range(steps):
        k = min(order, i + 1)
        pred.append(_step_coefficients(grid, i, [i - j for j in range(k)], prediction))
        if corrector and i + 1 < steps:  # nodes i+1, i, …, i−k+1; the same a as the predictor
            _, c = _step_coefficients(grid, i, [i + 1] + [i - j for j in range(k)], prediction)
            corr.append((c[0], [cj - pj for cj, pj in zip(c[1:], pred[-1][1])]))  # as a change of x_pred
    return pred, corr


@declare(order=4.0, nfe_per_step=1)
def exponential_adams(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
                      schedule: Schedule | torch.Tensor = warped_log_snr_grid, denoise: bool = False, order: int = 3,
                      prediction: str = "noise", corrector: bool = True) -> torch.Tensor:
    """Exponential Adams predictor–corrector on the probability-flow ODE (see the module docstring).

    Global order ``order`` + 1 with the corrector, ``order`` without (the declared
    ``exponential_adams.order = 4`` is that of the defaults). One score evaluation per step.

    The defaults (noise prediction, k = 3, corrector, ``warped_log_snr_grid`` with warp 0.3) were
    chosen on three tuning targets under VPSDE with the exact score — a 3-component 2-D mixture of
    unequal full covariances, a 5-component 10-D mixture and a 6-component 2-D arc — by the
    geometric-mean RMS distance to a tight PF-ODE solve at 10, 20 and 50 evaluations (among
    k = 2..4, noise/data prediction, with/without corrector, log-SNR, Karras and warped grids).
    ``prediction="data"`` with ``corrector=False`` is DPM-Solver++(kM) (``dpm_solver_2m``/``3m``);
    ``prediction="noise"`` interpolates ε̂ instead (DPM-Solver's multistep form, Lu et al. 2022,
    App. B). Deterministic: ``generator`` is unused.

    Args:
        sde, score, x_T, steps, denoise: as in ``euler_maruyama`` (x_T: (B, ...)).
        schedule: default ``warped_log_snr_grid`` (warp 0.3).
        order: k in 1..4, the predictor's number of stored values.
        prediction: "noise" or "data", the quantity interpolated in λ.
        corrector: apply the corrector (UniC) after every step but the last.

    Returns:
        (B, ...) the ODE solution at t_N.
    """
    steps = check_common(sde, score, x_T, steps, generator)
    order = check_positive_int(order, "order")
    if order > 4:
        raise ValueError(f"order must be an int in 1..4, got {order}")
    check_choice(prediction, "prediction", PREDICTIONS)
    grid = make_grid(sde, steps, schedule, x_T)
    pred, corr = _plan(grid, order, prediction, bool(corrector))
    noise = prediction == "noise"
    x = x_T
    past: list[torch.Tensor] = []  # stored values v (s for noise, u = x + σ² s for data prediction), newest first
    ts = grid.batch_times
    s = score(x, ts[0])
    v = s if noise else torch.add(x, s, alpha=grid.sigma[0] ** 2)
    for i in range(steps):
        past = [v, *past[: order - 1]]
        a, c = pred[i]
        x_next = past[0].mul(c[0]).add_(x, alpha=a)
        for j in range(1, len(c)):
            x_next = x_next.add_(past[j], alpha=c[j])
        if i + 1 < steps:
            s = score(x_next, ts[i + 1])
            v = s if noise else torch.add(x_next, s, alpha=grid.sigma[i + 1] ** 2)  # at the predicted point
            if corrector:  # x_{i+1} = x_pred + c_new v_{i+1} + Σ_j (c_corr,j − c_pred,j) v_{i−j}
                c_new, dc = corr[i]
                x_next = torch.add(x_next, v, alpha=c_new)
                for j, d in enumerate(dc):
                    x_next.add_(past[j], alpha=d)
        x = x_next
    return denoise_step(score, x, grid) if denoise else x
