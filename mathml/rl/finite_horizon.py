"""Finite-horizon planning by backward induction."""

from __future__ import annotations

import torch

from mathml.checks import check_positive_int
from mathml.rl.bellman import _gamma
from mathml.rl.certificate import _gamma_n, row_stats, unit_roundoff
from mathml.rl.mdp import TabularMDP
from mathml.rl.result import PlanningResult

__all__ = ["backward_induction"]


def backward_induction(
    mdp: TabularMDP, horizon: int, *, v_terminal: torch.Tensor | None = None
) -> PlanningResult:
    """Backward induction over ``horizon`` stages (Puterman 1994, §4.5, eq. 4.5.1):

        ``v_H = v_terminal``;  ``q_t(s, a) = r(s, a) + gamma sum_{s'} p(s'|s,a) v_{t+1}(s')``;
        ``v_t = max_a q_t``,  ``pi_t = argmax_a q_t``   for t = H-1, ..., 0.

    gamma = 1 is allowed. Exact in exact arithmetic; in floating point each stage's backup errs by
    at most ``e_t = gamma_{n+3} (||R|| + gamma sigma_hi ||v_{t+1}||)`` (Higham 2002, §3.1; n: most
    nonzeros in a row of P, sigma_hi: largest row sum), so ``error_bound = eps_0`` with
    ``eps_t = e_t + gamma sigma_hi eps_{t+1}``, ``eps_H = 0``, bounds ``||V - v_0||_inf`` for the
    stored MDP; the computed greedy actions lose at most ``2 (e_t + gamma sigma_hi eps_{t+1})``
    at stage t, so ``policy_error_bound = l_0``, ``l_t = 2 (e_t + gamma sigma_hi eps_{t+1}) +
    gamma sigma_hi l_{t+1}`` (the finite-horizon analogue of Singh & Yee 1994).
    v_terminal: (..., S) terminal reward (default 0).
    Returns V = v_0 (..., S), Q = q_0 (..., S, A), policy: (H, ..., S) with policy[t] = pi_t,
    iterations = H, residuals = sup-norm of v_t - v_{t+1} per stage.
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp: expected a TabularMDP, got {type(mdp).__name__}")
    check_positive_int(horizon, "horizon")
    want = (*mdp.batch_shape, mdp.num_states)
    if v_terminal is None:
        v = torch.zeros(want, dtype=mdp.dtype, device=mdp.device)
    elif tuple(v_terminal.shape) != want:
        raise ValueError(f"v_terminal: expected shape {want}, got {tuple(v_terminal.shape)}")
    else:
        v = v_terminal.to(dtype=mdp.dtype, device=mdp.device)
    g = _gamma(mdp, 2)
    st = row_stats(mdp)
    g_n = _gamma_n(st.n + 3, unit_roundoff(mdp.dtype))
    beta = mdp.gamma.to(torch.float64) * st.sigma_hi * (1 + 2 * unit_roundoff(torch.float64))
    eps = loss = torch.zeros_like(beta)
    policies, residuals = [], []
    for _ in range(horizon):
        e_t = g_n * (st.r_max + beta * v.to(torch.float64).abs().amax(-1))
        q = mdp.R + g * mdp.expected_next(v)
        v_new = q.amax(-1)
        residuals.append(float((v_new - v).abs().max()))
        policies.append(q.argmax(-1))
        loss = 2 * (e_t + beta * eps) + beta * loss
        eps = e_t + beta * eps
        v = v_new
    policy = torch.stack(policies[::-1])
    up = 1 + 8 * unit_roundoff(torch.float64)  # the float64 sums above
    return PlanningResult(v, q, policy, horizon, residuals, eps * up, True, "backward_induction", loss * up)
