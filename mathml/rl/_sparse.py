"""Private helpers for the sparse transition structure.

A sparse MDP stores ``P`` as ONE torch CSR matrix of shape ``(S * A, S)`` whose row
``s * A + a`` is the distribution ``P(. | s, a)``. One mat-vec ``P @ v`` then yields the
expected next value for every state-action pair at once, laid out as ``(S, A)``. Indices are
int32 when they fit (the multithreaded CPU kernel is fastest with them, and the bytes are those
of a scipy CSR matrix: 12 per stored entry), int64 otherwise.
"""

from __future__ import annotations

import warnings

import torch


def index_dtype(n: int) -> torch.dtype:
    """int32 when every index (and the nnz count) fits, else int64."""
    return torch.int32 if n < 2**31 - 1 else torch.int64


def make_csr(
    crow: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    """A CSR tensor from already valid (sorted, coalesced) arrays, without torch's beta warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        warnings.filterwarnings("ignore", message=".*[Ss]parse invariant checks are implicitly disabled.*")
        return torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False)


def csr_from_coo(
    row: torch.Tensor, col: torch.Tensor, val: torch.Tensor, shape: tuple[int, int]
) -> torch.Tensor:
    """CSR of ``shape`` from coordinate lists ``row, col, val: (N,)``; duplicates are summed and
    explicit zeros dropped."""
    n_rows, n_cols = shape
    keep = val != 0
    row, col, val = row[keep].to(torch.int64), col[keep].to(torch.int64), val[keep]
    key, order = torch.sort(row * n_cols + col)
    key, inverse = torch.unique_consecutive(key, return_inverse=True)
    merged = torch.zeros(key.numel(), dtype=val.dtype, device=val.device)
    merged.index_add_(0, inverse, val[order])
    row = torch.div(key, n_cols, rounding_mode="floor")
    col = key - row * n_cols
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=val.device)
    crow[1:] = torch.cumsum(torch.bincount(row, minlength=n_rows), 0)
    itype = index_dtype(max(n_cols, key.numel()))
    return make_csr(crow.to(itype), col.to(itype), merged, (n_rows, n_cols))


def csr_from_successors(next_state: torch.Tensor, prob: torch.Tensor, num_cols: int) -> torch.Tensor:
    """CSR ``(N, num_cols)`` from a fixed-width successor list, summing duplicate successors.

    next_state: (N, K) integer column of each listed successor.
    prob: (N, K) its probability (zeros are dropped).
    Rows are already in order, so only each row's K entries are sorted (no global sort).
    """
    n_rows, k = next_state.shape
    col, order = torch.sort(next_state, dim=-1)
    val = prob.gather(-1, order)
    # Merge equal neighbours within a row: a new group starts where the column changes.
    new_group = torch.ones_like(col, dtype=torch.bool)
    new_group[:, 1:] = col[:, 1:] != col[:, :-1]  # (zero-probability entries merge harmlessly)
    itype = index_dtype(max(num_cols, col.numel()))
    if bool(new_group.all()):  # fast path: no repeats, no zeros
        crow = torch.arange(0, n_rows * k + 1, k, device=val.device, dtype=itype)
        return make_csr(crow, col.reshape(-1).to(itype), val.reshape(-1), (n_rows, num_cols))
    group = torch.cumsum(new_group.reshape(-1).to(torch.int32), 0, dtype=torch.int64) - 1
    merged = torch.zeros(int(new_group.sum()), dtype=val.dtype, device=val.device)
    merged.index_add_(0, group, val.reshape(-1))
    col = col.reshape(-1)[new_group.reshape(-1)]
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=val.device)
    crow[1:] = torch.cumsum(new_group.sum(-1), 0)
    itype = index_dtype(max(num_cols, merged.numel()))
    return make_csr(crow.to(itype), col.to(itype), merged, (n_rows, num_cols))


def csr_select_rows(P: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The CSR matrix made of rows ``rows: (M,)`` of CSR ``P`` (vectorised gather)."""
    crow = P.crow_indices().to(torch.int64)
    start, stop = crow[rows], crow[rows + 1]
    counts = stop - start
    new_crow = torch.zeros(rows.numel() + 1, dtype=torch.int64, device=P.device)
    new_crow[1:] = torch.cumsum(counts, 0)
    offsets = torch.arange(int(new_crow[-1]), device=P.device) - torch.repeat_interleave(
        new_crow[:-1] - start, counts
    )
    col = P.col_indices()[offsets]
    val = P.values()[offsets]
    return make_csr(new_crow.to(col.dtype), col, val, (rows.numel(), P.shape[1]))


def csr_nbytes(P: torch.Tensor) -> int:
    """Bytes held by a CSR tensor's three arrays."""
    return sum(t.numel() * t.element_size() for t in (P.crow_indices(), P.col_indices(), P.values()))
