"""The CPU fast paths of the sparse planners agree with plain implementations and with an oracle.

Covered: int32 CSR row selection (``csr_select_rows``), the fused sparse backup (``addmv``), the
comparison-based greedy policy, and sparse modified policy iteration with its early-stopped
partial evaluation — against dense solves and pymdptoolbox's PolicyIteration.
"""

import numpy as np
import pytest
import torch

from mathml.rl import (
    TabularMDP,
    greedy_policy,
    modified_policy_iteration,
    policy_iteration,
    q_backup,
    random_sparse_mdp,
    slippery_gridworld,
)
from mathml.rl._sparse import csr_select_rows, make_csr


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("itype", [torch.int32, torch.int64])
def test_select_rows_matches_dense_gather(itype):
    g = torch.Generator().manual_seed(0)
    for _ in range(100):
        n, m = (int(x) for x in torch.randint(1, 25, (2,), generator=g))
        D = torch.rand(n, m, generator=g, dtype=torch.float64) * (torch.rand(n, m, generator=g) < 0.3)
        D[torch.rand(n, generator=g) < 0.3] = 0  # empty rows, also first and last
        C = D.to_sparse_csr()
        P = make_csr(C.crow_indices().to(itype), C.col_indices().to(itype), C.values(), (n, m))
        rows = torch.randint(0, n, (int(torch.randint(1, 40, (1,), generator=g)),), generator=g)
        out = csr_select_rows(P, rows)
        assert out.crow_indices().dtype == itype and out.col_indices().dtype == itype
        assert torch.equal(out.to_dense(), D[rows])


def test_greedy_policy_with_values_equals_argmax_including_ties():
    q = torch.randint(0, 3, (500, 5)).to(torch.float64)  # many ties
    assert torch.equal(greedy_policy(q, q.amax(-1)), q.argmax(-1))
    qb = torch.randint(0, 3, (4, 50, 3)).to(torch.float64)
    assert torch.equal(greedy_policy(qb, qb.amax(-1)), qb.argmax(-1))


def _dense_twin(sparse: TabularMDP) -> TabularMDP:
    S, A = sparse.num_states, sparse.num_actions
    return TabularMDP(sparse.P.to_dense().view(S, A, S).transpose(0, 1), sparse.R, float(sparse.gamma))


def test_fused_sparse_backup_equals_dense_backup():
    sparse = random_sparse_mdp(200, 3, 6, gamma=0.9, generator=torch.Generator().manual_seed(1))
    dense = _dense_twin(sparse)
    v = torch.randn(200, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(q_backup(sparse, v), q_backup(dense, v), atol=1e-13, rtol=0)
    torch.testing.assert_close(sparse.policy_model(q_backup(sparse, v).argmax(-1))[0].to_dense(),
                               dense.policy_model(q_backup(dense, v).argmax(-1))[0], atol=0, rtol=0)


@pytest.mark.parametrize("sweeps", [0, 1, 7, 50])
def test_sparse_mpi_on_a_slippery_grid_meets_its_bound_against_dense_policy_iteration(sweeps):
    sparse = slippery_gridworld(12, gamma=0.99)
    v_star = policy_iteration(_dense_twin(sparse)).V  # exact evaluation by torch.linalg.solve
    res = modified_policy_iteration(sparse, tol=1e-8, sweeps=sweeps)
    assert res.converged and res.max_error_bound <= 1e-8
    assert (res.V - v_star).abs().max() <= res.max_error_bound * (1 + 1e-9) + 1e-12
    # The returned bound is the certificate of one backup (Puterman 1994, §6.6.3), recomputed here.
    assert torch.equal(res.Q, q_backup(sparse, res.V))


def test_sparse_mpi_matches_mdptoolbox_policy_iteration_on_gym_mdps():
    gym = pytest.importorskip("gymnasium")
    mdptoolbox = pytest.importorskip("mdptoolbox.mdp")
    for name, kw in (("FrozenLake-v1", {"map_name": "8x8"}), ("Taxi-v4", {}), ("CliffWalking-v1", {})):
        dense = TabularMDP.from_gymnasium(gym.make(name, **kw), gamma=0.99)
        oracle = mdptoolbox.PolicyIteration(dense.P.numpy(), dense.R.numpy(), 0.99, max_iter=10_000)
        oracle.run()
        sparse = TabularMDP([dense.P[a].to_sparse() for a in range(dense.num_actions)], dense.R, 0.99)
        res = modified_policy_iteration(sparse, tol=1e-9)
        assert res.converged and res.max_error_bound <= 1e-9
        err = np.abs(res.V.numpy() - np.asarray(oracle.V)).max()
        assert err <= res.max_error_bound * (1 + 1e-9) + 1e-10, (name, err)
