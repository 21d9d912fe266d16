"""Property tests (hypothesis) on random MDPs, and batched/dense/sparse agreement."""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mathml.rl import (
    TabularMDP,
    backward_induction,
    bellman_optimality,
    modified_policy_iteration,
    policy_evaluation,
    policy_iteration,
    q_value_iteration,
    random_dense_mdp,
    random_sparse_mdp,
    soft_value_iteration,
    value_iteration,
)

mdp_params = st.tuples(
    st.integers(2, 12),  # S
    st.integers(1, 4),  # A
    st.floats(0.1, 0.95),  # gamma
    st.integers(0, 2**31 - 1),  # seed
)


def _mdp(S, A, gamma, seed, **kw):
    return random_dense_mdp(S, A, gamma=gamma, generator=torch.Generator().manual_seed(seed), **kw)


@settings(max_examples=40, deadline=None)
@given(mdp_params, st.integers(0, 2**31 - 1))
def test_optimality_operator_is_a_gamma_contraction(params, seed):
    mdp = _mdp(*params)
    g = torch.Generator().manual_seed(seed)
    u, w = (torch.randn(mdp.num_states, generator=g, dtype=torch.float64) * 10 for _ in range(2))
    lhs = (bellman_optimality(mdp, u) - bellman_optimality(mdp, w)).abs().max()
    assert lhs <= float(mdp.gamma) * (u - w).abs().max() + 1e-12


@settings(max_examples=30, deadline=None)
@given(mdp_params)
def test_policy_iteration_values_are_monotone(params):
    mdp = _mdp(*params)
    v = torch.zeros(mdp.num_states, dtype=torch.float64)
    policy = torch.zeros(mdp.num_states, dtype=torch.int64)
    v_prev = policy_evaluation(mdp, policy)
    for _ in range(20):  # Howard's iteration, written out to observe every v_pi
        policy = (mdp.R + float(mdp.gamma) * mdp.expected_next(v_prev)).argmax(-1)
        v = policy_evaluation(mdp, policy)
        assert (v >= v_prev - 1e-10).all()  # Puterman 1994, Prop. 6.4.1
        v_prev = v
    np.testing.assert_allclose(v, policy_iteration(mdp).V, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(mdp_params)
def test_soft_value_iteration_approaches_hard_as_tau_shrinks(params):
    mdp = _mdp(*params)
    v_star = policy_iteration(mdp).V
    gap_prev = math.inf
    for tau in (1.0, 0.1, 0.01, 0.001):
        v_tau = soft_value_iteration(mdp, tau=tau, tol=1e-10).V
        bound = tau * math.log(mdp.num_actions) / (1 - float(mdp.gamma))
        gap = (v_tau - v_star).abs().max()
        assert (v_tau >= v_star - 1e-8).all() and gap <= bound + 1e-8  # 0 <= v_tau - v* <= bound
        assert gap <= gap_prev + 1e-8
        gap_prev = gap


@settings(max_examples=20, deadline=None)
@given(mdp_params)
def test_all_infinite_horizon_planners_agree_within_their_bounds(params):
    mdp = _mdp(*params)
    v_star = policy_iteration(mdp).V
    for solver in (value_iteration, q_value_iteration, modified_policy_iteration):
        res = solver(mdp, tol=1e-7)
        assert (res.V - v_star).abs().max() <= res.max_error_bound * (1 + 1e-9) + 1e-12 <= 1e-7 + 1e-12


def test_backward_induction_tends_to_v_star_and_handles_gamma_one():
    mdp = _mdp(6, 3, 0.9, 0)
    v_star = policy_iteration(mdp).V
    res = backward_induction(mdp, horizon=300)
    assert (res.V - v_star).abs().max() <= 0.9**300 * mdp.R.abs().max() / 0.1 + 1e-12
    assert res.policy.shape == (300, 6)
    undiscounted = TabularMDP(mdp.P, mdp.R, 1.0)
    three = backward_induction(undiscounted, horizon=3)
    # gamma = 1, H = 3: brute force over the last stage equals an explicit recursion
    v = torch.zeros(6, dtype=torch.float64)
    for _ in range(3):
        v = (mdp.R + torch.einsum("ast,t->sa", mdp.P, v)).amax(-1)
    torch.testing.assert_close(three.V, v)


def test_batched_solve_equals_one_by_one():
    batch = _mdp(8, 3, 0.9, 1, batch_shape=(5,))
    gammas = torch.linspace(0.5, 0.95, 5, dtype=torch.float64)
    batch = TabularMDP(batch.P, batch.R, gammas)
    for solver in (policy_iteration, value_iteration, modified_policy_iteration, soft_value_iteration):
        kw = {"tau": 0.1} if solver is soft_value_iteration else {}
        together = solver(batch, **kw)
        for b in range(5):
            alone = solver(TabularMDP(batch.P[b], batch.R[b], float(gammas[b])), **kw)
            torch.testing.assert_close(together.V[b], alone.V, atol=2e-6, rtol=0)
            assert together.error_bound.shape == (5,)


def test_sparse_and_dense_agree_on_a_random_sparse_mdp():
    sparse = random_sparse_mdp(300, 4, 5, gamma=0.95, generator=torch.Generator().manual_seed(3))
    dense = TabularMDP(sparse.P.to_dense().view(300, 4, 300).transpose(0, 1), sparse.R, 0.95)
    v_dense = policy_iteration(dense).V
    for solver in (policy_iteration, value_iteration, modified_policy_iteration):
        res = solver(sparse, tol=1e-9)
        assert (res.V - v_dense).abs().max() <= res.max_error_bound * (1 + 1e-9) + 1e-12
