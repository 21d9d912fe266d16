"""Sliced Wasserstein distance between two sets of samples.

SW_p(μ, ν)^p = E_{θ ~ U(S^{d−1})} [ W_p(θ#μ, θ#ν)^p ]   (Rabin et al. 2011, "Wasserstein
Barycenter and its Application to Texture Mixing", SSVM, §3; Bonneel et al. 2015, "Sliced and
Radon Wasserstein Barycenters of Measures", JMIV, eq. 2), where θ#μ is the law of ⟨θ, X⟩.

In one dimension the optimal coupling is monotone, so W_p between two empirical measures is the
L_p distance between their quantile functions (Villani 2003, "Topics in Optimal Transportation",
Thm. 2.18; Bonneel et al. 2015, eq. 3):  W_p(μ, ν)^p = ∫₀¹ |F_μ^{-1}(u) − F_ν^{-1}(u)|^p du.
For two sets of equal size n this is (1/n) Σ_i |x_(i) − y_(i)|^p over the sorted values; for
unequal sizes the integral is evaluated exactly over the merged breakpoints of both step
quantile functions. The expectation over θ is a Monte-Carlo average over ``n_projections``
directions drawn uniformly on the sphere (normalised Gaussians) from ``generator``.
"""

from __future__ import annotations

import torch

from mathml.checks import check_generator, check_positive, check_positive_int, check_tensor

__all__ = ["sliced_wasserstein", "wasserstein_1d", "random_directions"]


def random_directions(n: int, dim: int, *, generator: torch.Generator | None = None,
                      dtype: torch.dtype | None = None, device=None) -> torch.Tensor:
    """``n`` directions θ uniform on the unit sphere S^{dim−1} (normalised standard Gaussians):
    returns ``(n, dim)``."""
    check_positive_int(n, "n_projections")
    check_positive_int(dim, "dim")
    dev = device if device is not None else (generator.device if generator is not None else None)
    theta = torch.randn(n, dim, generator=generator, dtype=dtype, device=dev)
    return theta / theta.norm(dim=1, keepdim=True)


def wasserstein_1d(u: torch.Tensor, v: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """W_p(μ_u, ν_v)^p between the empirical measures of the columns of ``u`` and ``v``.

    Args:
        u: (n, K) samples of K one-dimensional measures (one per column).
        v: (m, K).
        p: order ≥ 1.

    Returns:
        (K,) values of W_p^p = ∫₀¹ |F_u^{-1}(s) − F_v^{-1}(s)|^p ds (exact for empirical measures).
    """
    # Sorted along a contiguous last dimension: (K, n) (several times faster than sorting dim 0).
    u_sorted = torch.sort(u.T.contiguous(), dim=1).values
    v_sorted = torch.sort(v.T.contiguous(), dim=1).values
    n, m = u.shape[0], v.shape[0]
    if n == m:
        return (u_sorted - v_sorted).abs().pow(p).mean(1)
    # Merged breakpoints of the two step quantile functions: on each piece both are constant.
    s = torch.cat([torch.arange(1, n + 1, dtype=u.dtype, device=u.device) / n,
                   torch.arange(1, m + 1, dtype=u.dtype, device=u.device) / m]).unique(sorted=True)
    widths = torch.diff(s, prepend=s.new_zeros(1))
    mid = s - 0.5 * widths
    iu = torch.clamp((mid * n).floor().long(), max=n - 1)
    iv = torch.clamp((mid * m).floor().long(), max=m - 1)
    return ((u_sorted[:, iu] - v_sorted[:, iv]).abs().pow(p) * widths).sum(1)


def sliced_wasserstein(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    n_projections: int = 1000,
    p: float = 2.0,
    generator: torch.Generator | None = None,
    directions: torch.Tensor | None = None,
) -> torch.Tensor:
    """Monte-Carlo sliced Wasserstein distance SW_p between the empirical measures of ``x`` and ``y``.

        SW_p ≈ ( (1/L) Σ_l W_p(θ_l#μ_x, θ_l#ν_y)^p )^{1/p},   θ_l ~ U(S^{d−1})

    (Bonneel et al. 2015, eq. 2; the 1-D W_p exact, see ``wasserstein_1d``).

    Args:
        x: (n, ...) samples; flattened to (n, d).
        y: (m, ...) samples of the same event shape.
        n_projections: L, the number of directions (ignored when ``directions`` is given).
        p: order ≥ 1.
        generator: draws the directions (pass one for reproducible values).
        directions: optional (L, d) unit vectors to use instead of random ones.

    Returns:
        A 0-d tensor, SW_p, in the units of the data.
    """
    x = check_tensor(x, "x", min_dim=2, shape_doc="(n, ...)")
    y = check_tensor(y, "y", min_dim=2, shape_doc="(m, ...)")
    if x.shape[1:] != y.shape[1:]:
        raise ValueError(f"x and y must have the same event shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    p = check_positive(p, "p")
    if p < 1:
        raise ValueError(f"p must be >= 1, got {p}")
    check_generator(generator)
    xf, yf = x.flatten(1), y.flatten(1)
    if directions is None:
        directions = random_directions(n_projections, xf.shape[1], generator=generator, dtype=xf.dtype,
                                       device=xf.device)
    elif directions.dim() != 2 or directions.shape[1] != xf.shape[1]:
        raise ValueError(f"directions must have shape (L, {xf.shape[1]}), got {tuple(directions.shape)}")
    w = wasserstein_1d(xf @ directions.T, yf.to(xf.dtype) @ directions.T, p)
    return w.mean().pow(1.0 / p)
