"""What every sampler shares: argument checks, the time grid with its coefficients precomputed in
float64 once, the declared order and score-evaluation count, and the optional denoising step.

Conventions (Song et al. 2021, ICLR): time runs from data (t = 0) to noise (t = T); a grid
t_0 = T > t_1 > … > t_N = t_min is walked from noise to data. With the transition
x_t | x₀ ~ N(α_t x₀, σ_t² I) we write σ̃_t = σ_t / α_t (Karras et al. 2022, §4) and the half
log-SNR λ_t = log(α_t / σ_t) (Lu et al. 2022, "DPM-Solver", §3.1) — note ``sde.log_snr`` is 2λ.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from mathml.checks import check_generator, check_positive_int, check_tensor

from ..base import LinearSDE
from ..schedules import log_snr_grid

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Schedule = Callable[..., torch.Tensor]


@dataclass(frozen=True, eq=False)  # hashed by identity: the key of the per-sampler coefficient caches
class Grid:
    """A validated time grid and its per-step coefficients.

    Attributes:
        t, alpha, sigma, lam: Python floats (float64 maths) at t_0 = T > … > t_N: the times, α_t,
            σ_t and the half log-SNR λ_t = log(α_t / σ_t).
        times: (N + 1,) the same times in the data's dtype and device.
        batch_times: N + 1 views (B,) of them, the score's t argument at each grid point.
    """

    t: list[float]
    alpha: list[float]
    sigma: list[float]
    lam: list[float]
    times: torch.Tensor
    batch_times: tuple[torch.Tensor, ...]

    @property
    def steps(self) -> int:
        return len(self.t) - 1

    @property
    def sigma_tilde(self) -> list[float]:
        """σ̃_i = σ_i / α_i."""
        return [s / a for a, s in zip(self.alpha, self.sigma)]

    def time(self, i: int, batch: int) -> torch.Tensor:
        """t_i as a (B,) tensor (a view: no allocation of data)."""
        t = self.batch_times[i]
        return t if t.shape[0] == batch else self.times[i].expand(batch)


def check_common(sde: object, score: object, x_T: object, steps: object, generator: object = None) -> int:
    """Validate the arguments every sampler takes; returns ``steps``."""
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"sde must be a mathml.sde LinearSDE (VPSDE, SubVPSDE, VESDE, EDMSDE), got {type(sde).__name__}")
    if not callable(score):
        raise TypeError(f"score must be a callable score(x, t) with x: (B, ...), t: (B,), got {type(score).__name__}")
    check_tensor(x_T, "x_T", min_dim=1, shape_doc="(B, ...)")
    if not x_T.is_floating_point():
        raise TypeError(f"x_T must be a floating-point Tensor of shape (B, ...), got dtype {x_T.dtype}")
    if x_T.shape[0] < 1 or x_T.numel() == 0:
        raise ValueError(f"x_T must have shape (B, ...) with B >= 1 and no empty dims, got {tuple(x_T.shape)}")
    check_generator(generator)
    return check_positive_int(steps, "steps")


def make_grid(sde: LinearSDE, steps: int, schedule: Schedule | torch.Tensor, like: torch.Tensor) -> Grid:
    """The grid from ``schedule`` (a schedule function, see ``mathml.sde.schedules``, or an explicit
    (steps + 1,) tensor of times), validated, with α, σ, λ in float64.

    Grids from schedule functions are memoised (a small LRU cache keyed by the SDE object and its
    parameters, ``steps``, the function, dtype, device and batch size), so repeated sampling with the
    same settings computes them, and the per-sampler coefficients cached on them, once."""
    if isinstance(schedule, torch.Tensor):
        t = schedule.detach().to(device="cpu", dtype=torch.float64)
        return _build_grid(sde, steps, t, like.dtype, like.device, like.shape[0])
    if not callable(schedule):
        raise TypeError(f"schedule must be a schedule function (e.g. mathml.sde.log_snr_grid) or a ({steps + 1},) "
                        f"Tensor of times, got {type(schedule).__name__}")
    try:
        key = (sde, sde.extra_repr(), float(sde.T), float(sde.t_min), steps, schedule, like.dtype, like.device,
               like.shape[0])
        hash(key)
    except TypeError:  # an unhashable schedule callable: no memoisation
        return _grid_from_function(sde, steps, schedule, like.dtype, like.device, like.shape[0])
    return _cached_grid(key)


@functools.lru_cache(maxsize=32)
def _cached_grid(key: tuple) -> Grid:
    sde, _, _, _, steps, schedule, dtype, device, batch = key
    return _grid_from_function(sde, steps, schedule, dtype, device, batch)


def _grid_from_function(sde, steps, schedule, dtype, device, batch) -> Grid:
    t = schedule(sde, steps, dtype=torch.float64)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"schedule must return a Tensor of shape ({steps + 1},), got {type(t).__name__}")
    return _build_grid(sde, steps, t.detach().to(device="cpu", dtype=torch.float64), dtype, device, batch)


def _build_grid(sde, steps: int, t: torch.Tensor, dtype, device, batch: int) -> Grid:
    if t.shape != (steps + 1,):
        raise ValueError(f"schedule must give times of shape (steps + 1,) = ({steps + 1},), got {tuple(t.shape)}")
    values = t.tolist()
    if not all(math.isfinite(v) for v in values) or any(b >= a for a, b in zip(values, values[1:])):
        raise ValueError(f"schedule must be finite and strictly decreasing (noise -> data), got {values}")
    if values[-1] <= 0.0 or values[0] > sde.T * (1 + 1e-9):
        raise ValueError(f"schedule times must lie in (0, T] = (0, {sde.T}], got [{values[-1]}, {values[0]}]")
    alpha, sigma = (v.tolist() for v in sde.alpha_sigma(t))
    lam = [math.log(a / s) for a, s in zip(alpha, sigma)]
    times = torch.tensor(values, dtype=dtype, device=device)
    # (B,) views: expanded, so a score cannot modify them in place
    return Grid(values, alpha, sigma, lam, times, times.unsqueeze(1).expand(-1, batch).unbind(0))


def denoise_step(score: Score, x: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Tweedie's formula at the last time t_N (Efron 2011, "Tweedie's formula and selection bias",
    JASA, eq. 2.8; Song et al. 2021, App. G "denoising"): x̂₀ = E[x₀ | x_t] = (x + σ_t² ∇log p_t(x)) / α_t.
    One score evaluation."""
    n = grid.steps
    s = score(x, grid.time(n, x.shape[0]))
    return torch.add(x, s, alpha=grid.sigma[n] ** 2).mul_(1.0 / grid.alpha[n])


