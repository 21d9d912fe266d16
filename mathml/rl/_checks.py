"""Argument checks shared by the planners."""

from __future__ import annotations

import torch

from mathml.rl.mdp import TabularMDP


def check_discounted(mdp: TabularMDP, who: str) -> None:
    """Infinite-horizon planners need a TabularMDP with gamma < 1 (the contraction)."""
    if not isinstance(mdp, TabularMDP):
        raise TypeError(f"{who}: mdp: expected a TabularMDP, got {type(mdp).__name__}")
    if bool((mdp.gamma >= 1).any()):
        raise ValueError(
            f"{who}: gamma: expected gamma < 1 for an infinite-horizon discounted solve (the Bellman "
            f"operator is a gamma-contraction only then, Puterman 1994 Thm 6.2.3), got "
            f"{mdp.gamma.tolist()}; use finite_horizon (backward induction) for gamma = 1"
        )


def initial_values(mdp: TabularMDP, v0: torch.Tensor | None) -> torch.Tensor:
    want = (*mdp.batch_shape, mdp.num_states)
    if v0 is None:
        return torch.zeros(want, dtype=mdp.dtype, device=mdp.device)
    if tuple(v0.shape) != want:
        raise ValueError(f"v0: expected shape {want} (batch..., S), got {tuple(v0.shape)}")
    return v0.to(dtype=mdp.dtype, device=mdp.device)
