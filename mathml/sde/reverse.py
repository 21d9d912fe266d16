"""The reverse-time SDE and the probability-flow ODE of a diffusion, as objects that torchsde's
``sdeint`` and torchdiffeq's ``odeint`` accept directly.

Both wrap a score ``score(x, t) -> ∇ₓ log p_t(x)`` with ``x: (B, ...)``, ``t: (B,)``. The solvers
work on flat states ``y: (B, D)``; ``event_shape`` (the shape of one datum) lets the wrappers hand
the score its own data shape, so one adapter serves 2-D points and images alike.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .base import LinearSDE, append_dims

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check(sde: object, score: object) -> None:
    if not isinstance(sde, LinearSDE):
        raise TypeError(f"sde must be a mathml.sde LinearSDE (VPSDE, SubVPSDE, VESDE, EDMSDE), got {type(sde).__name__}")
    if not callable(score):
        raise TypeError(f"score must be a callable score(x, t), got {type(score).__name__}")


class _ShapedScore(nn.Module):
    """Calls ``score`` on ``y: (B, D)`` viewed as ``(B, *event_shape)``; returns ``(B, D)``."""

    def __init__(self, score: Score, event_shape: tuple[int, ...] | None) -> None:
        super().__init__()
        self.score = score
        self.event_shape = None if event_shape is None else tuple(int(d) for d in event_shape)

    def forward(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.event_shape is None or y.shape[1:] == self.event_shape:
            return self.score(y, t)
        x = y.reshape(y.shape[0], *self.event_shape)
        return self.score(x, t).reshape(y.shape)


class ReverseSDE(nn.Module):
    """The reverse-time SDE (Anderson 1982, "Reverse-time diffusion equation models", eq. 3.12;
    Song et al. 2021, eq. 6), in the increasing time s = T − t that torchsde needs:

        dx = [f(x, t) − g(t)² ∇ₓ log p_t(x)] dt + g(t) dw̄   (t decreasing)
        ⇔ dy = −[f(y, T − s) − g(T − s)² s_θ(y, T − s)] ds + g(T − s) dw_s,   y(s) = x(T − s).

    ``torchsde.sdeint(reverse, x_T.flatten(1), torch.tensor([0.0, sde.T - sde.t_min]))`` returns
    samples at t = t_min in its last row. States are ``(B, D)`` (torchsde's protocol) or any
    ``(B, ...)`` when ``event_shape`` is None.

    Attributes:
        noise_type, sde_type: "diagonal", "ito".
    """

    noise_type = "diagonal"
    sde_type = "ito"

    def __init__(self, sde: LinearSDE, score: Score, event_shape: tuple[int, ...] | None = None) -> None:
        super().__init__()
        _check(sde, score)
        self.sde = sde
        self.score = _ShapedScore(score, event_shape)

    def time(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """t = T − s as a (B,) tensor."""
        s = torch.as_tensor(s, dtype=y.dtype, device=y.device)
        return (self.sde.T - s).expand(y.shape[0])

    def f(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = self.time(s, y)
        g2 = append_dims(self.sde.diffusion_squared(t), y.dim())
        return -(append_dims(self.sde.drift_coefficient(t), y.dim()) * y - g2 * self.score(y, t))

    def g(self, s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        t = self.time(s, y)
        return append_dims(self.sde.diffusion_squared(t).sqrt(), y.dim()).expand_as(y)


class ProbabilityFlowODE(nn.Module):
    """The probability-flow ODE (Song et al. 2021, eq. 13), in the SDE's own time t:

        dx/dt = f(x, t) − ½ g(t)² ∇ₓ log p_t(x).

    ``torchdiffeq.odeint(flow, x_T, torch.tensor([sde.T, sde.t_min]))`` integrates it from noise to
    data (torchdiffeq accepts decreasing times); ``[t_min, T]`` maps data to noise. For a solver
    that needs increasing time, ``reverse=True`` gives the same ODE in s = T − t (dy/ds = −dx/dt).
    States are ``(B, D)`` or any ``(B, ...)``; ``forward(t, x)`` returns the shape of ``x``.
    """

    def __init__(self, sde: LinearSDE, score: Score, event_shape: tuple[int, ...] | None = None,
                 *, reverse: bool = False) -> None:
        super().__init__()
        _check(sde, score)
        self.sde = sde
        self.score = _ShapedScore(score, event_shape)
        self.reverse = bool(reverse)

    def velocity(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """dx/dt at ``x: (B, ...)`` and times ``t: (B,)``."""
        f = append_dims(self.sde.drift_coefficient(t), x.dim())
        g2 = append_dims(self.sde.diffusion_squared(t), x.dim())
        return f * x - 0.5 * g2 * self.score(x, t)

    def forward(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        if self.reverse:
            return -self.velocity(x, (self.sde.T - t).expand(x.shape[0]))
        return self.velocity(x, t.expand(x.shape[0]))


def reverse_sde(sde: LinearSDE, score: Score, event_shape: tuple[int, ...] | None = None) -> ReverseSDE:
    """The reverse-time SDE of ``sde`` driven by ``score`` (see ``ReverseSDE``), ready for
    ``torchsde.sdeint`` on ``(B, D)`` states; ``event_shape`` is one datum's shape (e.g. (1, 8, 8))."""
    return ReverseSDE(sde, score, event_shape)


def probability_flow(sde: LinearSDE, score: Score, event_shape: tuple[int, ...] | None = None,
                     *, reverse: bool = False) -> ProbabilityFlowODE:
    """The probability-flow ODE of ``sde`` driven by ``score`` (see ``ProbabilityFlowODE``), ready
    for ``torchdiffeq.odeint``."""
    return ProbabilityFlowODE(sde, score, event_shape, reverse=reverse)
