"""Policy evaluation: solve ``(I - gamma P_pi) v = r_pi`` exactly (dense) or iteratively (sparse).

The sparse solver is Gauss–Seidel (Puterman 1994, §6.3.3; Saad 2003, *Iterative Methods for
Sparse Linear Systems*, §4.1) with the states ordered by decreasing current value: transitions of
a good policy mostly lead to higher-valued states, so in that order ``P_pi`` is nearly lower
triangular and one forward substitution carries information across the whole state space (the
ordering idea of Wingate & Seppi 2005 and Dai & Hansen 2007). Each sweep is one sparse
triangular solve ``(I - gamma L) x_new = r + gamma U x`` (torch CSR: MKL on CPU, cuSPARSE on
CUDA). Accuracy is certified: ``||x - v_pi||_inf <= ||T_pi x - x||_inf / (1 - gamma)``.
"""

from __future__ import annotations

import torch

from mathml.rl._sparse import csr_from_coo, make_csr


def solve_dense(P_pi: torch.Tensor, r_pi: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """v_pi = (I - gamma P_pi)^{-1} r_pi (Puterman 1994, Thm 6.1.1). P_pi: (..., S, S), r_pi: (..., S).

    With gamma = 1, absorbing zero-reward states (P_pi[s, s] = 1, r_pi[s] = 0) get the equation
    v(s) = 0, which makes the system non-singular for proper policies (stochastic shortest path,
    Bertsekas & Tsitsiklis 1996, §2.2).
    """
    S = P_pi.shape[-1]
    eye = torch.eye(S, dtype=P_pi.dtype, device=P_pi.device)
    g = gamma.reshape(*gamma.shape, 1, 1)
    M = eye - g * P_pi
    absorbing = (P_pi.diagonal(dim1=-2, dim2=-1) == 1) & (r_pi == 0) & (gamma.unsqueeze(-1) == 1)
    M = M + torch.diag_embed(absorbing.to(M.dtype))
    return torch.linalg.solve(M, r_pi.unsqueeze(-1)).squeeze(-1)


def _to_int64_csr(P: torch.Tensor) -> torch.Tensor:
    return make_csr(P.crow_indices().long(), P.col_indices().long(), P.values(), tuple(P.shape))


class GaussSeidelSplit:
    """``I - gamma P_pi`` in a state order, split into a lower (with diagonal) and an upper part.

    P_pi: CSR (S, S); order: (S,) state indices, first = swept first.
    """

    def __init__(self, P_pi: torch.Tensor, gamma: float, order: torch.Tensor) -> None:
        S = P_pi.shape[0]
        dev, dt = P_pi.device, P_pi.dtype
        rank = torch.empty_like(order)
        rank[order] = torch.arange(S, device=dev)
        counts = P_pi.crow_indices().diff().long()
        row = rank[torch.arange(S, device=dev).repeat_interleave(counts)]
        col = rank[P_pi.col_indices().long()]
        val = P_pi.values()
        lower = col < row
        upper = col > row
        diag = torch.ones(S, dtype=dt, device=dev)
        diag.index_add_(0, row[col == row], -gamma * val[col == row])
        ar = torch.arange(S, device=dev)
        self.L = _to_int64_csr(
            csr_from_coo(torch.cat([row[lower], ar]), torch.cat([col[lower], ar]),
                         torch.cat([-gamma * val[lower], diag]), (S, S))
        )
        self.U = csr_from_coo(row[upper], col[upper], gamma * val[upper], (S, S))
        self.P = csr_from_coo(row, col, val, (S, S))
        self.order, self.gamma = order, gamma

    def sweep(self, x: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """One Gauss–Seidel sweep in permuted coordinates: solve (I - gamma L) x' = b + gamma U x."""
        rhs = (b + self.U @ x).unsqueeze(-1)
        return torch.triangular_solve(rhs, self.L, upper=False).solution.squeeze(-1)


def evaluate_gauss_seidel(
    P_pi: torch.Tensor,
    r_pi: torch.Tensor,
    gamma: float,
    v0: torch.Tensor,
    *,
    tol: float,
    max_sweeps: int = 10_000,
    order: torch.Tensor | None = None,
) -> tuple[torch.Tensor, int, float]:
    """Gauss–Seidel policy evaluation until ``||v - v_pi||_inf <= tol`` is certified, or until
    the certified bound has not improved for 5 sweeps (rounding reached; the caller's
    certificate decides what that is worth).

    P_pi: CSR (S, S); r_pi, v0: (S,); order: (S,) (default: decreasing v0).
    Returns (v, sweeps, certified error bound).
    """
    if order is None:
        order = torch.argsort(v0, descending=True, stable=True)
    split = GaussSeidelSplit(P_pi, gamma, order)
    b, x = r_pi[order], v0[order]
    bound = best = float("inf")
    sweeps = best_at = 0
    while sweeps < max_sweeps:
        x = split.sweep(x, b)
        sweeps += 1
        res = (b + gamma * (split.P @ x) - x).abs().max()
        bound = float(res) / (1.0 - gamma)
        if bound <= tol:
            break
        if bound < best:
            best, best_at = bound, sweeps
        elif sweeps - best_at >= 5:  # stagnant: the dtype's rounding, not the sweeps, limits it
            break
    v = torch.empty_like(x)
    v[order] = x
    return v, sweeps, bound
