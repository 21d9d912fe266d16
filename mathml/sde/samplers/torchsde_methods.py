"""Any of torchsde's Itô solvers on the reverse-time SDE, integrated in s = T − t (torchsde needs
increasing time; Song et al. 2021, eq. 6; ``mathml.sde.reverse_sde``)."""

from __future__ import annotations

import math

import torch
import torchsde

from mathml.checks import check_choice

from ..reverse import reverse_sde
from ..schedules import uniform_grid
from ._common import Schedule, Score, check_common, declare, denoise_step, make_grid

# Strong orders for additive noise (the reverse SDE's g depends on t only) and score evaluations
# per step: Euler–Maruyama and Milstein coincide at order 1 (Kloeden & Platen 1992, §10.2–10.3);
# torchsde's "srk" is the strong order 1.5 Rößler scheme SRID2 (Rößler 2010, SIAM J. Numer. Anal. 48,
# "Runge–Kutta methods for the strong approximation of solutions of SDEs"); its 4 stages need 4
# drift evaluations, but torchsde 0.2.6 re-evaluates earlier stages inside each one (1+2+3+4 = 10).
TORCHSDE_METHODS = {"euler": (1.0, 1), "milstein": (1.0, 1), "srk": (1.5, 10)}


def _fixed_step(s_end: float, steps: int) -> float:
    """A step dt with which torchsde's loop (``next = min(curr + dt, s_end)`` from 0, in float64) takes
    exactly ``steps`` steps: s_end / steps, nudged up by a few ulps when rounding would leave a
    vanishing extra step (which would cost one more score evaluation)."""
    dt = s_end / steps
    for _ in range(8):
        curr, n = 0.0, 0
        while curr < s_end:
            curr, n = min(curr + dt, s_end), n + 1
        if n == steps:
            return dt
        dt = math.nextafter(dt, math.inf) if n > steps else math.nextafter(dt, 0.0)
    return dt


def _count(steps: int, method: str = "euler", **_) -> int:
    # sdeint calls the drift once more before integrating, to check shapes.
    return TORCHSDE_METHODS[check_choice(method, "method", tuple(TORCHSDE_METHODS))][1] * steps + 1


@declare(order=1.0, nfe_per_step=1, count=_count)
def torchsde_sampler(sde, score: Score, x_T: torch.Tensor, *, steps: int, generator: torch.Generator | None = None,
                     schedule: Schedule | torch.Tensor = uniform_grid, denoise: bool = False,
                     method: str = "euler", brownian=None) -> torch.Tensor:
    """Sample by ``torchsde.sdeint(reverse_sde(sde, score), x_T, [0, T − t_N], dt, method=method)``.

    The reverse SDE (Anderson 1982, eq. 3.12; Song et al. 2021, eq. 6) in s = T − t is
    dy = −[f(T − s) y − g² s(y, T − s)] ds + g(T − s) dw_s (``mathml.sde.ReverseSDE``). torchsde
    takes a fixed step dt, so the grid must be uniform in t (the default ``uniform_grid``); data of
    any shape is flattened to torchsde's (B, D) and back.

    Declared strong orders and score evaluations per step (``TORCHSDE_METHODS``): "euler" 1 (1
    evaluation), "milstein" 1 (1), "srk" 1.5 (10); ``torchsde_sampler.order`` is that of the default
    "euler" (torchsde 0.2.6's "srk" re-evaluates stages: 10, not 4). ``nfe(torchsde_sampler, steps,
    method=...)`` adds the one evaluation sdeint spends on its shape check. torchsde's Brownian bookkeeping costs ~7 ms per step at B = 1024 (ENV.md
    gotcha 5): prefer ``euler_maruyama`` for many-step sampling.

    Args:
        sde, score, x_T, steps, denoise: as in ``euler_maruyama``.
        generator: seeds the BrownianInterval built here (one int drawn from it); None: torch's global RNG.
        schedule: must give a grid uniform in t (checked to 1e-9 relative).
        method: "euler", "milstein" or "srk".
        brownian: a torchsde Brownian object of size (B, D) on [0, T − t_N], instead of ``generator``
            ("srk" needs ``levy_area_approximation="space-time"`` on it).

    Returns:
        (B, ...) samples at t_N.
    """
    steps = check_common(sde, score, x_T, steps, generator)
    check_choice(method, "method", tuple(TORCHSDE_METHODS))
    if brownian is not None and generator is not None:
        raise ValueError("give either generator or brownian, not both")
    grid = make_grid(sde, steps, schedule, x_T)
    dt = (grid.t[0] - grid.t[-1]) / steps
    gaps = torch.tensor(grid.t[:-1], dtype=torch.float64) - torch.tensor(grid.t[1:], dtype=torch.float64)
    if bool(((gaps - dt).abs() > 1e-9 * abs(dt)).any()):
        raise ValueError("torchsde_sampler needs a grid uniform in t (torchsde steps with a fixed dt); "
                         "use schedule=uniform_grid")
    b, d = x_T.shape[0], x_T[0].numel()
    s_end = float(sde.T) - grid.t[-1]
    if brownian is None:
        dev = generator.device if generator is not None else None
        entropy = int(torch.randint(0, 2**62, (), generator=generator, device=dev))
        brownian = torchsde.BrownianInterval(t0=0.0, t1=s_end, size=(b, d), dtype=x_T.dtype, device=x_T.device,
                                             entropy=entropy, levy_area_approximation="space-time")
    reverse = reverse_sde(sde, score, event_shape=tuple(x_T.shape[1:]))
    ts = torch.tensor([0.0, s_end], dtype=torch.float64, device=x_T.device)
    y = torchsde.sdeint(reverse, x_T.reshape(b, d), ts, bm=brownian, method=method, dt=_fixed_step(s_end, steps))[-1]
    x = y.reshape(x_T.shape)
    return denoise_step(score, x, grid) if denoise else x
