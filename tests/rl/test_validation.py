"""Bad input raises clear errors that name the argument, what was expected and what was got."""

import pytest
import torch

from mathml.rl import TabularMDP, policy_iteration, q_backup, soft_value_iteration, value_iteration


def _ok(S=3, A=2):
    P = torch.full((A, S, S), 1.0 / S, dtype=torch.float64)
    return P, torch.zeros(S, A, dtype=torch.float64)


def test_non_stochastic_row_is_named():
    P, R = _ok()
    P[1, 2] = torch.tensor([0.5, 0.2, 0.2], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"action a=1, state s=2 sums to 0\.9"):
        TabularMDP(P, R, 0.9)


def test_non_stochastic_sparse_row_is_named():
    P, R = _ok()
    P[0, 1, 0] = 0.0
    with pytest.raises(ValueError, match=r"action a=0, state s=1 sums to 0\.66"):
        TabularMDP([P[a].to_sparse() for a in range(2)], R, 0.9)


def test_negative_probability():
    P, R = _ok()
    P[0, 0] = torch.tensor([1.5, -0.5, 0.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="P: has negative entries"):
        TabularMDP(P, R, 0.9)


@pytest.mark.parametrize("gamma", [-0.1, 1.5])
def test_gamma_outside_unit_interval(gamma):
    with pytest.raises(ValueError, match=r"gamma: expected a discount in \[0, 1\]"):
        TabularMDP(*_ok(), gamma)


def test_gamma_one_rejected_by_infinite_horizon_solvers():
    mdp = TabularMDP(*_ok(), 1.0)
    with pytest.raises(ValueError, match="gamma < 1.*finite_horizon"):
        value_iteration(mdp)
    with pytest.raises(ValueError, match="gamma < 1"):
        policy_iteration(mdp)


def test_mismatched_shapes():
    P, R = _ok(3, 2)
    with pytest.raises(ValueError, match=r"R: expected shape .*\(3, 2\).*got \(2, 3\)"):
        TabularMDP(P, R.T, 0.9)
    with pytest.raises(ValueError, match=r"P: expected shape \(\.\.\., A, S, S\)"):
        TabularMDP(P[..., :2], R, 0.9)
    with pytest.raises(ValueError, match=r"P\[1\]: expected a square \(3, 3\)"):
        TabularMDP([P[0].to_sparse(), P[1, :2].to_sparse()], R, 0.9)
    mdp = TabularMDP(P, R, 0.9)
    with pytest.raises(ValueError, match=r"v_t: expected shape \(3,\)"):
        q_backup(mdp, torch.zeros(4, dtype=torch.float64))


def test_nan_and_types():
    P, R = _ok()
    R[0, 0] = float("nan")
    with pytest.raises(ValueError, match="R: contains NaN"):
        TabularMDP(P, R, 0.9)
    with pytest.raises(TypeError, match="P: expected a floating-point dtype"):
        TabularMDP(torch.ones(1, 1, 1, dtype=torch.int64), torch.zeros(1, 1), 0.9)
    with pytest.raises(ValueError, match="tau must be a finite number > 0"):
        soft_value_iteration(TabularMDP(*_ok(), 0.9), tau=0.0)


def test_reward_of_shape_ass_is_reduced():
    P, _ = _ok()
    R3 = torch.arange(18, dtype=torch.float64).view(2, 3, 3)
    mdp = TabularMDP(P, R3, 0.5)
    torch.testing.assert_close(mdp.R, (P * R3).sum(-1).T)
    sparse = TabularMDP([P[a].to_sparse() for a in range(2)], R3, 0.5)
    torch.testing.assert_close(sparse.R, mdp.R)


def test_integer_and_tolerance_arguments_are_checked_by_the_shared_helpers():
    from mathml.rl import backward_induction, modified_policy_iteration, random_sparse_mdp, slippery_gridworld

    mdp = TabularMDP(*_ok(), 0.9)
    with pytest.raises(ValueError, match=r"num_states must be an int >= 1, got 0"):
        random_sparse_mdp(0)
    with pytest.raises(ValueError, match=r"L must be an int >= 2, got 1"):
        slippery_gridworld(1)
    with pytest.raises(ValueError, match=r"horizon must be an int >= 1, got 2\.5"):
        backward_induction(mdp, 2.5)
    with pytest.raises(ValueError, match=r"sweeps must be an int >= 0, got -1"):
        modified_policy_iteration(mdp, sweeps=-1)
    with pytest.raises(ValueError, match=r"tol must be a finite number > 0, got 0"):
        value_iteration(mdp, tol=0)
    with pytest.raises(ValueError, match=r"max_iter must be an int >= 1, got 0"):
        policy_iteration(mdp, max_iter=0)


def test_gamma_times_row_sum_at_least_one_is_refused():
    # validate=False keeps rows as given; a row summing to 1.2 at gamma = 0.9 is no contraction.
    P, R = _ok()
    P[0, 0] *= 1.2
    mdp = TabularMDP(P, R, 0.9, validate=False)
    with pytest.raises(ValueError, match=r"gamma \* \(largest row sum of P\) = 1\.08.* >= 1"):
        value_iteration(mdp)
