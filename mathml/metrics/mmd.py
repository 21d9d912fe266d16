"""Maximum mean discrepancy with Gaussian (RBF) kernels: the unbiased U-statistic.

For samples X = {x_i}_{i≤m} ~ P and Y = {y_j}_{j≤n} ~ Q and a kernel k, Gretton et al. 2012
("A Kernel Two-Sample Test", JMLR 13, Lemma 6, eq. 3) give the unbiased estimate of MMD²(P, Q):

    MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n−1)) Σ_{i≠j} k(y_i, y_j) − 2/(mn) Σ_{i,j} k(x_i, y_j),

whose expectation is exactly MMD²(P, Q) = E k(X, X') + E k(Y, Y') − 2 E k(X, Y); it can be
negative. Kernel: k(x, y) = (1/|H|) Σ_{h∈H} exp(−‖x − y‖² / (2h²)), a mean of RBF kernels over a
set H of bandwidths (each characteristic, so is their mean). With ``bandwidths=None`` H = {h_med},
the median heuristic: h_med = the median distance between distinct points of the pooled sample
(Gretton et al. 2012, §8). A data-dependent bandwidth makes the estimate only approximately
unbiased; pass fixed bandwidths where exact unbiasedness matters.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mathml.checks import check_positive, check_tensor

__all__ = ["mmd_squared", "median_bandwidth"]


def _sq_dists(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b).pow(2)


def median_bandwidth(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """h_med: the median of ‖z_i − z_j‖ over pairs i < j of the pooled sample z = x ∪ y (flattened).

    Args:
        x: (m, ...), y: (n, ...).

    Returns:
        A 0-d tensor (in the units of the data).
    """
    z = torch.cat([x.flatten(1), y.flatten(1)])
    d = torch.cdist(z, z)
    i, j = torch.triu_indices(len(z), len(z), offset=1, device=z.device)
    return d[i, j].median()


def mmd_squared(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    bandwidths: Sequence[float] | torch.Tensor | None = None,
) -> torch.Tensor:
    """The unbiased estimate MMD²_u(X, Y) with a mean of RBF kernels (module docstring; Gretton et
    al. 2012, eq. 3).

    Args:
        x: (m, ...) samples of P, m ≥ 2.
        y: (n, ...) samples of Q with the same event shape, n ≥ 2.
        bandwidths: RBF bandwidths h > 0 (a sequence or a 1-D tensor), or None for the median
            heuristic.

    Returns:
        A 0-d tensor (unitless, may be slightly negative).
    """
    x = check_tensor(x, "x", min_dim=2, shape_doc="(m, ...)")
    y = check_tensor(y, "y", min_dim=2, shape_doc="(n, ...)")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y must have the same event shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"x and y need at least 2 samples each (a U-statistic), got m={m}, n={n}")
    xf, yf = x.flatten(1), y.flatten(1).to(x.dtype)
    if bandwidths is None:
        h = median_bandwidth(xf, yf).reshape(1)
    else:
        h = torch.as_tensor(bandwidths, dtype=xf.dtype, device=xf.device).reshape(-1)
        if h.numel() == 0:
            raise ValueError("bandwidths must hold at least one value, got an empty sequence")
        for v in h.tolist():
            check_positive(v, "bandwidths entries")

    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = _sq_dists(a, b)
        return torch.exp(-d2[None] / (2.0 * h[:, None, None] ** 2)).mean(0)

    kxx, kyy, kxy = k(xf, xf), k(yf, yf), k(xf, yf)
    sum_xx = kxx.sum() - kxx.diagonal().sum()
    sum_yy = kyy.sum() - kyy.diagonal().sum()
    return sum_xx / (m * (m - 1)) + sum_yy / (n * (n - 1)) - 2.0 * kxy.sum() / (m * n)
