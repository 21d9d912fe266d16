"""The transition table of a gymnasium toy-text environment, as arrays (for ``TabularMDP.from_gymnasium``).

Toy-text envs (FrozenLake-v1, Taxi-v4, CliffWalking-v1) expose ``env.unwrapped.P[s][a]`` as a
list of ``(probability, next_state, reward, terminated)``. Episodes end on ``terminated``, so a
faithful MDP routes those transitions to an absorbing zero-reward state: the next states of
terminating transitions are made absorbing (their own table entries, which gymnasium still lists,
are never used by an episode). If such a state can also be entered without terminating, an extra
absorbing state ``S`` is appended instead and terminating transitions go there.

This module imports nothing from ``mathml.rl``: ``mdp.py`` builds the MDP from what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class TransitionTable:
    """P: (A, S', S') transition probabilities; R: (S', A) expected rewards; terminal: (S',) bool
    absorbing states; S' = S or S + 1. grid_shape/grid_moves: the grid layout for plots, if any."""

    P: torch.Tensor
    R: torch.Tensor
    terminal: torch.Tensor
    name: str
    grid_shape: tuple[int, int] | None
    grid_moves: tuple[tuple[int, int], ...] | None


def transition_table(env: Any, dtype: torch.dtype = torch.float64) -> TransitionTable:
    """The arrays of a toy-text env. env: a gymnasium env (wrapped or not) with ``unwrapped.P``."""
    base = getattr(env, "unwrapped", env)
    table = getattr(base, "P", None)
    if not isinstance(table, dict):
        raise TypeError(f"env: expected a toy-text env with a transition table `P` dict, got {type(base).__name__}")
    S, A = int(base.observation_space.n), int(base.action_space.n)
    outcomes = [(s, a, p, s2, r, bool(done)) for s in range(S) for a in range(A) for p, s2, r, done in table[s][a]]
    cols = list(zip(*outcomes))
    s_, a_, n_ = (torch.tensor(cols[i], dtype=torch.int64) for i in (0, 1, 3))
    p_, r_ = (torch.tensor(cols[i], dtype=torch.float64) for i in (2, 4))
    d_ = torch.tensor(cols[5], dtype=torch.bool)
    terminal = torch.zeros(S, dtype=torch.bool)
    terminal[n_[d_]] = True
    # Can a terminal state be entered without the episode ending (from a live state)?
    mixed = bool((terminal[n_] & ~d_ & ~terminal[s_]).any())
    S_total = S + 1 if mixed else S
    if mixed:
        n_ = torch.where(d_, torch.full_like(n_, S), n_)
        terminal = torch.cat([torch.zeros(S, dtype=torch.bool), torch.ones(1, dtype=torch.bool)])
    P = torch.zeros(A, S_total, S_total, dtype=torch.float64)
    P.index_put_((a_, s_, n_), p_, accumulate=True)
    R = torch.zeros(S_total, A, dtype=torch.float64)
    R.index_put_((s_, a_), p_ * r_, accumulate=True)
    if mixed:
        P[:, S, S] = 1.0
    name = getattr(getattr(base, "spec", None), "id", "") or type(base).__name__
    desc = getattr(base, "desc", None)
    # Grid layout for plotting: states row-major; (d_row, d_col) of each action.
    shape, moves = None, None
    if desc is not None and not mixed:  # FrozenLake: left, down, right, up
        shape, moves = tuple(desc.shape), ((0, -1), (1, 0), (0, 1), (-1, 0))
    elif "CliffWalking" in name and not mixed:  # up, right, down, left
        shape, moves = (4, 12), ((-1, 0), (0, 1), (1, 0), (0, -1))
    return TransitionTable(P.to(dtype), R.to(dtype), terminal, name, shape, moves)
