"""Bellman operators as pure, shape-checked functions over a ``TabularMDP``.

Symbols follow Sutton & Barto (2018) ch. 3-4 and Puterman (1994) ch. 6: ``v_t`` is a value
function ``(..., S)``, ``q_t`` an action-value function ``(..., S, A)``, ``pi`` a policy.
Leading dims are the batch of a batched MDP; every function runs unchanged on CPU and CUDA.
"""

from __future__ import annotations

import torch

from mathml.rl.mdp import TabularMDP

__all__ = [
    "q_backup",
    "bellman_optimality",
    "bellman_expectation",
    "soft_bellman_optimality",
    "greedy_policy",
    "span",
]


def _gamma(mdp: TabularMDP, extra_dims: int) -> torch.Tensor:
    """gamma shaped to broadcast against a tensor with ``extra_dims`` trailing dims."""
    return mdp.gamma.reshape(tuple(mdp.gamma.shape) + (1,) * extra_dims)


def _check_v(mdp: TabularMDP, v_t: torch.Tensor) -> None:
    want = (*mdp.batch_shape, mdp.num_states)
    if not isinstance(v_t, torch.Tensor):
        raise TypeError(f"v_t: expected a torch.Tensor of shape {want}, got {type(v_t).__name__}")
    if tuple(v_t.shape) != want:
        raise ValueError(f"v_t: expected shape {want} (batch..., S), got {tuple(v_t.shape)}")


def q_backup(mdp: TabularMDP, v_t: torch.Tensor) -> torch.Tensor:
    """One-step look-ahead (Sutton & Barto 2018, eq. 4.6; Puterman 1994, eq. 6.2.4).

    ``q(s, a) = r(s, a) + gamma * sum_{s'} p(s'|s, a) v_t(s')``.

    v_t: (..., S). Returns q: (..., S, A).
    """
    _check_v(mdp, v_t)
    if mdp.is_sparse and v_t.dim() == 1 and mdp.device.type == "cpu":
        # One fused sparse mat-vec r + gamma P v over the (S * A) rows: no (S, A) temporaries.
        q = torch.addmv(mdp.R.reshape(-1), mdp.P, v_t, alpha=float(mdp.gamma))
        return q.view(mdp.num_states, mdp.num_actions)
    return mdp.R + _gamma(mdp, 2) * mdp.expected_next(v_t)


def bellman_optimality(mdp: TabularMDP, v_t: torch.Tensor) -> torch.Tensor:
    """Bellman optimality operator (Sutton & Barto 2018, eq. 4.10; Puterman 1994, eq. 6.2.3).

    ``(T v)(s) = max_a [ r(s, a) + gamma * sum_{s'} p(s'|s, a) v(s') ]``; a gamma-contraction in
    the sup norm (Puterman 1994, Prop. 6.2.4). v_t: (..., S). Returns (..., S).
    """
    return q_backup(mdp, v_t).amax(-1)


def bellman_expectation(mdp: TabularMDP, v_t: torch.Tensor, pi: torch.Tensor) -> torch.Tensor:
    """Bellman expectation operator of a policy (Sutton & Barto 2018, eq. 4.5).

    ``(T_pi v)(s) = sum_a pi(a|s) [ r(s, a) + gamma * sum_{s'} p(s'|s, a) v(s') ]``.

    v_t: (..., S). pi: (..., S) integer actions (deterministic) or (..., S, A) probabilities.
    Returns (..., S).
    """
    q = q_backup(mdp, v_t)
    if pi.dtype.is_floating_point:
        if pi.shape != q.shape:
            raise ValueError(f"pi: expected probabilities of shape {tuple(q.shape)}, got {tuple(pi.shape)}")
        return (pi * q).sum(-1)
    if pi.shape != q.shape[:-1]:
        raise ValueError(f"pi: expected integer actions of shape {tuple(q.shape[:-1])}, got {tuple(pi.shape)}")
    return q.gather(-1, pi.unsqueeze(-1)).squeeze(-1)


def soft_bellman_optimality(mdp: TabularMDP, v_t: torch.Tensor, tau: float) -> torch.Tensor:
    """Soft (entropy-regularised) Bellman operator with temperature ``tau > 0``.

    ``(T_tau v)(s) = tau * log sum_a exp(q(s, a) / tau)`` with q from ``q_backup`` (Ziebart 2010,
    thesis eq. 6.4 "soft maximum"; Haarnoja et al. 2017, eq. 4; Geist et al. 2019, §3 with the
    negative-entropy regulariser). A gamma-contraction; ``T v <= T_tau v <= T v + tau log A``.
    v_t: (..., S). Returns (..., S).
    """
    if not tau > 0:
        raise ValueError(f"tau: expected a temperature > 0 (tau -> 0 is the hard max), got {tau}")
    return tau * torch.logsumexp(q_backup(mdp, v_t) / tau, dim=-1)


def greedy_policy(q_t: torch.Tensor, v_t: torch.Tensor | None = None) -> torch.Tensor:
    """``argmax_a q(s, a)`` (ties to the lowest action index). q_t: (..., S, A) -> (..., S).

    v_t: optional ``max_a q_t`` (..., S), already computed; then the argmax is found by A
    comparisons, several times faster than ``argmax`` over a short last dim on the CPU.
    """
    if v_t is None:
        return q_t.argmax(-1)
    A = q_t.shape[-1]
    pi = torch.full(v_t.shape, A - 1, dtype=torch.int64, device=q_t.device)
    for a in range(A - 2, -1, -1):
        pi = torch.where(q_t[..., a] == v_t, a, pi)
    return pi


def span(x: torch.Tensor) -> torch.Tensor:
    """Span seminorm ``sp(x) = max_s x(s) - min_s x(s)`` (Puterman 1994, §6.6.1). x: (..., S)."""
    return x.amax(-1) - x.amin(-1)
