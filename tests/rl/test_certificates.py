"""The planners' certificates against brute force over all deterministic policies.

Truth: ``V* = max_pi (I - gamma P_pi)^{-1} r_pi`` over all A^S policies (``exhaustive_solution``:
float64 solves refined with extended-precision residuals), for the MDP as stored (its float32 or
float64 entries read exactly). Every certified bound must be >= the actual error, in float32 and
float64, at gamma up to 0.9999, with rows that were only near-stochastic on input. The only
allowance is the reference's own remaining error (10x its last refinement step, ~1e-12 or less).
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mathml.rl import (
    TabularMDP,
    backward_induction,
    gauss_seidel_value_iteration,
    modified_policy_iteration,
    policy_iteration,
    q_backup,
    q_value_iteration,
    random_sparse_mdp,
    soft_value_iteration,
    value_iteration,
)
from mathml.rl.certificate import rounding_floor
from mathml.rl.exhaustive import exhaustive_solution

SOLVERS = (value_iteration, q_value_iteration, modified_policy_iteration, policy_iteration, gauss_seidel_value_iteration)
ATOL = {torch.float64: 1e-6, torch.float32: 1e-4}  # what validation accepts as "sums to one"


def _near_stochastic(S, A, gamma, dtype, seed, defect, reward_shift=0.0):
    """Random rows scaled by (1 + defect * U[-1, 1]) per row, so sums are off by up to ``defect``."""
    g = torch.Generator().manual_seed(seed)
    w = -torch.log1p(-torch.rand(A, S, S, generator=g, dtype=torch.float64))
    P = w / w.sum(-1, keepdim=True) * (1 + defect * (2 * torch.rand(A, S, 1, generator=g, dtype=torch.float64) - 1))
    R = torch.rand(S, A, generator=g, dtype=torch.float64) + reward_shift
    return TabularMDP(P.to(dtype), R.to(dtype), gamma)


def _tol(mdp, v_star):
    """A tolerance the dtype can certify: 8x the rounding floor c u (||v*|| + ||R||) (+ float64's)."""
    v = torch.as_tensor(np.asarray(v_star, dtype=np.float64))
    return max(1e-6, 8 * float(rounding_floor(mdp, v, torch.zeros_like(v))))


def _actual(V, truth):
    return float(np.abs(V.to(torch.float64).numpy().astype(np.longdouble) - truth).max())


def _check(res, ex):
    slack = 10 * ex.correction  # the reference's own remaining error
    actual = _actual(res.V, ex.V_star)
    assert actual <= res.max_error_bound + slack, (res.algorithm, actual, res.max_error_bound)
    assert res.converged == (res.max_error_bound <= res.tol)
    policy_loss = float(np.abs(ex.value_of(res.policy) - ex.V_star).max())
    assert policy_loss <= res.max_policy_error_bound + slack, (res.algorithm, policy_loss)
    return actual


@settings(max_examples=30, deadline=None)
@given(
    st.sampled_from([(2, 3), (3, 3), (4, 2), (5, 3), (6, 3), (6, 2), (3, 1)]),
    st.sampled_from([0.99, 0.999, 0.9999]),
    st.sampled_from([torch.float32, torch.float64]),
    st.floats(0.0, 0.9),
    st.sampled_from([0.0, -0.5]),
    st.integers(0, 2**31 - 1),
)
def test_certified_bounds_hold_against_brute_force(SA, gamma, dtype, defect, shift, seed):
    S, A = SA
    mdp = _near_stochastic(S, A, gamma, dtype, seed, defect * ATOL[dtype], shift)
    ex = exhaustive_solution(mdp)
    tol = _tol(mdp, ex.V_star)
    # Gauss-Seidel's span contracts only at rate gamma (~1/(1 - gamma) sweeps): gamma = 0.99 only.
    for solver in SOLVERS if gamma == 0.99 else SOLVERS[:-1]:
        res = solver(mdp, tol=tol)
        assert res.converged, (solver.__name__, res.max_error_bound, tol)
        _check(res, ex)
    # Soft value iteration: its greedy policy's bound is against the unregularised V*.
    soft = soft_value_iteration(mdp, tau=1e-3, tol=tol)
    policy_loss = float(np.abs(ex.value_of(soft.policy) - ex.V_star).max())
    assert policy_loss <= soft.max_policy_error_bound + 10 * ex.correction


@pytest.mark.parametrize("solver", [value_iteration, modified_policy_iteration])
def test_issue_case_rows_off_by_5e_7_are_certified(solver):
    # Issue 7: 5 states, 3 actions, gamma = 0.99, row sums 1 +- 5e-7 certified 7.8e-7 with an
    # actual error of 4.0e-3. Rows are now renormalised and the remaining defect carried.
    mdp = _near_stochastic(5, 3, 0.99, torch.float64, 7, 5e-7)
    sums = mdp.P.sum(-1)
    assert float((sums - 1).abs().max()) <= 8 * 2**-53
    res = solver(mdp, tol=1e-7)
    assert res.converged and res.max_error_bound <= 1e-7
    _check(res, exhaustive_solution(mdp))


def test_rows_are_not_renormalised_without_validation_and_the_defect_is_carried():
    g = torch.Generator().manual_seed(3)
    w = torch.rand(3, 5, 5, generator=g, dtype=torch.float64)
    P = w / w.sum(-1, keepdim=True) * (1 - 0.01 * torch.rand(3, 5, 1, generator=g, dtype=torch.float64))
    mdp = TabularMDP(P, torch.rand(5, 3, generator=g, dtype=torch.float64), 0.99, validate=False)
    assert torch.equal(mdp.P, P)  # substochastic rows, kept as given
    res = value_iteration(mdp, tol=1e-8)
    _check(res, exhaustive_solution(mdp))


def test_float32_value_iteration_below_the_floor_raises_naming_tol_and_fix():
    # Issue 7: float32, gamma = 0.99, 50 states, tol 1e-4 certified 0 with an actual error 2.4e-4.
    mdp = _near_stochastic(50, 3, 0.99, torch.float32, 0, 0.0)
    with pytest.raises(ValueError, match=r"tol=0\.0001 is below the rounding floor .* of torch\.float32.*float64"):
        value_iteration(mdp, tol=1e-4)


def test_float32_policy_iteration_no_longer_claims_convergence():
    # Issue 7: float32, gamma = 0.999, tol 1e-4 reported converged=True with a bound of 0.305.
    mdp = _near_stochastic(50, 3, 0.999, torch.float32, 0, 0.0)
    with pytest.raises(ValueError, match=r"policy_iteration: tol=0\.0001 is below the rounding floor"):
        policy_iteration(mdp, tol=1e-4)


def test_float64_gamma_0_999999_mpi_tol_1e_8_raises():
    # Issue 7: float64, gamma = 0.999999, MPI tol 1e-8 certified 0 with an actual error 9e-7.
    mdp = _near_stochastic(50, 3, 0.999999, torch.float64, 0, 0.0)
    with pytest.raises(ValueError, match=r"tol=1e-08 is below the rounding floor .* of torch\.float64.*larger tol"):
        modified_policy_iteration(mdp, tol=1e-8)


@pytest.mark.parametrize("solver", [value_iteration, modified_policy_iteration, policy_iteration])
def test_float32_gamma_0_9999_bound_covers_the_actual_error(solver):
    # Issue 7: float32, gamma = 0.9999, 50 states: certified 0, actual 0.61. Truth for 50 states:
    # policy iteration on the exact float64 copy of the float32 arrays, with its own bound.
    mdp = _near_stochastic(50, 3, 0.9999, torch.float32, 0, 0.0)
    ref = policy_iteration(mdp.to(dtype=torch.float64), tol=1e-5)
    res = solver(mdp, tol=_tol(mdp, ref.V))
    actual = float((res.V.double() - ref.V).abs().max())
    assert actual > 1e-3  # float32 really is this far off here ...
    assert actual <= res.max_error_bound + ref.max_error_bound  # ... and the bound says so


def test_iteration_cap_gives_a_finite_true_bound_and_not_converged():
    mdp = _near_stochastic(5, 3, 0.99, torch.float64, 1, 0.0)
    res = value_iteration(mdp, tol=1e-8, max_iter=10)
    assert not res.converged and 1e-8 < res.max_error_bound < float("inf")
    _check(res, exhaustive_solution(mdp))


def test_sparse_float32_bound_holds_against_a_float64_solve():
    sparse = random_sparse_mdp(400, 4, 6, gamma=0.99, generator=torch.Generator().manual_seed(5), dtype=torch.float32)
    S, A = 400, 4
    dense64 = TabularMDP(sparse.P.to_dense().double().view(S, A, S).transpose(0, 1), sparse.R.double(), 0.99,
                         validate=False)
    dense64.gamma = sparse.gamma.double()  # the float32 discount, exactly
    ref = policy_iteration(dense64, tol=1e-9)
    for solver in (value_iteration, modified_policy_iteration, policy_iteration):
        res = solver(sparse, tol=0.01)
        assert res.converged and res.V.dtype == torch.float32
        assert float((res.V.double() - ref.V).abs().max()) <= res.max_error_bound + ref.max_error_bound


def test_batched_float32_bounds_per_member():
    mdps = [_near_stochastic(4, 2, 0.999, torch.float32, s, 5e-5) for s in range(3)]
    batch = TabularMDP(torch.stack([m.P for m in mdps]), torch.stack([m.R for m in mdps]), 0.999)
    res = value_iteration(batch, tol=1.0)
    assert res.error_bound.shape == (3,)
    for b, m in enumerate(mdps):
        truth = exhaustive_solution(TabularMDP(batch.P[b], batch.R[b], batch.gamma, validate=False)).V_star
        assert _actual(res.V[b], truth) <= float(res.error_bound[b]) + 1e-9


def test_backward_induction_float32_rounding_bound():
    mdp = _near_stochastic(20, 3, 0.99, torch.float32, 2, 0.0)
    exact = backward_induction(mdp.to(dtype=torch.float64), 200)
    res = backward_induction(mdp, 200)
    actual = float((res.V.double() - exact.V).abs().max())
    assert 0 < actual <= res.max_error_bound + exact.max_error_bound
    assert exact.max_error_bound < 1e-9 < res.max_error_bound < 1e-2


def test_exhaustive_solution_agrees_with_policy_iteration_and_policy_evaluation():
    from mathml.rl import policy_evaluation

    mdp = _near_stochastic(5, 3, 0.9, torch.float64, 11, 0.0)
    ex = exhaustive_solution(mdp)
    pi = policy_iteration(mdp, tol=1e-10)
    assert _actual(pi.V, ex.V_star) <= pi.max_error_bound
    some = torch.tensor([2, 0, 1, 1, 0])
    np.testing.assert_allclose(ex.value_of(some).astype(np.float64), policy_evaluation(mdp, some).numpy(),
                               rtol=0, atol=1e-12)
