"""CUDA runs the same solvers and matches the CPU (skipped without a GPU; no hypothesis import)."""

import pytest
import torch

from mathml.rl import modified_policy_iteration, policy_iteration, random_dense_mdp, random_sparse_mdp, value_iteration


@pytest.mark.cuda
def test_cuda_matches_cpu():
    cpu = random_sparse_mdp(2000, 4, 10, gamma=0.99, generator=torch.Generator().manual_seed(0))
    gpu = cpu.to("cuda")
    for solver in (value_iteration, modified_policy_iteration, policy_iteration):
        a, b = solver(cpu, tol=1e-8), solver(gpu, tol=1e-8)
        assert b.V.is_cuda
        torch.testing.assert_close(b.V.cpu(), a.V, atol=2e-8, rtol=0)
    dense = random_dense_mdp(30, 4, batch_shape=(16,), gamma=0.9, generator=torch.Generator().manual_seed(0))
    a, b = policy_iteration(dense), policy_iteration(dense.to("cuda"))
    torch.testing.assert_close(b.V.cpu(), a.V, atol=1e-10, rtol=0)
