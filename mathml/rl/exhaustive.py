"""Ground truth for small MDPs: the value of every deterministic policy, solved to near-exactness.

Used to test the planners' certificates (and by ``benchmarks/rl_certificates.py``). Independent of
every planner: no Bellman backup, no stopping rule, only linear solves.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import torch

from mathml.checks import check_positive_int
from mathml.rl.mdp import TabularMDP

__all__ = ["ExhaustiveSolution", "exhaustive_solution"]


@dataclass
class ExhaustiveSolution:
    """policies: (N, S) every deterministic policy (``itertools.product`` order); values: (N, S)
    their values ``v_pi`` (np.longdouble); V_star: (S,) ``max_pi v_pi``; correction: the size of
    the last refinement step, an estimate of the error left in ``values``."""

    policies: np.ndarray
    values: np.ndarray
    V_star: np.ndarray
    correction: float
    num_actions: int

    def value_of(self, policy: torch.Tensor | np.ndarray) -> np.ndarray:
        """v_pi of a deterministic policy: (S,) integer actions -> (S,) np.longdouble."""
        pi = np.asarray(torch.as_tensor(policy).cpu(), dtype=np.int64)
        index = int(np.ravel_multi_index(tuple(pi), (self.num_actions,) * pi.shape[0]))
        return self.values[index]


def exhaustive_solution(mdp: TabularMDP, *, refinements: int = 3, max_policies: int = 100_000) -> ExhaustiveSolution:
    """``v_pi = (I - gamma P_pi)^{-1} r_pi`` for all ``A^S`` deterministic policies (Puterman 1994,
    Thm 6.1.1) and ``V* = max_pi v_pi`` (an optimal deterministic stationary policy exists,
    Puterman 1994, Thm 6.2.10; with nonnegative P and gamma * max row sum < 1 the same holds).

    The MDP is the stored arrays, read exactly (a float32 array is cast to float64 without
    rounding). Each system is solved in float64, then refined ``refinements`` times with the
    residual ``r - (I - gamma P) v`` computed in extended precision (np.longdouble, 64-bit
    mantissa on x86; Higham 2002, §12.1, iterative refinement with a more precise residual).

    mdp: a dense, unbatched MDP with ``A^S <= max_policies``.
    """
    if mdp.is_sparse or mdp.batch_shape:
        raise ValueError(f"mdp: expected a dense, unbatched MDP, got {mdp!r}")
    check_positive_int(refinements, "refinements")
    S, A = mdp.num_states, mdp.num_actions
    if A**S > max_policies:
        raise ValueError(f"mdp: A^S = {A}^{S} policies exceed max_policies={max_policies}")
    P = mdp.P.detach().cpu().to(torch.float64).numpy()  # (A, S, S), exact copies of the entries
    R = mdp.R.detach().cpu().to(torch.float64).numpy()  # (S, A)
    gamma = float(mdp.gamma)
    policies = np.array(list(itertools.product(range(A), repeat=S)), dtype=np.int64)  # (N, S)
    rows = np.arange(S)
    P_pi = P[policies, rows]  # (N, S, S)
    r_pi = R[rows, policies]  # (N, S)
    M = np.eye(S) - gamma * P_pi
    M_ld = np.eye(S, dtype=np.longdouble) - np.longdouble(gamma) * P_pi.astype(np.longdouble)
    v = np.linalg.solve(M, r_pi[..., None])[..., 0].astype(np.longdouble)
    correction = float("inf")
    for _ in range(refinements):
        residual = r_pi.astype(np.longdouble) - np.einsum("nij,nj->ni", M_ld, v)
        dv = np.linalg.solve(M, residual.astype(np.float64)[..., None])[..., 0]
        v = v + dv.astype(np.longdouble)
        correction = float(np.abs(dv).max())
    return ExhaustiveSolution(policies, v, v.max(0), correction, A)
