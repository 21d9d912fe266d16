"""The result every planner returns, and the certified error bound they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mathml.rl.bellman import _gamma, q_backup
from mathml.rl.mdp import TabularMDP

__all__ = ["PlanningResult", "certify"]


@dataclass
class PlanningResult:
    """Output of a planner.

    V: (..., S) values; Q: (..., S, A) action values ``q_backup(mdp, V)``; policy: (..., S)
    greedy actions; iterations: outer iterations (sweeps, policy improvements or stages);
    residuals: one float per iteration (the sup-norm of the last change, or the span for value
    iteration; the max over the batch); error_bound: (...) guaranteed ``||V - V*||_inf`` (``inf``
    when nothing is guaranteed, e.g. an iteration cap was hit); converged: whether the stopping
    rule was met.
    """

    V: torch.Tensor
    Q: torch.Tensor
    policy: torch.Tensor
    iterations: int
    residuals: list[float] = field(default_factory=list)
    error_bound: torch.Tensor | float = float("inf")
    converged: bool = True
    algorithm: str = ""

    @property
    def max_error_bound(self) -> float:
        return float(torch.as_tensor(self.error_bound).max())


def certify(mdp: TabularMDP, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Bellman backup of ``v`` turned into a guaranteed enclosure of ``v*``.

    For any v, with ``d = T v - v`` and ``c = gamma / (1 - gamma)`` (MacQueen 1966; Porteus 1971;
    Puterman 1994, §6.6.3, Thm 6.6.3):

        T v + c * min_s d(s)  <=  v*  <=  T v + c * max_s d(s).

    Returns ``(v_mid, bound, q, d)`` with ``v_mid = T v + c (max d + min d) / 2`` and
    ``bound = c (max d - min d) / 2 >= ||v_mid - v*||_inf``; ``q = q_backup(mdp, v)``. Shapes:
    v: (..., S) -> v_mid (..., S), bound (...), q (..., S, A), d (..., S).
    """
    q = q_backup(mdp, v)
    tv = q.amax(-1)
    d = tv - v
    hi, lo = d.amax(-1), d.amin(-1)
    c = mdp.gamma / (1 - mdp.gamma)
    v_mid = tv + _gamma(mdp, 1) / (1 - _gamma(mdp, 1)) * ((hi + lo) / 2).unsqueeze(-1)
    return v_mid, c * (hi - lo) / 2, q, d
