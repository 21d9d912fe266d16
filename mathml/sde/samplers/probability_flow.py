"""The probability-flow ODE (Song et al. 2021, ICLR, eq. 13) solved from noise to data by Euler in
t, by Heun in the scaled variables of Karras et al. 2022 (Alg. 1), and adaptively by dopri5
(torchdiffeq)."""

from __future__ import annotations

import torch
import torchdiffeq

from mathml.checks import check_positive

from ..reverse import probability_flow
from ..schedules import karras_grid, uniform_grid
from ._common import Schedule, Score, check_common, declare, denoise_step, make_grid


@declare(order=1.0, nfe_per_step=1)
def pf_ode_euler(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
                 schedule: Schedule | torch.Tensor = uniform_grid, denoise: bool = False) -> torch.Tensor:
    """Euler's method on the probability-flow ODE in the SDE's own time (Song et al. 2021, eq. 13):

        dx/dt = f(t) x − ½ g(t)² s(x, t),   x_{i+1} = x_i + (t_{i+1} − t_i) [f(t_i) x_i − ½ g(t_i)² s(x_i, t_i)].

    Global order 1; one score evaluation per step. (Euler in the scaled variables (x / α_t, σ̃_t)
    instead is DDIM, ``ddim``.) Deterministic: ``generator`` is accepted for the common signature
    and unused.

    Args:
        sde, score, x_T, steps, schedule, denoise: as in ``euler_maruyama`` (x_T: (B, ...)).

    Returns:
        (B, ...) the ODE solution at t_N.
    """
    steps = check_common(sde, score, x_T, steps, generator)
    grid = make_grid(sde, steps, schedule, x_T)
    t = torch.tensor(grid.t, dtype=torch.float64)
    f = sde.drift_coefficient(t).tolist()
    g2 = sde.diffusion_squared(t).tolist()
    x, b = x_T, x_T.shape[0]
    for i in range(steps):
        dt = grid.t[i + 1] - grid.t[i]
        a = 1.0 + dt * f[i]
        x = torch.add(x, score(x, grid.time(i, b)), alpha=-0.5 * dt * g2[i] / a).mul_(a)
    return denoise_step(score, x, grid) if denoise else x


@declare(order=2.0, nfe_per_step=2)
def pf_ode_heun(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
                schedule: Schedule | torch.Tensor = karras_grid, denoise: bool = False) -> torch.Tensor:
    """Heun's method on the probability-flow ODE in Karras et al. 2022's variables (Alg. 1, with
    s(t) = α_t and σ(t) = σ̃_t = σ_t / α_t, i.e. on x̃ = x / α_t):

        dx̃/dσ̃ = (x̃ − D(x̃; σ̃)) / σ̃ = −σ_t s(x, t) =: d(x, t),   D = (x + σ_t² s) / α_t  (Tweedie),
        x̃' = x̃_i + (σ̃_{i+1} − σ̃_i) d_i,   x̃_{i+1} = x̃_i + (σ̃_{i+1} − σ̃_i) (d_i + d(x', t_{i+1})) / 2.

    Global order 2; two score evaluations per step (every step ends at σ̃_{t_min} > 0, so unlike
    Alg. 1's final σ = 0 step none falls back to Euler). The state is kept as x = α_t x̃.
    Deterministic: ``generator`` is unused.

    Args:
        sde, score, x_T, steps, denoise: as in ``euler_maruyama``.
        schedule: default ``karras_grid`` (ρ = 7), Karras et al.'s choice for this solver.

    Returns:
        (B, ...) the ODE solution at t_N.
    """
    steps = check_common(sde, score, x_T, steps, generator)
    grid = make_grid(sde, steps, schedule, x_T)
    al, sg, st = grid.alpha, grid.sigma, grid.sigma_tilde
    x, b = x_T, x_T.shape[0]
    for i in range(steps):
        a = al[i + 1] / al[i]  # x_{i+1} = α_{i+1} x̃_{i+1} = a x_i + α_{i+1} Δσ̃ d
        k = al[i + 1] * (st[i + 1] - st[i])
        s_i = score(x, grid.time(i, b))
        x_pred = torch.add(x, s_i, alpha=-k * sg[i] / a).mul_(a)
        s_next = score(x_pred, grid.time(i + 1, b))
        x = torch.add(x, s_i, alpha=-0.5 * k * sg[i] / a).mul_(a).add_(s_next, alpha=-0.5 * k * sg[i + 1])
    return denoise_step(score, x, grid) if denoise else x


@declare(order=5.0, nfe_per_step=None, count=lambda steps, **_: None)
def pf_ode_dopri5(sde, score: Score, x_T: torch.Tensor, *, steps: int = 1, generator: torch.Generator | None = None,
                  schedule: Schedule | torch.Tensor = uniform_grid, denoise: bool = False, rtol: float = 1e-5,
                  atol: float = 1e-5, return_nfe: bool = False) -> torch.Tensor | tuple[torch.Tensor, int]:
    """The probability-flow ODE (Song et al. 2021, eq. 13) by torchdiffeq's adaptive Dormand–Prince
    5(4) pair (Dormand & Prince 1980; order 5, error control at ``rtol``, ``atol``).

    The solver steps adaptively; the ``steps + 1`` grid times are forced as step boundaries
    (torchdiffeq's ``step_t``) so it never steps past t_N (ENV.md gotcha 13: past t_min it can end in
    "underflow in dt"). The number of score evaluations is adaptive: ``return_nfe=True`` returns it.
    Deterministic: ``generator`` is unused.

    Args:
        sde, score, x_T, denoise: as in ``euler_maruyama``.
        steps: the number of grid intervals forced as step boundaries (1: just [T, t_min]).
        schedule: the grid (default uniform).
        rtol, atol: dopri5's tolerances.
        return_nfe: also return the number of score evaluations (int).

    Returns:
        (B, ...) the ODE solution at t_N, and the NFE with ``return_nfe``.
    """
    steps = check_common(sde, score, x_T, steps, generator)
    rtol, atol = check_positive(rtol, "rtol"), check_positive(atol, "atol")
    grid = make_grid(sde, steps, schedule, x_T)
    calls = [0]

    def counted(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        calls[0] += 1
        return score(x, t)

    flow = probability_flow(sde, counted)
    ends = grid.times[[0, -1]]
    x = torchdiffeq.odeint(flow, x_T, ends, method="dopri5", rtol=rtol, atol=atol,
                           options=dict(step_t=grid.times[1:]))[-1]
    if denoise:
        x = denoise_step(counted, x, grid)
    return (x, calls[0]) if return_nfe else x
