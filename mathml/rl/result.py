"""The result every planner returns."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["PlanningResult"]


@dataclass
class PlanningResult:
    """Output of a planner.

    V: (..., S) values; Q: (..., S, A) action values ``q_backup(mdp, V)`` (in the MDP's dtype);
    policy: (..., S) greedy actions for Q; iterations: outer iterations (sweeps, policy
    improvements or stages); residuals: one float per iteration (the half-width of the span
    enclosure, max over the batch).

    error_bound: (...) float64, a true bound on ``||V - V*||_inf`` for the MDP as stored (its
    arrays read as exact numbers; row defects and floating-point rounding included, see
    ``mathml.rl.certificate``); finite even when ``converged`` is False. policy_error_bound:
    (...) float64, a true bound on ``||V^policy - V*||_inf`` (Singh & Yee 1994; for soft value
    iteration V* is the unregularised optimum). converged: ``error_bound <= tol`` everywhere.
    tol: the tolerance asked for (None for backward induction).
    """

    V: torch.Tensor
    Q: torch.Tensor
    policy: torch.Tensor
    iterations: int
    residuals: list[float] = field(default_factory=list)
    error_bound: torch.Tensor | float = float("inf")
    converged: bool = False
    algorithm: str = ""
    policy_error_bound: torch.Tensor | float = float("inf")
    tol: float | None = None

    @property
    def max_error_bound(self) -> float:
        return float(torch.as_tensor(self.error_bound).max())

    @property
    def max_policy_error_bound(self) -> float:
        return float(torch.as_tensor(self.policy_error_bound).max())