def declare(order: float | None, nfe_per_step: int | None, count: Callable[..., int | None] | None = None):
    """Attach the declared convergence ``order``, ``nfe_per_step`` and ``nfe(steps, **options)`` to a
    sampler function (``count(steps, **options)`` overrides the default ``nfe_per_step * steps``,
    one more with ``denoise=True``)."""

    def wrap(fn):
        def nfe(steps: int, *, denoise: bool = False, **options) -> int | None:
            check_positive_int(steps, "steps")
            n = count(steps, **options) if count is not None else nfe_per_step * steps
            return None if n is None else n + int(bool(denoise))

        fn.order = order
        fn.nfe_per_step = nfe_per_step
        fn.nfe = nfe
        return fn

    return wrap


def nfe(sampler: Callable, steps: int, **options) -> int | None:
    """The number of score evaluations ``sampler`` makes with ``steps`` steps and the given keyword
    options (e.g. ``nfe(predictor_corrector, 10, corrector_steps=2)``); None for adaptive solvers,
    which report their count themselves (``pf_ode_dopri5(..., return_nfe=True)``)."""
    count = getattr(sampler, "nfe", None)
    if count is None:
        raise TypeError(f"sampler must be a mathml.sde sampler function, got {sampler!r}")
    return count(steps, **options)


DEFAULT_SCHEDULE = log_snr_grid
SQRT2M1 = math.sqrt(2.0) - 1.0
