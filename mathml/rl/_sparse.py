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
    """The CSR matrix made of rows ``rows: (M,)`` of CSR ``P`` (vectorised gather).

    Output entry ``p`` of selected row ``i`` (``p`` in ``[c_i, c_i + n_i)`` with ``c`` the new
    row pointers) comes from entry ``p + (s_i - c_i)`` of P, ``s_i`` the row's old start. The
    shift ``s_i - c_i`` is piecewise constant, so it is one cumulative sum of its jumps at the
    row starts: one index array of the output's length, in P's index dtype (int32 unless huge),
    is the only temporary; gathers use ``index_select`` (several times faster than advanced
    indexing on the CPU).
    """
    crow = P.crow_indices()
    itype = crow.dtype
    rows = rows.to(itype)
    start = crow.index_select(0, rows)
    counts = crow.index_select(0, rows + 1)
    counts -= start
    new_crow = torch.zeros(rows.numel() + 1, dtype=itype, device=P.device)
    torch.cumsum(counts, 0, dtype=itype, out=new_crow[1:])
    n = int(new_crow[-1])
    shift = start - new_crow[:-1]  # (M,) s_i - c_i
    jump = torch.diff(shift, prepend=shift.new_zeros(1))
    del start, counts, shift
    # One spare slot at the end receives the jumps of trailing empty rows (which start at n).
    offsets = torch.ones(n + 1, dtype=itype, device=P.device)
    offsets[0] = 0
    offsets.index_add_(0, new_crow[:-1], jump)
    offsets = offsets.cumsum_(0)[:n]
    col = P.col_indices().index_select(0, offsets)
    val = P.values().index_select(0, offsets)
    return make_csr(new_crow, col, val, (rows.numel(), P.shape[1]))


def csr_nbytes(P: torch.Tensor) -> int:
    """Bytes held by a CSR tensor's three arrays."""
    return sum(t.numel() * t.element_size() for t in (P.crow_indices(), P.col_indices(), P.values()))
