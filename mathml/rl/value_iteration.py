"""Value iteration with a guaranteed stopping rule, its Gauss–Seidel variant, and Q-value iteration."""

from __future__ import annotations

import torch

from mathml.rl._checks import check_discounted, initial_values
from mathml.rl.bellman import _gamma, q_backup
from mathml.rl.mdp import TabularMDP
from mathml.rl.result import PlanningResult, certify

__all__ = ["value_iteration", "gauss_seidel_value_iteration", "q_value_iteration"]


def _finish(mdp, v, iterations, residuals, converged, name) -> PlanningResult:
    v_mid, bound, _, _ = certify(mdp, v)
    q = q_backup(mdp, v_mid)
    return PlanningResult(v_mid, q, q.argmax(-1), iterations, residuals,
                          bound if converged else torch.full_like(bound, float("inf")),
                          converged, name)


def _span_stopped_iteration(mdp: TabularMDP, v: torch.Tensor, tol: float, max_iter: int, name: str) -> PlanningResult:
    """v_{n+1} = T v_n until the span bound of ``value_iteration`` certifies ``tol``; v: (..., S)."""
    c = _gamma(mdp, 0) / (1 - _gamma(mdp, 0))
    residuals: list[float] = []
    for n in range(1, max_iter + 1):
        v_next = q_backup(mdp, v).amax(-1)
        d = v_next - v
        width = d.amax(-1) - d.amin(-1)
        residuals.append(float(width.max()))
        v = v_next
        if bool((c * width / 2 <= tol).all()):
            return _finish(mdp, v - d, n, residuals, True, name)
    return _finish(mdp, v, max_iter, residuals, False, name)


def value_iteration(
    mdp: TabularMDP, *, tol: float = 1e-6, max_iter: int = 100_000, v0: torch.Tensor | None = None
) -> PlanningResult:
    """Value iteration ``v_{n+1} = T v_n`` (Bellman 1957; Puterman 1994, §6.3) with a stopping
    rule that guarantees ``||V - V*||_inf <= tol``.

    After each backup, with ``d = v_{n+1} - v_n`` and ``c = gamma / (1 - gamma)``, v* lies in
    ``[v_{n+1} + c min d, v_{n+1} + c max d]`` (Puterman 1994, §6.6.3). We stop when half that
    width, ``c * sp(d) / 2``, is <= tol and return the midpoint ``v_{n+1} + c (max d + min d) / 2``
    (the span contracts even where sup-norm residuals stall, Puterman Thm 6.6.6).

    mdp: dense, batched or sparse; v0: optional (..., S) start (default zeros).
    Returns V: (..., S), Q: (..., S, A), policy: (..., S), residuals = span(d) per sweep,
    error_bound: (...).
    """
    check_discounted(mdp, "value_iteration")
    return _span_stopped_iteration(mdp, initial_values(mdp, v0), tol, max_iter, "value_iteration")


def gauss_seidel_value_iteration(
    mdp: TabularMDP, *, tol: float = 1e-6, max_iter: int = 100_000, v0: torch.Tensor | None = None
) -> PlanningResult:
    """Gauss–Seidel value iteration (Puterman 1994, §6.3.3, eq. 6.3.8): states are updated in
    order and each update already uses the new values of the states before it,

        ``v(s) <- max_a [ r(s, a) + gamma sum_{j < s} p(j|s,a) v_new(j) + gamma sum_{j >= s} p(j|s,a) v(j) ]``.

    Implemented exactly, one state at a time (vectorised over the batch), so it suits small MDPs
    (S up to a few thousand); for large sparse MDPs use ``policy_iteration`` (Gauss–Seidel
    evaluation in value order). The stopping rule and bound are those of ``value_iteration``,
    certified by one ordinary backup at the end of each sweep.

    mdp: dense (batched) or sparse. Returns as ``value_iteration``.
    """
    check_discounted(mdp, "gauss_seidel_value_iteration")
    v = initial_values(mdp, v0).clone()
    S = mdp.num_states
    g = _gamma(mdp, 1)
    if mdp.is_sparse:
        P_rows = mdp.P.to_dense().view(S, mdp.num_actions, S) if S <= 20_000 else None
        if P_rows is None:
            raise ValueError(f"gauss_seidel_value_iteration: S={S} too large for exact per-state sweeps")
    else:
        P_rows = mdp.P.transpose(-3, -2)  # (..., S, A, S)
    residuals: list[float] = []
    for n in range(1, max_iter + 1):
        for s in range(S):
            q_s = mdp.R[..., s, :] + g * (P_rows[..., s, :, :] @ v.unsqueeze(-1)).squeeze(-1)
            v[..., s] = q_s.amax(-1)
        _, bound, _, d = certify(mdp, v)
        residuals.append(float((d.amax(-1) - d.amin(-1)).max()))
        if bool((bound <= tol).all()):
            return _finish(mdp, v, n, residuals, True, "gauss_seidel_value_iteration")
    return _finish(mdp, v, max_iter, residuals, False, "gauss_seidel_value_iteration")


def q_value_iteration(
    mdp: TabularMDP, *, tol: float = 1e-6, max_iter: int = 100_000, q0: torch.Tensor | None = None
) -> PlanningResult:
    """Q-value iteration ``q_{n+1}(s, a) = r(s, a) + gamma sum_{s'} p(s'|s,a) max_{a'} q_n(s', a')``
    (Sutton & Barto 2018, eq. 3.20 as an update; Bertsekas & Tsitsiklis 1996, §2.2.1).

    The stop is guaranteed: with ``v_n = max_a q_n`` this is value iteration on v, so the span
    bound of ``value_iteration`` applies to ``v``; the returned ``Q = q_backup(V)`` then satisfies
    ``||Q - Q*||_inf <= gamma * error_bound``.

    q0: optional (..., S, A) start (default zeros). Returns as ``value_iteration``.
    """
    check_discounted(mdp, "q_value_iteration")
    want = (*mdp.batch_shape, mdp.num_states, mdp.num_actions)
    if q0 is not None and tuple(q0.shape) != want:
        raise ValueError(f"q0: expected shape {want}, got {tuple(q0.shape)}")
    q = q0 if q0 is not None else torch.zeros(want, dtype=mdp.dtype, device=mdp.device)
    # With v_n = max_a q_n, q_{n+1} = q_backup(v_n): the same iteration on v.
    return _span_stopped_iteration(mdp, q.amax(-1), tol, max_iter, "q_value_iteration")
