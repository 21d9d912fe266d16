"""Predictor–corrector sampling (Song et al. 2021, "Score-Based Generative Modeling through SDEs",
ICLR, §4.2, Alg. 2 (VE), Alg. 3 (VP) and App. G): an Euler–Maruyama step of the reverse SDE
followed by Langevin MCMC steps at the new noise level."""

from __future__ import annotations

import math

import torch

from mathml.checks import check_nonnegative, check_nonnegative_int

from ..schedules import uniform_grid
from ._common import Schedule, Score, check_common, declare, make_grid, denoise_step


def _count(steps: int, corrector_steps: int = 1, **_) -> int:
    return (1 + check_nonnegative_int(corrector_steps, "corrector_steps")) * steps


@declare(order=1.0, nfe_per_step=2, count=_count)
def predictor_corrector(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
                        schedule: Schedule | torch.Tensor = uniform_grid, denoise: bool = False,
                        snr: float = 0.16, corrector_steps: int = 1) -> torch.Tensor:
    """Predictor–corrector sampler (Song et al. 2021, Alg. 2 and 3).

    Predictor, t_i → t_{i+1}: one Euler–Maruyama step of the reverse SDE (eq. 6; see
    ``euler_maruyama``). Corrector, ``corrector_steps`` = M times at t_{i+1} (Langevin dynamics
    targeting p_{t_{i+1}}):

        z ~ N(0, I),  g = s(x, t_{i+1}),  ε = 2 α_i (r ‖z‖ / ‖g‖)²,  x ← x + ε g + √(2ε) z,

    with the signal-to-noise ratio r = ``snr`` and ‖z‖, ‖g‖ the batch means of the per-sample norms,
    as in Song et al.'s reference code: one step size for the batch, so ε hardly depends on any one
    sample's z or x (per-sample norms would couple the step to its own noise and bias the chain in
    low dimension). Hence results depend weakly on the batch. α_i = 1 − β_i in Alg. 3 is the one-step signal decay
    (α_{t_i} / α_{t_{i+1}})² of this grid (1 for VE and EDM, as in Alg. 2; Song et al.'s value when
    the grid is their N = 1000 uniform one).

    Order: the corrector's step does not shrink with the grid, so the composite method is not a
    convergent path discretisation; ``order = 1`` is the strong order of its predictor (reached
    with M = 0). It is tested for reaching the target distribution. Score evaluations per step:
    1 + M (``nfe(predictor_corrector, steps, corrector_steps=M)``).

    Args:
        sde, score, x_T, steps, generator, denoise: as in ``euler_maruyama`` (x_T: (B, ...)).
        schedule: default uniform in t (Song et al.'s choice).
        snr: r ≥ 0 (Song et al. use 0.16 for VE on CIFAR-10, App. G).
        corrector_steps: M ≥ 0.

    Returns:
        (B, ...) samples at t_N.
    """
    steps = check_common(sde, score, x_T, steps, generator)
    snr = check_nonnegative(snr, "snr")
    corrector_steps = check_nonnegative_int(corrector_steps, "corrector_steps")
    grid = make_grid(sde, steps, schedule, x_T)
    t = torch.tensor(grid.t, dtype=torch.float64)
    f = sde.drift_coefficient(t).tolist()
    g2 = sde.diffusion_squared(t).tolist()
    x, b = x_T, x_T.shape[0]
    for i in range(steps):
        # predictor: Euler–Maruyama, x + h (g² s − f x) + g √h z
        h = grid.t[i] - grid.t[i + 1]
        a = 1.0 - h * f[i]
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = torch.add(x, score(x, grid.time(i, b)), alpha=h * g2[i] / a).mul_(a).add_(z, alpha=math.sqrt(g2[i] * h))
        # corrector: Langevin at t_{i+1}
        alpha_i = (grid.alpha[i] / grid.alpha[i + 1]) ** 2
        for _ in range(corrector_steps):
            g = score(x, grid.time(i + 1, b))
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
            ratio = z.flatten(1).norm(dim=1).mean() / g.flatten(1).norm(dim=1).mean().clamp_min(torch.finfo(x.dtype).tiny)
            eps = (2.0 * alpha_i * snr * snr) * ratio.square()  # 0-d: no device sync
            x = torch.addcmul(x, eps, g).addcmul_(eps.mul(2.0).sqrt_(), z)
    return denoise_step(score, x, grid) if denoise else x
