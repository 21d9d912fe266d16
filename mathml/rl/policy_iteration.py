"""Policy iteration (exact evaluation) and modified policy iteration."""

from __future__ import annotations

import torch

from mathml.checks import check_nonnegative_int
from mathml.rl._checks import check_discounted, initial_values
from mathml.rl._linear import evaluate_gauss_seidel, solve_dense
from mathml.rl._stopping import Stopper, check_iteration_args, finish
from mathml.rl.bellman import _gamma, greedy_policy, q_backup
from mathml.rl.mdp import TabularMDP
from mathml.rl.result import PlanningResult

__all__ = ["policy_iteration", "modified_policy_iteration", "policy_evaluation"]


def policy_evaluation(
    mdp: TabularMDP, policy: torch.Tensor, *, tol: float = 1e-10, v0: torch.Tensor | None = None
) -> torch.Tensor:
    """``v_pi = (I - gamma P_pi)^{-1} r_pi`` (Puterman 1994, Thm 6.1.1; Sutton & Barto eq. 4.4).

    Dense: ``torch.linalg.solve`` (gamma = 1 allowed when every non-absorbing state reaches an
    absorbing zero-reward one). Sparse: Gauss–Seidel sweeps in value order until
    ``||v - v_pi||_inf <= tol`` is certified (see ``_linear.py``).
    policy: (..., S) integer actions. Returns v_pi: (..., S).
    """
    want = (*mdp.batch_shape, mdp.num_states)
    if tuple(policy.shape) != want or policy.dtype.is_floating_point:
        raise ValueError(f"policy: expected integer actions of shape {want}, got {policy.dtype} {tuple(policy.shape)}")
    P_pi, r_pi = mdp.policy_model(policy)
    if not mdp.is_sparse:
        return solve_dense(P_pi, r_pi, mdp.gamma)
    check_discounted(mdp, "policy_evaluation (sparse)")
    v = initial_values(mdp, v0)
    return evaluate_gauss_seidel(P_pi, r_pi, float(mdp.gamma), v, tol=tol)[0]


def policy_iteration(
    mdp: TabularMDP, *, tol: float = 1e-6, max_iter: int = 1_000, v0: torch.Tensor | None = None
) -> PlanningResult:
    """Policy iteration (Howard 1960; Puterman 1994, §6.4; Sutton & Barto 2018, §4.3).

    Repeat: improve ``pi <- argmax_a q_backup(mdp, v)``; evaluate ``v <- v_pi``. Dense MDPs (and
    batches) evaluate exactly with ``torch.linalg.solve``; sparse MDPs by certified Gauss–Seidel
    sweeps in value order to an accuracy tied to the current optimality gap (an inexact policy
    iteration, Puterman 1994 §6.5).

    Every iterate is certified by its backup (``mathml.rl.certificate``; Puterman 1994, §6.6.3),
    and the planner stops when that certificate is <= tol. A dense solve whose policy is stable
    cannot improve further: if its certificate is above tol, tol is below the dtype's rounding and
    a ValueError says so. residuals[k] = the half-width after improvement k (max over the batch).
    """
    check_discounted(mdp, "policy_iteration")
    tol = check_iteration_args(tol, max_iter)
    v = initial_values(mdp, v0)
    gamma = float(mdp.gamma.max())
    stop = Stopper(mdp, tol, "policy_iteration")
    policy = None
    for k in range(1, max_iter + 1):
        q = q_backup(mdp, v)
        tv = q.amax(-1)
        cert = stop(v, q, tv)
        if cert is not None:
            return finish(mdp, cert, k, stop)
        new_policy = greedy_policy(q, tv)
        if policy is not None and not mdp.is_sparse and bool((new_policy == policy).all()):
            cert = stop.final(v)  # exact evaluation of a stable policy: nothing left to improve
            if cert.met(tol):
                return finish(mdp, cert, k, stop)
            raise stop.unreachable(cert)
        policy = new_policy
        if mdp.is_sparse:
            P_pi, r_pi = mdp.policy_model(policy)
            eval_tol = max(min(tol, stop.residuals[-1]) * (1 - gamma) / 4, 1e-14)
            v = evaluate_gauss_seidel(P_pi, r_pi, gamma, tv, tol=eval_tol)[0]
        else:
            v = policy_evaluation(mdp, policy)
    return finish(mdp, stop.final(v), max_iter, stop)


