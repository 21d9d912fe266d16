"""Soft (entropy-regularised) value iteration."""

from __future__ import annotations

import math

import torch

from mathml.rl._checks import check_discounted, initial_values
from mathml.rl.bellman import _gamma, q_backup
from mathml.rl.mdp import TabularMDP
from mathml.rl.result import PlanningResult

__all__ = ["soft_value_iteration"]


def soft_value_iteration(
    mdp: TabularMDP, *, tau: float, tol: float = 1e-6, max_iter: int = 100_000, v0: torch.Tensor | None = None
) -> PlanningResult:
    """Soft value iteration ``v <- tau log sum_a exp(q_backup(v)(s, a) / tau)`` with temperature
    ``tau > 0`` (Ziebart 2010, thesis Alg. 9.1 / eq. 6.4; Haarnoja et al. 2017, eq. 4;
    Geist et al. 2019, §3, negative-entropy regulariser).

    The soft operator is a gamma-contraction, and it is convex with gradient a policy
    (``softmax(q / tau)``), so the span bound of ``value_iteration`` holds for it too: with
    ``d = T_tau v - v``, ``T_tau v + c min d <= v*_tau <= T_tau v + c max d``, c = gamma/(1-gamma).
    As tau -> 0 it tends to hard value iteration: ``0 <= v*_tau - v* <= tau log(A) / (1 - gamma)``.

    Returns V = v*_tau (..., S), Q = q_backup(V) (..., S, A), policy = argmax_a Q (..., S) (the
    soft-optimal stochastic policy is ``softmax(Q / tau)``), error_bound (...) on ``V - v*_tau``.
    """
    check_discounted(mdp, "soft_value_iteration")
    if not (isinstance(tau, (int, float)) and tau > 0):
        raise ValueError(f"tau: expected a temperature > 0 (tau -> 0 is hard value iteration), got {tau!r}")
    v = initial_values(mdp, v0)
    c = _gamma(mdp, 0) / (1 - _gamma(mdp, 0))
    residuals: list[float] = []
    converged = False
    n = 0
    for n in range(1, max_iter + 1):
        v_next = tau * torch.logsumexp(q_backup(mdp, v) / tau, dim=-1)
        d = v_next - v
        hi, lo = d.amax(-1), d.amin(-1)
        residuals.append(float((hi - lo).max()))
        v = v_next
        if bool((c * (hi - lo) / 2 <= tol).all()):
            converged = True
            break
    v = v + _gamma(mdp, 1) / (1 - _gamma(mdp, 1)) * ((hi + lo) / 2).unsqueeze(-1)
    bound = c * (hi - lo) / 2 if converged else torch.full_like(hi, math.inf)
    q = q_backup(mdp, v)
    return PlanningResult(v, q, q.argmax(-1), n, residuals, bound, converged, "soft_value_iteration")
