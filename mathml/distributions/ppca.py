"""Probabilistic PCA: the linear-Gaussian latent variable model with a closed-form likelihood.

Tipping & Bishop (1999), "Probabilistic Principal Component Analysis", JRSS B 61(3):

    p(z) = N(0, I_q),   p(x | z) = N(W z + μ, σ² I_D)                           (eq. 2-3)
    p(x) = N(μ, C),     C = W Wᵀ + σ² I_D                                          (eq. 4)
    p(z | x) = N(M⁻¹ Wᵀ (x − μ), σ² M⁻¹),   M = Wᵀ W + σ² I_q                    (eq. 6)

Maximum likelihood (eq. 7-8): with S the sample covariance (1/N normalisation) and eigenvalues
λ_1 ≥ … ≥ λ_D, eigenvectors U,

    μ_ML = x̄,   σ²_ML = (1/(D−q)) Σ_{j>q} λ_j,   W_ML = U_q (Λ_q − σ²_ML I)^{1/2}.

A linear VAE attains this optimum (Lucas et al. 2019), which makes PPCA the truth against which
mathml's ELBO, IWAE and VAE training are tested.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.distributions import MultivariateNormal

from mathml.checks import check_positive_int, check_tensor


@dataclass(frozen=True)
class PPCA:
    """A PPCA model. ``W: (D, q)``, ``mu: (D,)``, ``sigma2``: a positive scalar (float or 0-d tensor)."""

    W: torch.Tensor
    mu: torch.Tensor
    sigma2: torch.Tensor | float

    def __post_init__(self) -> None:
        if self.W.dim() != 2 or self.mu.shape != (self.W.shape[0],):
            raise ValueError(f"PPCA expects W: (D, q) and mu: (D,), got {tuple(self.W.shape)} and {tuple(self.mu.shape)}")
        if not float(torch.as_tensor(self.sigma2).detach()) > 0:
            raise ValueError(f"PPCA sigma2 must be > 0, got {self.sigma2}")

    def marginal(self) -> MultivariateNormal:
        """p(x) = N(μ, W Wᵀ + σ² I) (eq. 4), event_shape (D,)."""
        D = self.W.shape[0]
        C = self.W @ self.W.T + self.sigma2 * torch.eye(D, dtype=self.W.dtype, device=self.W.device)
        return MultivariateNormal(self.mu, covariance_matrix=C)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x) in nats; ``x: (B, D)`` -> ``(B,)``."""
        return self.marginal().log_prob(x)

    def posterior(self, x: torch.Tensor) -> MultivariateNormal:
        """p(z | x) (eq. 6); ``x: (B, D)`` -> batch (B,), event (q,)."""
        q = self.W.shape[1]
        M = self.W.T @ self.W + self.sigma2 * torch.eye(q, dtype=self.W.dtype, device=self.W.device)
        mean = torch.linalg.solve(M, self.W.T @ (x - self.mu).T).T
        return MultivariateNormal(mean, covariance_matrix=self.sigma2 * torch.linalg.inv(M))


def ppca_maximum_likelihood(x: torch.Tensor, q: int) -> PPCA:
    """Closed-form PPCA maximum-likelihood fit (Tipping & Bishop 1999, eq. 7-8).

    The fit needs q below the rank r of the centred data: the discarded eigenvalues λ_{q+1..D} of
    the sample covariance are then not all 0, so σ²_ML > 0. With q ≥ r they are 0 up to rounding,
    σ²_ML → 0 and the likelihood is unbounded (a degenerate Gaussian on an r-dimensional subspace),
    so such a fit is refused rather than returned with σ² ≈ 1e-17.

    Args:
        x: data ``(N, D)``, floating point.
        q: latent dimension, ``1 <= q < D`` and ``q < rank(x − x̄)`` (at most N − 1).

    Raises:
        ValueError: ``x`` is not 2-D, ``q`` is out of range, or ``q`` is not below the numerical rank
            of the centred data (``torch.linalg.matrix_rank``'s default tolerance).
    """
    check_tensor(x, "x", shape_doc="(N, D)")
    if x.dim() != 2:
        raise ValueError(f"x must be (N, D), got {tuple(x.shape)}")
    N, D = x.shape
    if not (check_positive_int(q, "q") < D):
        raise ValueError(f"q must satisfy 1 <= q < D={D}, got {q}")
    mu = x.mean(0)
    centred = x - mu
    rank = int(torch.linalg.matrix_rank(centred))
    S = centred.T @ centred / N
    lam, U = torch.linalg.eigh(S)  # ascending
    lam, U = lam.flip(0), U.flip(1)
    sigma2 = lam[q:].mean()
    if q >= rank:
        raise ValueError(
            f"q={q} must be below the rank {rank} of the centred data x − x̄ (N={N}, D={D}): the discarded "
            f"eigenvalues are 0 up to rounding, so σ²_ML = {float(sigma2):.3g} and the likelihood is "
            f"unbounded; choose q < {rank}"
        )
    W = U[:, :q] * (lam[:q] - sigma2).clamp_min(0).sqrt()
    return PPCA(W=W, mu=mu, sigma2=sigma2)
