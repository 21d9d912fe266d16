"""Build a ``TabularMDP`` from a gymnasium toy-text environment's transition table.

Toy-text envs (FrozenLake-v1, Taxi-v4, CliffWalking-v1) expose ``env.unwrapped.P[s][a]`` as a
list of ``(probability, next_state, reward, terminated)``. Episodes end on ``terminated``, so a
faithful MDP routes those transitions to an absorbing zero-reward state: the next states of
terminating transitions are made absorbing (their own table entries, which gymnasium still lists,
are never used by an episode). If such a state can also be entered without terminating, an extra
absorbing state ``S`` is appended instead and terminating transitions go there.
"""

from __future__ import annotations

from typing import Any

import torch

from mathml.rl.mdp import TabularMDP

__all__ = ["from_gymnasium", "make_gymnasium_mdp"]


def from_gymnasium(env: Any, gamma: float = 0.99, dtype: torch.dtype = torch.float64) -> TabularMDP:
    """The MDP of a toy-text env. env: a gymnasium env (wrapped or not) with ``unwrapped.P``.

    Returns a dense TabularMDP with P: (A, S, S) (or S + 1 states, see module doc) and
    R: (S, A) expected rewards ``sum_{s'} p r``. Duplicate outcomes are summed.
    """
    base = getattr(env, "unwrapped", env)
    table = getattr(base, "P", None)
    if not isinstance(table, dict):
        raise TypeError(f"env: expected a toy-text env with a transition table `P` dict, got {type(base).__name__}")
    S, A = int(base.observation_space.n), int(base.action_space.n)
    outcomes = [(s, a, p, s2, r, bool(done)) for s in range(S) for a in range(A) for p, s2, r, done in table[s][a]]
    cols = list(zip(*outcomes))
    s_, a_, n_ = (torch.tensor(cols[i], dtype=torch.int64) for i in (0, 1, 3))
    p_, r_ = (torch.tensor(cols[i], dtype=torch.float64).to(dtype) for i in (2, 4))
    d_ = torch.tensor(cols[5], dtype=torch.bool)
    terminal = torch.zeros(S, dtype=torch.bool)
    terminal[n_[d_]] = True
    # Can a terminal state be entered without the episode ending (from a live state)?
    mixed = bool((terminal[n_] & ~d_ & ~terminal[s_]).any())
    S_total = S + 1 if mixed else S
    if mixed:
        n_ = torch.where(d_, torch.full_like(n_, S), n_)
        terminal = torch.cat([torch.zeros(S, dtype=torch.bool), torch.ones(1, dtype=torch.bool)])
    P = torch.zeros(A, S_total, S_total, dtype=dtype)
    P.index_put_((a_, s_, n_), p_, accumulate=True)
    R = torch.zeros(S_total, A, dtype=dtype)
    R.index_put_((s_, a_), p_ * r_, accumulate=True)
    if mixed:
        P[:, S, S] = 1.0
    mdp = TabularMDP(P, R, gamma, terminal=terminal)
    name = getattr(getattr(base, "spec", None), "id", "") or type(base).__name__
    desc = getattr(base, "desc", None)
    # Grid layout for plotting: states row-major; (d_row, d_col) of each action.
    if desc is not None and not mixed:  # FrozenLake: left, down, right, up
        mdp.grid_shape, mdp.grid_moves = tuple(desc.shape), ((0, -1), (1, 0), (0, 1), (-1, 0))
    elif "CliffWalking" in name and not mixed:  # up, right, down, left
        mdp.grid_shape, mdp.grid_moves = (4, 12), ((-1, 0), (0, 1), (1, 0), (0, -1))
    mdp.name = name
    return mdp


def make_gymnasium_mdp(env_id: str, gamma: float = 0.99, **env_kwargs: Any) -> TabularMDP:
    """``from_gymnasium(gymnasium.make(env_id, **env_kwargs))`` — a config-friendly constructor."""
    import gymnasium

    return from_gymnasium(gymnasium.make(env_id, **env_kwargs), gamma=gamma)
