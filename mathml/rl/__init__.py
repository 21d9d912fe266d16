"""Tabular MDPs and planning: Bellman operators, value/policy/Q iteration, soft VI, backward
induction; dense, sparse and batched; the same code on CPU and CUDA.

Every infinite-horizon planner returns a certified ``error_bound`` on ``||V - V*||_inf`` and a
``policy_error_bound`` for its greedy policy, true bounds for the MDP as stored, in every dtype
(``mathml.rl.certificate``). Heavy optional dependencies (gymnasium, scipy) are imported inside the functions that need them.
"""

from mathml.rl.bellman import (
    bellman_expectation,
    bellman_optimality,
    greedy_policy,
    q_backup,
    soft_bellman_optimality,
    span,
)
from mathml.rl.certificate import Certificate, HardMax, SoftMax, certify
from mathml.rl.exhaustive import ExhaustiveSolution, exhaustive_solution
from mathml.rl.finite_horizon import backward_induction
from mathml.rl.gridworlds import GRID_MOVES, slippery_gridworld, sutton_barto_4x4, sutton_barto_5x5
from mathml.rl.mdp import TabularMDP
from mathml.rl.policy_iteration import modified_policy_iteration, policy_evaluation, policy_iteration
from mathml.rl.random_mdp import random_dense_mdp, random_sparse_mdp
from mathml.rl.result import PlanningResult
from mathml.rl.soft import soft_value_iteration
from mathml.rl.value_iteration import gauss_seidel_value_iteration, q_value_iteration, value_iteration

__all__ = [
    "GRID_MOVES",
    "Certificate",
    "ExhaustiveSolution",
    "HardMax",
    "PlanningResult",
    "SoftMax",
    "TabularMDP",
    "backward_induction",
    "bellman_expectation",
    "bellman_optimality",
    "certify",
    "exhaustive_solution",
    "gauss_seidel_value_iteration",
    "greedy_policy",
    "modified_policy_iteration",
    "policy_evaluation",
    "policy_iteration",
    "q_backup",
    "q_value_iteration",
    "random_dense_mdp",
    "random_sparse_mdp",
    "slippery_gridworld",
    "soft_bellman_optimality",
    "soft_value_iteration",
    "span",
    "sutton_barto_4x4",
    "sutton_barto_5x5",
    "value_iteration",
]
