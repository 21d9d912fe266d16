"""Finite-horizon planning by backward induction."""

from __future__ import annotations

import torch

from mathml.rl.bellman import _gamma
from mathml.rl.mdp import TabularMDP
from mathml.rl.result import PlanningResult

__all__ = ["backward_induction"]


def backward_induction(
    mdp: TabularMDP, horizon: int, *, v_terminal: torch.Tensor | None = None
) -> PlanningResult:
    """Backward induction over ``horizon`` stages (Puterman 1994, §4.5, eq. 4.5.1):

        ``v_H = v_terminal``;  ``q_t(s, a) = r(s, a) + gamma sum_{s'} p(s'|s,a) v_{t+1}(s')``;
        ``v_t = max_a q_t``,  ``pi_t = argmax_a q_t``   for t = H-1, ..., 0.

    Exact (no error bound needed: error_bound = 0); gamma = 1 is allowed.
    v_terminal: (..., S) terminal reward (default 0).
    Returns V = v_0 (..., S), Q = q_0 (..., S, A), policy: (H, ..., S) with policy[t] = pi_t,
    iterations = H, residuals = sup-norm of v_t - v_{t+1} per stage.
    """
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"mdp: expected a TabularMDP, got {type(mdp).__name__}")
    if not isinstance(horizon, int) or horizon < 1:
        raise ValueError(f"horizon: expected an int >= 1, got {horizon!r}")
    want = (*mdp.batch_shape, mdp.num_states)
    if v_terminal is None:
        v = torch.zeros(want, dtype=mdp.dtype, device=mdp.device)
    elif tuple(v_terminal.shape) != want:
        raise ValueError(f"v_terminal: expected shape {want}, got {tuple(v_terminal.shape)}")
    else:
        v = v_terminal.to(dtype=mdp.dtype, device=mdp.device)
    g = _gamma(mdp, 2)
    policies, residuals = [], []
    for _ in range(horizon):
        q = mdp.R + g * mdp.expected_next(v)
        v_new = q.amax(-1)
        residuals.append(float((v_new - v).abs().max()))
        policies.append(q.argmax(-1))
        v = v_new
    policy = torch.stack(policies[::-1])
    return PlanningResult(v, q, policy, horizon, residuals, torch.zeros_like(mdp.gamma), True, "backward_induction")
