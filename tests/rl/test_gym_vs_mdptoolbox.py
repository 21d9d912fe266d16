"""Toy-text environments: our optimum equals pymdptoolbox's policy iteration (an oracle)."""

import numpy as np
import pytest
import torch

gym = pytest.importorskip("gymnasium")
mdptoolbox = pytest.importorskip("mdptoolbox.mdp")

from mathml.rl import (  # noqa: E402
    TabularMDP,
    gauss_seidel_value_iteration,
    modified_policy_iteration,
    policy_iteration,
    q_value_iteration,
    value_iteration,
)

ENVS = [
    ("FrozenLake-v1", {}),
    ("FrozenLake-v1", {"map_name": "8x8"}),
    ("Taxi-v4", {}),
    ("CliffWalking-v1", {}),
]


def _oracle(mdp):
    """pymdptoolbox PolicyIteration (exact matrix evaluation) on the same (absorbing-fixed) arrays."""
    pi = mdptoolbox.PolicyIteration(mdp.P.numpy(), mdp.R.numpy(), float(mdp.gamma), max_iter=10_000)
    pi.run()
    return np.asarray(pi.V)


@pytest.fixture(scope="module", params=ENVS, ids=lambda e: e[0] + e[1].get("map_name", ""))
def case(request):
    name, kwargs = request.param
    mdp = TabularMDP.from_gymnasium(gym.make(name, **kwargs), gamma=0.99)
    return mdp, _oracle(mdp)


def test_policy_iteration_matches_oracle(case):
    mdp, v_star = case
    res = policy_iteration(mdp)
    np.testing.assert_allclose(res.V.numpy(), v_star, atol=1e-8, rtol=0)


@pytest.mark.parametrize("solver", [value_iteration, q_value_iteration, modified_policy_iteration])
def test_value_iteration_meets_its_guaranteed_bound(case, solver):
    mdp, v_star = case
    res = solver(mdp, tol=1e-6)
    assert res.converged and res.max_error_bound <= 1e-6
    # The bound is attained exactly at absorbing states: allow rounding only.
    assert np.abs(res.V.numpy() - v_star).max() <= res.max_error_bound * (1 + 1e-9) + 1e-12


def test_gauss_seidel_meets_bound_and_needs_fewer_sweeps(case):
    mdp, v_star = case
    if mdp.num_states > 100:
        pytest.skip("exact per-state Gauss-Seidel is for small MDPs")
    gs = gauss_seidel_value_iteration(mdp, tol=1e-6)
    assert gs.max_error_bound <= 1e-6
    assert np.abs(gs.V.numpy() - v_star).max() <= gs.max_error_bound * (1 + 1e-9) + 1e-12
    assert gs.iterations <= value_iteration(mdp, tol=1e-6).iterations


def test_sparse_copy_gives_same_answer(case):
    mdp, v_star = case
    sparse = TabularMDP([mdp.P[a].to_sparse() for a in range(mdp.num_actions)], mdp.R, mdp.gamma)
    assert sparse.is_sparse
    res = policy_iteration(sparse, tol=1e-9)
    np.testing.assert_allclose(res.V.numpy(), v_star, atol=1e-8, rtol=0)
    assert torch.equal(sparse.expected_next(res.V), mdp.expected_next(res.V)) or torch.allclose(
        sparse.expected_next(res.V), mdp.expected_next(res.V), atol=1e-12
    )


def test_cliffwalking_goal_is_absorbing():
    mdp = TabularMDP.from_gymnasium(gym.make("CliffWalking-v1"))
    goal = 47
    assert mdp.P[:, goal, goal].eq(1).all() and mdp.R[goal].eq(0).all()
