"""Finite Markov decision processes: transition probabilities, expected rewards, a discount.

Notation follows Puterman (1994), *Markov Decision Processes*, §2.1 and Sutton & Barto (2018),
*Reinforcement Learning*, §3.1: ``P[a, s, s'] = p(s' | s, a)`` and the expected reward
``R[s, a] = r(s, a) = sum_{s'} p(s' | s, a) r(s, a, s')`` (Sutton & Barto eq. 3.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from mathml.rl._sparse import csr_from_coo, csr_from_successors, csr_nbytes, csr_select_rows, make_csr

__all__ = ["TabularMDP"]


def _as_tensor(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, (int, float)):
        return torch.tensor(float(x), dtype=torch.float64)
    raise TypeError(f"{name}: expected a torch.Tensor or numpy array, got {type(x).__name__}")


def _coo_of(m: Any, name: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple]:
    """(row, col, val, shape) of a scipy sparse, torch sparse or dense 2-D/3-D matrix."""
    if hasattr(m, "tocoo") and not isinstance(m, torch.Tensor):  # scipy.sparse
        m = m.tocoo()
        idx = [torch.from_numpy(np.asarray(i, dtype=np.int64)) for i in (m.row, m.col)]
        return (*idx, torch.from_numpy(np.asarray(m.data)), tuple(m.shape))
    m = _as_tensor(m, name)
    c = (m if m.layout == torch.sparse_coo else m.to_sparse_coo()).coalesce()
    return (*c.indices(), c.values(), tuple(c.shape))


def _sparse_P_to_csr(P: Any) -> tuple[torch.Tensor, int, int]:
    """A sparse ``(A, S, S)`` tensor or a sequence of ``A`` matrices ``(S, S)`` -> CSR ``(S*A, S)``."""
    if isinstance(P, torch.Tensor):
        if P.dim() != 3:
            raise ValueError(f"P: expected a sparse (A, S, S) tensor, got shape {tuple(P.shape)}")
        a, s, t, v, shape = _coo_of(P, "P")
        A, S = shape[0], shape[1]
    else:
        parts = [_coo_of(m, f"P[{i}]") for i, m in enumerate(P)]
        A, S = len(parts), parts[0][3][0]
        for i, (*_, shape) in enumerate(parts):
            if shape != (S, S):
                raise ValueError(f"P[{i}]: expected a square ({S}, {S}) matrix like P[0], got {shape}")
        a = torch.cat([torch.full_like(p[0], i) for i, p in enumerate(parts)])
        s, t, v = (torch.cat([p[j] for p in parts]) for j in range(3))
    if A < 1 or S < 1:
        raise ValueError(f"P: expected A >= 1 actions and S >= 1 states, got A={A}, S={S}")
    return csr_from_coo(s * A + a, t, v, (S * A, S)), A, S


class TabularMDP:
    """A finite discounted MDP ``(P, R, gamma)``; dense (optionally batched) or sparse.

    P: dense ``(..., A, S, S)`` with ``P[..., a, s, s'] = p(s'|s, a)`` (leading dims = a batch of
        MDPs of equal size, solved at once), or sparse: a torch sparse ``(A, S, S)`` tensor or a
        sequence of ``A`` sparse/dense ``(S, S)`` matrices (torch or scipy). Sparse P is stored as
        one CSR matrix ``(S * A, S)`` with row ``s * A + a`` (see ``_sparse.py``).
    R: ``(..., S, A)`` expected reward r(s, a), or ``(..., A, S, S)`` reward r(s, a, s') reduced to
        ``sum_{s'} p(s'|s,a) r(s,a,s')`` (Sutton & Barto 2018, eq. 3.5).
    gamma: discount in [0, 1], a float or a tensor of the batch shape (stored in P's dtype). gamma = 1 is accepted here
        but only finite-horizon backward induction can use it: the infinite-horizon solvers need
        the gamma-contraction (Puterman 1994, Thm 6.2.3).
    terminal: optional ``(S,)`` bool; those states become absorbing with zero reward.
    validate: check the arrays (finite, P >= 0, rows within 1e-6 — 1e-4 below float64 — of
        summing to one, gamma in [0, 1]) and renormalise the rows in float64 before casting back,
        so the stored P is stochastic up to the dtype's rounding. ``validate=False`` skips both.

    The stored arrays, read as exact numbers, ARE the MDP that the planners' bounds are about
    (``mathml.rl.certificate``): any row defect left after the cast is measured and carried into
    the bounds, never assumed away.

    Grid worlds also set ``grid_shape = (rows, cols)`` (states row-major) and ``grid_moves``, the
    ``(d_row, d_col)`` of each action, which plotting uses; other MDPs leave them ``None``.
    """

    grid_shape: tuple[int, int] | None = None
    grid_moves: tuple[tuple[int, int], ...] | None = None
    name: str = ""

    def __init__(
        self,
        P: Any,
        R: Any,
        gamma: float | torch.Tensor,
        *,
        terminal: torch.Tensor | None = None,
        validate: bool = True,
    ) -> None:
        dense = isinstance(P, (torch.Tensor, np.ndarray)) and (
            not isinstance(P, torch.Tensor) or P.layout == torch.strided
        )
        if dense:
            P = _as_tensor(P, "P")
            if P.dim() < 3 or P.shape[-1] != P.shape[-2]:
                raise ValueError(f"P: expected shape (..., A, S, S), got {tuple(P.shape)}")
            A, S = P.shape[-3], P.shape[-1]
            batch = tuple(P.shape[:-3])
        elif isinstance(P, (torch.Tensor, list, tuple)):
            P, A, S = _sparse_P_to_csr(P)
            batch = ()
        else:
            raise TypeError(f"P: expected a dense/sparse tensor or a list of A matrices, got {type(P).__name__}")
        if not P.dtype.is_floating_point:
            raise TypeError(f"P: expected a floating-point dtype, got {P.dtype}")
        R = _as_tensor(R, "R").to(device=P.device)
        if R.is_sparse:
            R = R.to_dense()
        if tuple(R.shape) == (*batch, A, S, S):
            R = self._reduce_reward(P, R.to(P.dtype), A, S)
        elif tuple(R.shape) != (*batch, S, A):
            raise ValueError(
                f"R: expected shape {(*batch, S, A)} (S, A) or {(*batch, A, S, S)} (A, S, S) to match "
                f"P {'(A, S, S) = ' + str((A, S, S)) if not batch else tuple(P.shape)}, got {tuple(R.shape)}"
            )
        gamma_t = _as_tensor(gamma, "gamma").to(device=P.device, dtype=P.dtype)
        if gamma_t.dim() and tuple(gamma_t.shape) != batch:
            raise ValueError(f"gamma: expected a scalar or shape {batch}, got {tuple(gamma_t.shape)}")
        self.P, self.R, self.gamma = P, R.to(P.dtype), gamma_t
        self.num_states, self.num_actions, self.batch_shape = S, A, batch
        if terminal is not None:
            self._make_absorbing(torch.as_tensor(terminal, device=P.device).to(torch.bool))
        if validate:
            self.validate()
            self._normalise_rows()

    # -- construction helpers ------------------------------------------------------------------
    @staticmethod
    def _reduce_reward(P: torch.Tensor, R3: torch.Tensor, A: int, S: int) -> torch.Tensor:
        if P.layout == torch.strided:
            return (P * R3).sum(-1).transpose(-1, -2)
        rows = torch.arange(S * A, device=P.device).repeat_interleave(
            P.crow_indices().diff().to(torch.int64)
        )
        s, a = rows // A, rows % A
        col = P.col_indices().to(torch.int64)
        r = torch.zeros(S * A, dtype=P.dtype, device=P.device)
        r.index_add_(0, rows, P.values() * R3[a, s, col])
        return r.view(S, A)

    @classmethod
    def from_successors(
        cls,
        next_state: torch.Tensor,
        prob: torch.Tensor,
        R: torch.Tensor,
        gamma: float,
        *,
        terminal: torch.Tensor | None = None,
        validate: bool = True,
    ) -> TabularMDP:
        """A sparse MDP from fixed-width successor lists (duplicates are summed).

        next_state: (S, A, K) integer successor states; prob: (S, A, K) their probabilities;
        R: (S, A) expected rewards. Vectorised: builds S = 1e6 in seconds.
        """
        if next_state.dim() != 3 or next_state.shape != prob.shape:
            raise ValueError(
                f"next_state, prob: expected equal shapes (S, A, K), got {tuple(next_state.shape)} "
                f"and {tuple(prob.shape)}"
            )
        S, A, K = next_state.shape
        if tuple(R.shape) != (S, A):
            raise ValueError(f"R: expected shape (S, A) = {(S, A)}, got {tuple(R.shape)}")
        R = R.to(dtype=prob.dtype)
        if terminal is not None:  # absorbing, zero reward: one self-loop of probability 1
            terminal = torch.as_tensor(terminal, device=prob.device).to(torch.bool)
            if terminal.shape != (S,):
                raise ValueError(f"terminal: expected a bool tensor of shape ({S},), got {tuple(terminal.shape)}")
            t = terminal.nonzero().flatten()
            next_state, prob, R = next_state.clone(), prob.clone(), R.clone()
            next_state[t] = t[:, None, None]
            prob[t] = 0.0
            prob[t, :, 0] = 1.0
            R[t] = 0.0
        csr = csr_from_successors(next_state.reshape(S * A, K), prob.reshape(S * A, K), S)
        mdp = cls.__new__(cls)
        mdp.P, mdp.R = csr, R.to(device=csr.device)
        mdp.gamma = torch.as_tensor(gamma, dtype=csr.dtype, device=csr.device)
        mdp.num_states, mdp.num_actions, mdp.batch_shape = S, A, ()
        if validate:
            mdp.validate()
            mdp._normalise_rows()
        return mdp

    @classmethod
    def from_gymnasium(cls, env: Any, gamma: float = 0.99, dtype: torch.dtype = torch.float64) -> TabularMDP:
        """The MDP of a toy-text gymnasium env (FrozenLake-v1, Taxi-v4, CliffWalking-v1).

        env: a gymnasium env, wrapped or not, exposing ``env.unwrapped.P[s][a]`` as a list of
        ``(probability, next_state, reward, terminated)``. Returns a dense MDP with P: (A, S, S)
        and R: (S, A) expected rewards ``sum_{s'} p r`` (Sutton & Barto 2018, eq. 3.5); duplicate
        outcomes are summed. Terminating transitions lead to absorbing zero-reward states (an
        extra absorbing state S is appended when a terminal state can also be entered without
        terminating; see ``_gymnasium.py``). Grid envs get ``grid_shape`` and ``grid_moves``.
        """
        from mathml.rl._gymnasium import transition_table

        t = transition_table(env, dtype)
        mdp = cls(t.P, t.R, gamma, terminal=t.terminal)
        mdp.grid_shape, mdp.grid_moves, mdp.name = t.grid_shape, t.grid_moves, t.name
        return mdp

    def _normalise_rows(self) -> None:
        """Divide each row of P by its sum (computed in float64, then cast back to the dtype).

        Validation accepts rows within ``atol`` of summing to one; the planners' certificates are
        about the stored P, so rows are made stochastic here, up to the dtype's rounding (the
        defect left, about one unit roundoff, is carried into every bound). Rows already at that
        level are left untouched.
        """
        S, A = self.num_states, self.num_actions
        tol = (S + 2) * torch.finfo(self.dtype).eps
        if self.is_sparse:
            vals = self.P.values()
            csr64 = make_csr(self.P.crow_indices(), self.P.col_indices(), vals.to(torch.float64), tuple(self.P.shape))
            sums = csr64 @ torch.ones(S, dtype=torch.float64, device=self.device)
            if not bool(((sums - 1).abs() > tol).any()):
                return
            counts = self.P.crow_indices().diff().to(torch.int64)
            scaled = csr64.values() / sums.repeat_interleave(counts)
            self.P = make_csr(self.P.crow_indices(), self.P.col_indices(), scaled.to(self.dtype), tuple(self.P.shape))
        else:
            sums = self.P.sum(-1, keepdim=True, dtype=torch.float64)
            if not bool(((sums - 1).abs() > tol).any()):
                return
            self.P = (self.P.to(torch.float64) / sums).to(self.dtype)

    def _make_absorbing(self, terminal: torch.Tensor) -> None:
        S, A = self.num_states, self.num_actions
        if terminal.shape != (S,):
            raise ValueError(f"terminal: expected a bool tensor of shape ({S},), got {tuple(terminal.shape)}")
        if self.is_sparse:
            rows = torch.arange(S * A, device=self.device).repeat_interleave(
                self.P.crow_indices().diff().to(torch.int64)
            )
            keep = ~terminal[rows // A]
            ts = terminal.nonzero().flatten().repeat_interleave(A)
            t_rows = ts * A + torch.arange(A, device=self.device).repeat(terminal.sum())
            row = torch.cat([rows[keep], t_rows])
            col = torch.cat([self.P.col_indices().to(torch.int64)[keep], ts])
            val = torch.cat([self.P.values()[keep], torch.ones_like(ts, dtype=self.dtype)])
            self.P = csr_from_coo(row, col, val, (S * A, S))
        else:
            P = self.P.clone()
            P[..., terminal, :] = 0.0
            idx = terminal.nonzero().flatten()
            P[..., idx, idx] = 1.0
            self.P = P
        self.R = self.R.clone()
        self.R[..., terminal, :] = 0.0

    # -- properties ----------------------------------------------------------------------------
    @property
    def is_sparse(self) -> bool:
        return self.P.layout != torch.strided

    @property
    def dtype(self) -> torch.dtype:
        return self.P.dtype

    @property
    def device(self) -> torch.device:
        return self.P.device

    @property
    def nbytes_P(self) -> int:
        """Bytes of the stored transition structure."""
        return csr_nbytes(self.P) if self.is_sparse else self.P.numel() * self.P.element_size()

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> TabularMDP:
        """A copy on ``device`` with floating dtype ``dtype`` (index arrays keep theirs)."""
        out = self.__class__.__new__(self.__class__)
        out.__dict__.update(self.__dict__)
        out.__dict__.pop("_row_stats", None)  # measured on the old arrays
        if self.is_sparse:
            P = self.P
            out.P = make_csr(
                P.crow_indices().to(device), P.col_indices().to(device),
                P.values().to(device=device, dtype=dtype), tuple(P.shape),
            )
        else:
            out.P = self.P.to(device=device, dtype=dtype)
        out.R = self.R.to(device=device, dtype=dtype)
        out.gamma = self.gamma.to(device=device, dtype=dtype)
        return out

    def validate(self, atol: float | None = None) -> None:
        """Raise ValueError unless P has stochastic rows, P, R have no NaN/inf, gamma in [0, 1]."""
        if atol is None:
            atol = 1e-6 if self.dtype == torch.float64 else 1e-4
        vals = self.P.values() if self.is_sparse else self.P
        for name, x in (("P", vals), ("R", self.R), ("gamma", self.gamma)):
            if not torch.isfinite(x).all():
                raise ValueError(f"{name}: contains NaN or inf")
        if ((self.gamma < 0) | (self.gamma > 1)).any():
            raise ValueError(f"gamma: expected a discount in [0, 1], got {self.gamma.tolist()}")
        if (vals < 0).any():
            raise ValueError("P: has negative entries; rows of P must be probability distributions")
        S, A = self.num_states, self.num_actions
        if self.is_sparse:
            sums = (self.P @ torch.ones(S, dtype=self.dtype, device=self.device)).view(S, A).T
        else:
            sums = self.P.sum(-1)  # (..., A, S)
        bad = (sums - 1).abs() > atol
        if bad.any():
            where = bad.nonzero()[0].tolist()
            *b, a, s = where
            batch = f"batch index {tuple(b)}, " if b else ""
            raise ValueError(
                f"P: row for {batch}action a={a}, state s={s} sums to {float(sums[tuple(where)]):.6g}, "
                f"expected 1 (rows P[a, s, :] must be probability distributions; "
                f"{int(bad.sum())} bad rows in all)"
            )

    # -- the two primitives every algorithm uses -------------------------------------------------
    def expected_next(self, v: torch.Tensor) -> torch.Tensor:
        """``sum_{s'} p(s'|s, a) v(s')`` for every (s, a).

        v: (..., S) values (batch dims of a batched MDP, or extra leading dims for a sparse one).
        Returns (..., S, A).
        """
        S, A = self.num_states, self.num_actions
        if v.shape[-1] != S:
            raise ValueError(f"v: expected last dim S={S}, got shape {tuple(v.shape)}")
        if self.is_sparse:
            if v.dim() == 1:
                return (self.P @ v).view(S, A)
            flat = v.reshape(-1, S).T
            return (self.P @ flat).T.reshape(*v.shape[:-1], S, A)
        # Batched mat-vec (..., A, S, S) @ (..., 1, S, 1): a bmm, far faster than einsum here.
        return (self.P @ v[..., None, :, None]).squeeze(-1).transpose(-1, -2)

    def policy_model(self, policy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Transition matrix and reward of a deterministic policy (Puterman 1994, eq. 6.1.2).

        policy: (..., S) action indices. Returns ``P_pi`` — dense (..., S, S), or CSR (S, S) for
        a sparse MDP — and ``r_pi: (..., S)``.
        """
        S, A = self.num_states, self.num_actions
        r_pi = self.R.gather(-1, policy.unsqueeze(-1)).squeeze(-1)
        if self.is_sparse:
            itype = self.P.crow_indices().dtype
            rows = torch.arange(0, S * A, A, dtype=itype, device=self.device)
            rows += policy.to(itype)
            return csr_select_rows(self.P, rows), r_pi
        P_sa = self.P.transpose(-3, -2)  # (..., S, A, S)
        idx = policy[..., None, None].expand(*policy.shape, 1, S)
        return P_sa.gather(-2, idx).squeeze(-2), r_pi

    def __repr__(self) -> str:
        kind = "sparse" if self.is_sparse else "dense"
        return (
            f"TabularMDP(S={self.num_states}, A={self.num_actions}, batch={self.batch_shape}, "
            f"{kind}, gamma={self.gamma.tolist()}, dtype={self.dtype}, device={self.device})"
        )
