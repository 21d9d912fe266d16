"""Grid worlds: Sutton & Barto's Example 4.1 and Example 3.5, and a slippery L x L world.

Every grid world here numbers states row-major (``s = row * cols + col``) and uses the action
order of gymnasium's FrozenLake: ``0 = left, 1 = down, 2 = right, 3 = up`` (``GRID_MOVES``), so
one plotting routine draws greedy-policy arrows for all of them. The returned MDP carries
``grid_shape = (rows, cols)``.
"""

from __future__ import annotations

import torch

from mathml.checks import check_int_at_least
from mathml.rl.mdp import TabularMDP

__all__ = ["GRID_MOVES", "slippery_gridworld", "sutton_barto_4x4", "sutton_barto_5x5"]

# (d_row, d_col) of the four actions: left, down, right, up.
GRID_MOVES = ((0, -1), (1, 0), (0, 1), (-1, 0))


def _moves(rows: int, cols: int, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """next_state: (S, 4) after each move (walls keep you in place); off_grid: (S, 4) bool."""
    r = torch.arange(rows, device=device).repeat_interleave(cols)
    c = torch.arange(cols, device=device).repeat(rows)
    d = torch.tensor(GRID_MOVES, device=device)
    nr, nc = r[:, None] + d[:, 0], c[:, None] + d[:, 1]
    off = (nr < 0) | (nr >= rows) | (nc < 0) | (nc >= cols)
    s = (r * cols + c)[:, None].expand(-1, 4)
    return torch.where(off, s, nr * cols + nc), off


def _deterministic(rows, cols, next_state, reward, gamma, terminal, dtype) -> TabularMDP:
    S = rows * cols
    P = torch.zeros(4, S, S, dtype=dtype)
    P[torch.arange(4)[:, None], torch.arange(S)[None, :], next_state.T] = 1.0
    mdp = TabularMDP(P, reward.to(dtype), gamma, terminal=terminal)
    mdp.grid_shape, mdp.grid_moves = (rows, cols), GRID_MOVES
    return mdp


def sutton_barto_4x4(gamma: float = 1.0, dtype: torch.dtype = torch.float64) -> TabularMDP:
    """Sutton & Barto (2018), Example 4.1: 4x4 grid, terminal corners 0 and 15, reward -1 per step.

    Undiscounted (gamma = 1) episodic task; moves off the grid leave the state unchanged. The
    equiprobable random policy has the values of Figure 4.1 (k = infinity).
    """
    nxt, _ = _moves(4, 4)
    terminal = torch.zeros(16, dtype=torch.bool)
    terminal[[0, 15]] = True
    return _deterministic(4, 4, nxt, torch.full((16, 4), -1.0), gamma, terminal, dtype)


def sutton_barto_5x5(gamma: float = 0.9, dtype: torch.dtype = torch.float64) -> TabularMDP:
    """Sutton & Barto (2018), Example 3.5 (Figure 3.2): 5x5 grid with special states A and B.

    From A = (0, 1) every action gives +10 and moves to A' = (4, 1); from B = (0, 3) every action
    gives +5 and moves to B' = (2, 3); actions off the grid give -1 and leave the state unchanged;
    all others give 0. With gamma = 0.9 the optimal values are those of Figure 3.5.
    """
    nxt, off = _moves(5, 5)
    reward = torch.where(off, -1.0, 0.0)
    a, a_prime, b, b_prime = 0 * 5 + 1, 4 * 5 + 1, 0 * 5 + 3, 2 * 5 + 3
    nxt[a], reward[a] = a_prime, 10.0
    nxt[b], reward[b] = b_prime, 5.0
    return _deterministic(5, 5, nxt, reward, gamma, None, dtype)


def slippery_gridworld(
    L: int,
    *,
    slip: float = 0.2,
    gamma: float = 0.99,
    goal: tuple[int, int] | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str | None = None,
) -> TabularMDP:
    """A slippery ``L x L`` grid world (sparse): the benchmark's slow-mixing case.

    Each action moves in its intended direction with probability ``1 - slip`` and in each of the
    other three with probability ``slip / 3``; walls keep you in place. Entering the goal (default
    the corner ``(L-1, L-1)``) pays +1; the goal is absorbing with zero reward. Built vectorised
    (S = 10^6 in seconds) with at most 4 successors per state-action.
    """
    check_int_at_least(L, "L", 2)
    if not 0.0 <= slip <= 1.0:
        raise ValueError(f"slip: expected a probability in [0, 1], got {slip}")
    gr, gc = goal if goal is not None else (L - 1, L - 1)
    if not (0 <= gr < L and 0 <= gc < L):
        raise ValueError(f"goal: expected a cell inside the {L}x{L} grid, got {goal}")
    S, g = L * L, gr * L + gc
    nxt, _ = _moves(L, L, device)  # (S, 4 moves)
    intended = torch.eye(4, dtype=dtype, device=device)  # [action, move]
    p_move = intended * (1.0 - slip) + (1.0 - intended) * (slip / 3.0)  # (A, M)
    next_state = nxt[:, None, :].expand(S, 4, 4)  # (S, A, M)
    prob = p_move[None].expand(S, 4, 4)
    R = (prob * (next_state == g)).sum(-1)  # +1 for entering the goal
    terminal = torch.zeros(S, dtype=torch.bool, device=device)
    terminal[g] = True
    mdp = TabularMDP.from_successors(next_state, prob, R, gamma, terminal=terminal)
    mdp.grid_shape, mdp.grid_moves = (L, L), GRID_MOVES
    return mdp
