"""Soft (entropy-regularised) value iteration."""

from __future__ import annotations

import torch

from mathml.checks import check_positive
from mathml.rl._checks import check_discounted, initial_values
from mathml.rl._stopping import check_iteration_args
from mathml.rl.certificate import SoftMax
from mathml.rl.mdp import TabularMDP
from mathml.rl.result import PlanningResult
from mathml.rl.value_iteration import span_stopped_iteration

__all__ = ["soft_value_iteration"]


def soft_value_iteration(
    mdp: TabularMDP, *, tau: float, tol: float = 1e-6, max_iter: int = 100_000, v0: torch.Tensor | None = None
) -> PlanningResult:
    """Soft value iteration ``v <- tau log sum_a exp(q_backup(v)(s, a) / tau)`` with temperature
    ``tau > 0`` (Ziebart 2010, thesis Alg. 9.1 / eq. 6.4; Haarnoja et al. 2017, eq. 4;
    Geist et al. 2019, §3, negative-entropy regulariser).

    The soft operator is a gamma-contraction, and it is convex with gradient a policy
    (``softmax(q / tau)``), so the certified span bound of ``value_iteration`` holds for it too
    (``mathml.rl.certificate``): with ``d = T_tau v - v``, ``T_tau v + c min d <= v*_tau <=
    T_tau v + c max d``, c = gamma/(1-gamma). It runs on value iteration's loop with the operator
    swapped. As tau -> 0 it tends to hard value iteration:
    ``0 <= v*_tau - v* <= tau log(A) / (1 - gamma)``.

    Returns V = v*_tau (..., S), Q = q_backup(V) (..., S, A), policy = argmax_a Q (..., S) (the
    soft-optimal stochastic policy is ``softmax(Q / tau)``), error_bound (...) on ``V - v*_tau``,
    policy_error_bound (...) on the greedy policy's loss against the unregularised v*.
    """
    check_discounted(mdp, "soft_value_iteration")
    tau = check_positive(tau, "tau")
    tol = check_iteration_args(tol, max_iter)
    return span_stopped_iteration(mdp, initial_values(mdp, v0), SoftMax(tau), tol, max_iter, "soft_value_iteration")
