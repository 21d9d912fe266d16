"""MCMC diagnostics over chains ``(chains, draws, ...)``: rank-normalised split-R̂ and effective
sample sizes (Vehtari, Gelman, Simpson, Carpenter & Bürkner 2021, "Rank-normalization, folding, and
localization: an improved R̂ for assessing convergence of MCMC", Bayesian Analysis 16(2)), and the
kernel Stein discrepancy with the inverse multiquadric kernel (Gorham & Mackey 2017, "Measuring
sample quality with kernels", ICML).

Every trailing dimension of a chain tensor is a separate scalar quantity: ``(M, N, *P)`` gives
results of shape ``P``. Computation is in float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from mathml.checks import check_positive, check_positive_int, check_tensor


def _as_chains(chains: torch.Tensor, min_draws: int = 4) -> tuple[torch.Tensor, tuple[int, ...]]:
    """(M, N, *P) → float64 (M, N, Q) with Q = prod(P), and P."""
    check_tensor(chains, "chains", min_dim=2, shape_doc="(chains, draws, ...)")
    m, n = chains.shape[:2]
    if n < min_draws:
        raise ValueError(f"chains must have at least {min_draws} draws per chain, got shape {tuple(chains.shape)}")
    p = tuple(chains.shape[2:])
    return chains.detach().to(torch.float64).reshape(m, n, -1), p


def _split(x: torch.Tensor) -> torch.Tensor:
    """Split each chain into its first and second half (dropping the middle draw when N is odd):
    (M, N, Q) → (2M, ⌊N/2⌋, Q) (Vehtari et al. 2021, §3.1; Gelman et al. 2013, BDA3 §11.4)."""
    half = x.shape[1] // 2
    return torch.cat([x[:, :half], x[:, x.shape[1] - half:]], dim=0)


def _rank_normalize(x: torch.Tensor) -> torch.Tensor:
    """z = Φ⁻¹((r − 3/8) / (S + 1/4)) with r the rank of each draw among all S pooled draws (average
    ranks for ties) (Vehtari et al. 2021, eq. 14, Blom's fractional offset)."""
    m, n, q = x.shape
    flat = x.reshape(m * n, q)
    order = flat.argsort(dim=0)
    ranks = torch.empty_like(flat)
    ranks.scatter_(0, order, torch.arange(1, m * n + 1, dtype=flat.dtype)[:, None].expand(m * n, q).contiguous())
    # Ties: replace each rank by the mean rank of its tied group.
    sorted_vals = flat.gather(0, order)
    if bool((sorted_vals[1:] == sorted_vals[:-1]).any()):
        for j in range(q):
            vals, inverse = torch.unique(flat[:, j], return_inverse=True)
            mean_rank = torch.zeros(vals.numel(), dtype=flat.dtype).index_add_(0, inverse, ranks[:, j])
            mean_rank /= torch.bincount(inverse, minlength=vals.numel()).to(flat.dtype)
            ranks[:, j] = mean_rank[inverse]
    s = m * n
    u = (ranks - 0.375) / (s + 0.25)
    return (math.sqrt(2.0) * torch.erfinv(2.0 * u - 1.0)).reshape(m, n, q)


def _rhat(x: torch.Tensor) -> torch.Tensor:
    """Potential scale reduction of (M, N, Q) chains (Gelman et al. 2013, BDA3 eqs. 11.2–11.4):
    W = mean within-chain variance, B/N = variance of chain means, var⁺ = (N−1)/N W + B/N,
    R̂ = √(var⁺ / W)."""
    n = x.shape[1]
    w = x.var(dim=1, unbiased=True).mean(0)
    b_over_n = x.mean(1).var(dim=0, unbiased=True)
    var_plus = (n - 1) / n * w + b_over_n
    return torch.sqrt(var_plus / w)


def split_rhat(chains: torch.Tensor) -> torch.Tensor:
    """Rank-normalised split-R̂ (Vehtari et al. 2021, §4.1): the larger of split-R̂ on the
    rank-normalised draws and on the rank-normalised folded draws |θ − median θ| (which detects
    chains that differ in scale but not in location). Values above 1.01 flag non-convergence
    (their recommendation).

    Args:
        chains: (M, N, ...) draws of M ≥ 1 chains (each is split in two, so M = 1 works).

    Returns:
        R̂ of shape ``chains.shape[2:]``.
    """
    x, p = _as_chains(chains)
    split = _split(x)
    bulk = _rhat(_rank_normalize(split))
    folded = (split - split.reshape(-1, split.shape[-1]).median(dim=0).values).abs()
    tail = _rhat(_rank_normalize(folded))
    return torch.maximum(bulk, tail).reshape(p)


def _autocovariance(x: torch.Tensor) -> torch.Tensor:
    """Biased autocovariance γ̂_t = (1/N) Σ_{i<N−t} (x_i − x̄)(x_{i+t} − x̄) of each chain along dim 1,
    by FFT with zero padding to avoid circular wrap-around (Geyer 1992, §3.1): (M, N, Q) → (M, N, Q)."""
    n = x.shape[1]
    centred = x - x.mean(dim=1, keepdim=True)
    size = 1 << (2 * n - 1).bit_length()
    f = torch.fft.rfft(centred, n=size, dim=1)
    return torch.fft.irfft(f * f.conj(), n=size, dim=1)[:, :n] / n


def _ess(x: torch.Tensor) -> torch.Tensor:
    """ESS of (M, N, Q) chains (Vehtari et al. 2021, eqs. 10–11; Geyer 1992, §3.3):

        ρ̂_t = 1 − (W − mean_m(s_m² ρ̂_{t,m})) / var⁺,   τ̂ = −1 + 2 Σ_{k=0}^{K} P̂_k,   ESS = M N / τ̂,

    with P̂_k = ρ̂_{2k} + ρ̂_{2k+1} truncated before the first negative pair (Geyer's initial positive
    sequence) and made non-increasing (his initial monotone sequence)."""
    m, n, _ = x.shape
    acov = _autocovariance(x)                                      # γ̂_{t,m}, biased (÷N)
    w = acov[:, 0].mean(0) * n / (n - 1)                           # W: mean unbiased within-chain variance
    var_plus = w * (n - 1) / n
    if m > 1:
        var_plus = var_plus + x.mean(1).var(dim=0, unbiased=True)  # + B/N
    rho = 1.0 - (w - acov.mean(0)) / var_plus                     # (N, Q); s_m² ρ̂_{t,m} = γ̂_{t,m}
    rho[0] = 1.0
    pairs = rho[: 2 * (n // 2)].reshape(n // 2, 2, -1).sum(1)     # P̂_k, (N/2, Q)
    positive = torch.cumprod((pairs > 0).to(x.dtype), dim=0)      # 1 until the first non-positive pair
    monotone = torch.cummin(pairs, dim=0).values
    tau = -1.0 + 2.0 * (monotone * positive).sum(0)
    return m * n / tau


def effective_sample_size(chains: torch.Tensor, *, rank_normalized: bool = True) -> torch.Tensor:
    """Effective sample size over chains (Vehtari et al. 2021, §3.2–3.3).

    ``rank_normalized=True`` gives the bulk-ESS: the ESS of the rank-normalised split chains,
    defined even for targets without finite moments; ``False`` gives the classic ESS of the mean
    on the split chains.

    Args:
        chains: (M, N, ...) draws; N ≥ 4 per chain.

    Returns:
        ESS of shape ``chains.shape[2:]`` (in draws: at most about M·N for independent draws, more
        for antithetic chains).
    """
    x, p = _as_chains(chains)
    split = _split(x)
    return _ess(_rank_normalize(split) if rank_normalized else split).reshape(p)


def _imq_stein_kernel(x, y, sx, sy, c2, beta):
    """Langevin–Stein kernel k₀(x, y) for k(x, y) = (c² + ‖x − y‖²)^β (Gorham & Mackey 2017, eq. (3)
    with the IMQ base kernel of their Thm 8; Liu, Lee & Jordan 2016, eq. 9):

        k₀ = s(x)ᵀs(y) k + s(x)ᵀ∇_y k + s(y)ᵀ∇_x k + tr ∇_x∇_y k,
        ∇_x k = 2β r q^{β−1} = −∇_y k,   tr ∇_x∇_y k = −2βD q^{β−1} − 4β(β−1) ‖r‖² q^{β−2},

    with r = x − y and q = c² + ‖r‖². Shapes: x (A, D), y (C, D) → (A, C)."""
    d = x.shape[1]
    r = x[:, None, :] - y[None, :, :]
    r2 = r.pow(2).sum(-1)
    q = c2 + r2
    k = q.pow(beta)
    grad_x = 2.0 * beta * r * q.pow(beta - 1.0)[..., None]       # ∇_x k, (A, C, D)
    term1 = (sx @ sy.T) * k
    term2 = -(sx[:, None, :] * grad_x).sum(-1)                    # s(x)ᵀ ∇_y k
    term3 = (sy[None, :, :] * grad_x).sum(-1)                     # s(y)ᵀ ∇_x k
    term4 = -2.0 * beta * d * q.pow(beta - 1.0) - 4.0 * beta * (beta - 1.0) * r2 * q.pow(beta - 2.0)
    return term1 + term2 + term3 + term4


def kernel_stein_discrepancy(
    x: torch.Tensor,
    score: torch.Tensor | Callable[[torch.Tensor], torch.Tensor],
    *,
    c: float = 1.0,
    beta: float = -0.5,
    u_statistic: bool = False,
    chunk: int = 2048,
) -> torch.Tensor:
    """Kernel Stein discrepancy of the sample ``x`` from the target whose score is ``score``, with
    the inverse multiquadric kernel (c² + ‖x − y‖²)^β, β ∈ (−1, 0) (Gorham & Mackey 2017, Thm 8:
    it detects non-convergence and convergence for distantly dissipative targets):

        KSD² = (1/N²) Σ_{i,j} k₀(x_i, x_j)     (V-statistic; ``u_statistic=True`` drops i = j and
        divides by N(N−1), an unbiased estimate of KSD² that can be negative).

    Needs no normalising constant and no samples from the target: only ∇log p at the sample.

    Args:
        x: (N, D) sample.
        score: (N, D) values of ∇log p at ``x``, or a callable ``(N, D) -> (N, D)``.
        c, beta: kernel parameters (defaults: c = 1, β = −1/2, Gorham & Mackey's choice).
        u_statistic: return the unbiased U-statistic of KSD² instead of the V-statistic KSD.
        chunk: rows of the N×N kernel matrix evaluated at once (memory ~ chunk · N · D).

    Returns:
        a 0-d float64 tensor: KSD (V-statistic, ≥ 0) or the U-statistic estimate of KSD².
    """
    check_tensor(x, "x", min_dim=2, shape_doc="(N, D)")
    if x.dim() != 2 or x.shape[0] < 2:
        raise ValueError(f"x must have shape (N, D) with N >= 2, got {tuple(x.shape)}")
    s = score(x) if callable(score) else score
    if not isinstance(s, torch.Tensor) or s.shape != x.shape:
        raise ValueError(f"score must be (N, D) = {tuple(x.shape)} or a callable returning that, got "
                         f"{tuple(getattr(s, 'shape', ()))}")
    check_positive(c, "c")
    if not -1.0 < beta < 0.0:
        raise ValueError(f"beta must lie in (-1, 0) for the IMQ kernel, got {beta!r}")
    check_positive_int(chunk, "chunk")
    x64, s64 = x.detach().to(torch.float64), s.detach().to(torch.float64)
    n = x.shape[0]
    total = x64.new_zeros(())
    diag = x64.new_zeros(())
    for i in range(0, n, chunk):
        block = _imq_stein_kernel(x64[i:i + chunk], x64, s64[i:i + chunk], s64, c * c, beta)
        total = total + block.sum()
        if u_statistic:
            rows = torch.arange(block.shape[0])
            diag = diag + block[rows, i + rows].sum()
    if u_statistic:
        return (total - diag) / (n * (n - 1))
    return total.clamp(min=0.0).sqrt() / n
