"""Seeded random sparse MDPs of any size (vectorised; S = 10^6 in seconds)."""

from __future__ import annotations

import torch

from mathml.checks import check_positive_int
from mathml.rl.mdp import TabularMDP

__all__ = ["random_sparse_mdp", "random_dense_mdp"]


def random_sparse_mdp(
    num_states: int,
    num_actions: int = 4,
    num_successors: int = 10,
    *,
    gamma: float = 0.99,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> TabularMDP:
    """A random MDP with ``num_successors`` successors per state-action.

    Successors are drawn uniformly (with replacement; repeats are merged), their probabilities
    from a flat Dirichlet(1, ..., 1) (normalised Exp(1) draws), rewards r(s, a) ~ U[0, 1).
    """
    for name, v in (("num_states", num_states), ("num_actions", num_actions), ("num_successors", num_successors)):
        check_positive_int(v, name)
    if generator is not None:
        device = generator.device
    shape = (num_states, num_actions, num_successors)
    next_state = torch.randint(0, num_states, shape, generator=generator, device=device)
    u = torch.rand(shape, generator=generator, dtype=dtype, device=device)
    w = -torch.log1p(-u)  # Exp(1)
    prob = w / w.sum(-1, keepdim=True)
    R = torch.rand(num_states, num_actions, generator=generator, dtype=dtype, device=device)
    return TabularMDP.from_successors(next_state, prob, R, gamma)


def random_dense_mdp(
    num_states: int,
    num_actions: int,
    *,
    batch_shape: tuple[int, ...] = (),
    gamma: float = 0.9,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
) -> TabularMDP:
    """A dense random MDP ``P: (*batch_shape, A, S, S)``, rows ~ flat Dirichlet, r ~ U[0, 1)."""
    check_positive_int(num_states, "num_states")
    check_positive_int(num_actions, "num_actions")
    device = generator.device if generator is not None else None
    shape = (*batch_shape, num_actions, num_states, num_states)
    w = -torch.log1p(-torch.rand(shape, generator=generator, dtype=dtype, device=device))
    R = torch.rand((*batch_shape, num_states, num_actions), generator=generator, dtype=dtype, device=device)
    return TabularMDP(w / w.sum(-1, keepdim=True), R, gamma)
