"""Sutton & Barto (2018) grid worlds against the book's published tables and exact solves."""

import numpy as np
import pytest
import torch

from mathml.rl import (
    policy_evaluation,
    policy_iteration,
    slippery_gridworld,
    sutton_barto_4x4,
    sutton_barto_5x5,
    value_iteration,
)

# Figure 4.1 (k = infinity): values of the equiprobable random policy, Example 4.1.
FIG_4_1 = [[0, -14, -20, -22], [-14, -18, -20, -20], [-20, -20, -18, -14], [-22, -20, -14, 0]]
# Figure 3.2 (right): values of the equiprobable random policy, Example 3.5, gamma = 0.9.
FIG_3_2 = [
    [3.3, 8.8, 4.4, 5.3, 1.5],
    [1.5, 3.0, 2.3, 1.9, 0.5],
    [0.1, 0.7, 0.7, 0.4, -0.4],
    [-1.0, -0.4, -0.4, -0.6, -1.2],
    [-1.9, -1.3, -1.2, -1.4, -2.0],
]
# Figure 3.5 (middle): optimal state values v*, Example 3.5, gamma = 0.9.
FIG_3_5 = [
    [22.0, 24.4, 22.0, 19.4, 17.5],
    [19.8, 22.0, 19.8, 17.8, 16.0],
    [17.8, 19.8, 17.8, 16.0, 14.4],
    [16.0, 17.8, 16.0, 14.4, 13.0],
    [14.4, 16.0, 14.4, 13.0, 11.7],
]


def _random_policy_numpy(mdp):
    """Exact random-policy values by a numpy linear solve (independent of mathml's solvers)."""
    P = mdp.P.numpy().mean(0)  # P_pi for the uniform policy
    r = mdp.R.numpy().mean(1)
    g = float(mdp.gamma)
    S = P.shape[0]
    live = ~np.isclose(np.diag(P), 1.0) | (r != 0)  # drop absorbing zero-reward states (v = 0)
    v = np.zeros(S)
    M = np.eye(S)[np.ix_(live, live)] - g * P[np.ix_(live, live)]
    v[live] = np.linalg.solve(M, r[live])
    return v


def test_example_4_1_random_policy_values():
    mdp = sutton_barto_4x4()
    exact = _random_policy_numpy(mdp)
    assert np.allclose(exact.reshape(4, 4), FIG_4_1, atol=0.05)  # the book's rounding
    # Our Bellman expectation operator, iterated (S&B's iterative policy evaluation), agrees.
    from mathml.rl import bellman_expectation

    pi = torch.full((16, 4), 0.25, dtype=torch.float64)
    v = torch.zeros(16, dtype=torch.float64)
    for _ in range(2000):
        v = bellman_expectation(mdp, v, pi)
    np.testing.assert_allclose(v.numpy(), exact, atol=1e-8)


def test_example_3_5_random_and_optimal_values():
    mdp = sutton_barto_5x5()
    exact = _random_policy_numpy(mdp)
    assert np.allclose(exact.reshape(5, 5), FIG_3_2, atol=0.05)
    res = policy_iteration(mdp)
    np.testing.assert_allclose(res.V.numpy().reshape(5, 5), FIG_3_5, atol=0.05)
    # Exact optimum: v* is the value of the optimal policy, solved in numpy.
    P = mdp.P.numpy()[res.policy.numpy(), np.arange(25)]
    r = mdp.R.numpy()[np.arange(25), res.policy.numpy()]
    v_star = np.linalg.solve(np.eye(25) - 0.9 * P, r)
    np.testing.assert_allclose(res.V.numpy(), v_star, atol=1e-10)
    vi = value_iteration(mdp, tol=1e-8)
    assert np.abs(vi.V.numpy() - v_star).max() <= vi.max_error_bound <= 1e-8


def test_example_4_1_random_policy_by_exact_solve_gamma_one():
    # gamma = 1: absorbing terminals make the dense policy-evaluation system solvable.
    mdp = sutton_barto_4x4()
    # the deterministic "always left" policy is improper (loops at the west wall): use optimal
    res_values = policy_evaluation(mdp, torch.tensor([0, 0, 0, 1, 3, 0, 0, 1, 3, 3, 2, 1, 3, 2, 2, 0]))
    assert res_values[0] == 0 and res_values[15] == 0
    assert torch.all(res_values[1:15] < 0)


def test_slippery_gridworld_structure():
    mdp = slippery_gridworld(5, gamma=0.9)
    assert mdp.is_sparse and mdp.grid_shape == (5, 5)
    P = mdp.P.to_dense().view(25, 4, 25)
    assert torch.allclose(P.sum(-1), torch.ones(25, 4, dtype=torch.float64))
    # intended move right from (0, 0) has probability 0.8; up/left walls keep you in place
    assert P[0, 2, 1] == pytest.approx(0.8)
    assert P[0, 2, 0] == pytest.approx(2 * 0.2 / 3)
    assert P[24, :, 24].eq(1).all() and mdp.R[24].eq(0).all()  # absorbing goal
    assert mdp.R[23, 2] == pytest.approx(0.8)  # right of (4, 3) enters the goal
