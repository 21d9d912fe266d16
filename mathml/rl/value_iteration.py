"""Value iteration, its Gauss–Seidel variant and Q-value iteration, on one span-stopped loop."""

from __future__ import annotations

import torch

from mathml.rl._checks import check_discounted, initial_values
from mathml.rl._stopping import Stopper, check_iteration_args, finish
from mathml.rl.bellman import _gamma, q_backup
from mathml.rl.certificate import HARD_MAX, HardMax, SoftMax
from mathml.rl.mdp import TabularMDP
from mathml.rl.result import PlanningResult

__all__ = ["value_iteration", "gauss_seidel_value_iteration", "q_value_iteration"]


def span_stopped_iteration(
    mdp: TabularMDP, v: torch.Tensor, operator: HardMax | SoftMax, tol: float, max_iter: int, name: str
) -> PlanningResult:
    """The one loop of value, soft value and Q-value iteration: ``v_{n+1} = T v_n`` with
    ``T v = operator(q_backup(mdp, v))``, until the certificate of ``v_n`` meets ``tol``.

    v: (..., S) start. The result's V is the certificate's midpoint
    ``T v_n + (L(min d) + U(max d)) / 2`` (Puterman 1994, §6.6.3; ``mathml.rl.certificate``).
    """
    stop = Stopper(mdp, tol, name, operator)
    for n in range(1, max_iter + 1):
        q = q_backup(mdp, v)
        tv = operator(q)
        cert = stop(v, q, tv)
        del q  # freed before the next backup allocates its own
        if cert is not None:
            return finish(mdp, cert, n, stop)
        v = stop.next_iterate(tv)
    return finish(mdp, stop.final(v), max_iter, stop)


def value_iteration(
    mdp: TabularMDP, *, tol: float = 1e-6, max_iter: int = 100_000, v0: torch.Tensor | None = None
) -> PlanningResult:
    """Value iteration ``v_{n+1} = T v_n`` (Bellman 1957; Puterman 1994, §6.3) with a stopping
    rule that guarantees ``||V - V*||_inf <= tol``.

    After each backup, with ``d = T v_n - v_n`` and ``c = gamma / (1 - gamma)``, v* lies in
    ``[T v_n + c min d, T v_n + c max d]`` (Puterman 1994, §6.6.3), widened for row defects and
    rounding (``mathml.rl.certificate``). We stop when the half-width is <= tol and return the
    midpoint (the span contracts even where sup-norm residuals stall, Puterman Thm 6.6.6).

    mdp: dense, batched or sparse; tol: target for ``error_bound`` (a ValueError if the dtype's
    rounding cannot reach it); max_iter: cap on backups; v0: optional (..., S) start (default
    zeros). Returns V: (..., S), Q: (..., S, A), policy: (..., S), residuals (the half-width per
    backup), error_bound and policy_error_bound: (...).
    """
    check_discounted(mdp, "value_iteration")
    tol = check_iteration_args(tol, max_iter)
    return span_stopped_iteration(mdp, initial_values(mdp, v0), HARD_MAX, tol, max_iter, "value_iteration")


def gauss_seidel_value_iteration(
    mdp: TabularMDP, *, tol: float = 1e-6, max_iter: int = 100_000, v0: torch.Tensor | None = None
) -> PlanningResult:
    """Gauss–Seidel value iteration (Puterman 1994, §6.3.3, eq. 6.3.8): states are updated in
    order and each update already uses the new values of the states before it,

        ``v(s) <- max_a [ r(s, a) + gamma sum_{j < s} p(j|s,a) v_new(j) + gamma sum_{j >= s} p(j|s,a) v(j) ]``.

    Implemented exactly, one state at a time (vectorised over the batch), so it suits small MDPs
    (S up to a few thousand); for large sparse MDPs use ``policy_iteration`` (Gauss–Seidel
    evaluation in value order). The stopping rule and bounds are those of ``value_iteration``,
    certified by one ordinary backup at the end of each sweep.

    mdp: dense (batched) or sparse. Returns as ``value_iteration``.
    """
    check_discounted(mdp, "gauss_seidel_value_iteration")
    tol = check_iteration_args(tol, max_iter)
    v = initial_values(mdp, v0).clone()
    S = mdp.num_states
    g = _gamma(mdp, 1)
    if mdp.is_sparse:
        if S > 20_000:
            raise ValueError(f"gauss_seidel_value_iteration: S={S} too large for exact per-state sweeps")
        P_rows = mdp.P.to_dense().view(S, mdp.num_actions, S)
    else:
        P_rows = mdp.P.transpose(-3, -2)  # (..., S, A, S)
    stop = Stopper(mdp, tol, "gauss_seidel_value_iteration")
    for n in range(1, max_iter + 1):
        for s in range(S):
            q_s = mdp.R[..., s, :] + g * (P_rows[..., s, :, :] @ v.unsqueeze(-1)).squeeze(-1)
            v[..., s] = q_s.amax(-1)
        q = q_backup(mdp, v)
        cert = stop(v, q, q.amax(-1))
        if cert is not None:
            return finish(mdp, cert, n, stop)
        if stop.restart is not None:
            v = stop.next_iterate(v).clone()
    return finish(mdp, stop.final(v), max_iter, stop)


def q_value_iteration(
    mdp: TabularMDP, *, tol: float = 1e-6, max_iter: int = 100_000, q0: torch.Tensor | None = None
) -> PlanningResult:
    """Q-value iteration ``q_{n+1}(s, a) = r(s, a) + gamma sum_{s'} p(s'|s,a) max_{a'} q_n(s', a')``
    (Sutton & Barto 2018, eq. 3.20 as an update; Bertsekas & Tsitsiklis 1996, §2.2.1).

    With ``v_n = max_a q_n`` this is value iteration on v (the same loop), so the certificate of
    ``value_iteration`` applies to ``V``; the returned ``Q = q_backup(V)`` then satisfies
    ``||Q - Q*||_inf <= gamma sigma_hi error_bound`` plus the backup's rounding (sigma_hi: the
    largest row sum of the stored P, 1 up to rounding).

    q0: optional (..., S, A) start (default zeros). Returns as ``value_iteration``.
    """
    check_discounted(mdp, "q_value_iteration")
    tol = check_iteration_args(tol, max_iter)
    want = (*mdp.batch_shape, mdp.num_states, mdp.num_actions)
    if q0 is not None and tuple(q0.shape) != want:
        raise ValueError(f"q0: expected shape {want}, got {tuple(q0.shape)}")
    q = q0.to(dtype=mdp.dtype, device=mdp.device) if q0 is not None else torch.zeros(
        want, dtype=mdp.dtype, device=mdp.device
    )
    return span_stopped_iteration(mdp, q.amax(-1), HARD_MAX, tol, max_iter, "q_value_iteration")