def _partial_evaluation(
    P_pi: torch.Tensor, r_pi: torch.Tensor, gamma: float, v: torch.Tensor, sweeps: int, span_tol: float
) -> torch.Tensor:
    """``v <- T_pi^m v`` with ``m <= sweeps`` for a sparse (CSR) ``P_pi: (S, S)``, ``r_pi, v: (S,)``.

    On the CPU each sweep is one fused ``addmv`` (``r_pi + gamma P_pi v``) into one of two reused
    buffers.
    Every 5 sweeps the span of ``T_pi v - v`` is checked, and the sweeps stop once it is <=
    ``span_tol``: if pi is still greedy, the next certificate is then met (Puterman 1994,
    §6.6.3), so further sweeps would be wasted. (The certificate, not this test, decides.)
    """
    buf, d = torch.empty_like(v), torch.empty_like(v)
    for m in range(1, sweeps + 1):
        if v.device.type == "cpu":
            torch.addmv(r_pi, P_pi, v, alpha=gamma, out=buf)
        else:  # the form the CUDA tests ran with (cuSPARSE mat-vec)
            buf = r_pi + gamma * (P_pi @ v)
        v, buf = buf, v
        if m % 5 == 0 and m < sweeps:
            torch.sub(v, buf, out=d)
            if float(d.amax() - d.amin()) <= span_tol:
                break
    return v


def modified_policy_iteration(
    mdp: TabularMDP,
    *,
    tol: float = 1e-6,
    sweeps: int = 50,
    max_iter: int = 100_000,
    v0: torch.Tensor | None = None,
) -> PlanningResult:
    """Modified policy iteration (Puterman & Shin 1978; Puterman 1994, §6.5): improve
    ``pi <- argmax_a q_backup(mdp, v)``, then apply ``T_pi`` ``sweeps`` times (``v <- r_pi +
    gamma P_pi v``, partial evaluation). ``sweeps = 0`` is value iteration; ``sweeps -> inf``
    policy iteration. Each sweep costs one mat-vec with ``P_pi`` (1/A of a full backup), so it is
    the fastest planner on slowly mixing MDPs and the GPU-friendly one. Stops when the
    certificate of ``value_iteration`` (``mathml.rl.certificate``; Puterman 1994 §6.6.3) is <= tol.

    Converges from any v0 with ``T v0 >= v0`` (e.g. ``v0 <= min r / (1 - gamma)``; the default
    starts there), Puterman 1994 Thm 6.5.5. Returns as ``value_iteration``. Once a certificate
    fails at rounding level, the remaining iterations are plain backups (``sweeps = 0``): the
    rounding of ``sweeps`` partial-evaluation steps accumulates, that of one backup does not.

    Sparse MDPs: ``P_pi`` (CSR, 1/A of P's bytes; int32 indices) lives only during the sweeps
    and the backup's ``(S, A)`` values only during the improvement, so the peak extra memory is
    about ``max(bytes of P_pi, 8 S A bytes)`` plus a few ``(S,)`` vectors.
    """
    check_discounted(mdp, "modified_policy_iteration")
    tol = check_iteration_args(tol, max_iter)
    check_nonnegative_int(sweeps, "sweeps")
    g = _gamma(mdp, 1)
    if v0 is None:
        r_min = mdp.R.amin(dim=(-1, -2), keepdim=False)
        v = (r_min / (1 - mdp.gamma)).unsqueeze(-1).expand(*mdp.batch_shape, mdp.num_states).clone()
    else:
        v = initial_values(mdp, v0)
    stop = Stopper(mdp, tol, "modified_policy_iteration")
    for k in range(1, max_iter + 1):
        q = q_backup(mdp, v)
        tv = q.amax(-1)
        cert = stop(v, q, tv)
        if cert is not None:
            del q, tv
            return finish(mdp, cert, k, stop)
        v = stop.next_iterate(tv)  # T v (or, after a failed certificate, its midpoint)
        policy = greedy_policy(q, tv)
        del q, tv  # only v and policy live on: P_pi is built into the freed space
        if not sweeps or stop.failures:
            # A certificate failed at rounding level: the rounding of m sweeps accumulates (about m
            # backups' worth), so finish with plain backups (value iteration), whose rounding does not.
            continue
        P_pi, r_pi = mdp.policy_model(policy)
        if mdp.is_sparse:
            gamma = float(mdp.gamma)
            v = _partial_evaluation(P_pi, r_pi, gamma, v, sweeps, tol * (1 - gamma) / gamma)
        else:
            for _ in range(sweeps):
                v = r_pi + g * (P_pi @ v.unsqueeze(-1)).squeeze(-1)
        del P_pi, r_pi
    return finish(mdp, stop.final(v), max_iter, stop)
