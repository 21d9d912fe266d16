"""Gaussian mixtures with exact densities, scores and diffused marginals: the ground truth that
samplers, score networks and likelihoods are checked against.

p(x) = Σ_k w_k N(x; μ_k, Σ_k). Under a linear SDE with transition x_t | x₀ ~ N(α_t x₀, σ_t² I)
(``mathml.sde``), the marginal at time t is again a mixture with the same weights,

    p_t(x) = Σ_k w_k N(x; α_t μ_k, α_t² Σ_k + σ_t² I)

(the convolution of Gaussians; e.g. Bishop 2006, "Pattern Recognition and Machine Learning",
eq. 2.115), and its score is the responsibility-weighted sum of the component scores,

    ∇ₓ log p_t(x) = Σ_k r_k(x) C_k⁻¹ (α_t μ_k − x),   r_k(x) ∝ w_k N(x; α_t μ_k, C_k).

With Σ_k = U_k diag(λ_k) U_kᵀ (one ``torch.linalg.eigh`` at construction), C_k = U_k diag(α_t² λ_k +
σ_t²) U_kᵀ, so densities and scores at per-sample times cost no further factorisation.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal

from mathml.checks import check_generator, check_positive_int


def _per_sample(v: torch.Tensor | float | None, x: torch.Tensor) -> torch.Tensor | None:
    if v is None:
        return None
    v = torch.as_tensor(v, dtype=x.dtype, device=x.device)
    return v.expand(x.shape[0]) if v.dim() == 0 else v


class GaussianMixture:
    """A mixture of full-covariance Gaussians in D dimensions with exact ``sample``, ``log_prob``,
    ``score`` and ``marginal(sde, t)``.

    Args:
        weights: (K,) positive mixture weights (normalised here).
        means: (K, D) component means μ_k.
        covariances: (K, D, D) symmetric positive-definite Σ_k, or (K,) variances v_k for Σ_k = v_k I.

    dtype and device follow ``means``.
    """

    def __init__(self, weights: torch.Tensor, means: torch.Tensor, covariances: torch.Tensor) -> None:
        means = torch.as_tensor(means)
        if not means.is_floating_point() or means.dim() != 2:
            raise ValueError(f"means must be a floating (K, D) tensor, got shape {tuple(means.shape)}")
        k, d = means.shape
        weights = torch.as_tensor(weights, dtype=means.dtype, device=means.device)
        covariances = torch.as_tensor(covariances, dtype=means.dtype, device=means.device)
        if weights.shape != (k,) or not bool((weights > 0).all()) or not bool(torch.isfinite(weights).all()):
            raise ValueError(f"weights must be ({k},) finite and positive, got shape {tuple(weights.shape)}")
        if covariances.shape == (k,):
            covariances = covariances[:, None, None] * torch.eye(d, dtype=means.dtype, device=means.device)
        if covariances.shape != (k, d, d):
            raise ValueError(f"covariances must be ({k}, {d}, {d}) or ({k},) variances, got {tuple(covariances.shape)}")
        if not torch.allclose(covariances, covariances.transpose(-1, -2), rtol=1e-6, atol=1e-12):
            raise ValueError("covariances must be symmetric")
        lam, u = torch.linalg.eigh(covariances)
        if not bool((lam > 0).all()):
            raise ValueError(f"covariances must be positive definite; smallest eigenvalue {lam.min().item():.3g}")
        self.weights = weights / weights.sum()
        self.means, self.covariances = means, covariances
        self._lam, self._u = lam, u  # Σ_k = U_k diag(λ_k) U_kᵀ
        self.num_components, self.dim = k, d

    # -- the mixture itself ----------------------------------------------------------------------
    def sample(self, n: int, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """n independent draws, ``(n, D)``: a component k ~ Categorical(w), then μ_k + U_k λ_k^{1/2} ε."""
        check_positive_int(n, "n")
        check_generator(generator)
        dev = self.means.device
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=self.means.dtype, device=dev)
        scaled = self._lam[k].sqrt() * eps
        return self.means[k] + torch.einsum("nij,nj->ni", self._u[k], scaled)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log p(x) in nats, ``x: (B, D)`` → ``(B,)``."""
        return self._log_prob(x, None, None)

    def score(self, x: torch.Tensor) -> torch.Tensor:
        """∇ₓ log p(x), ``x: (B, D)`` → ``(B, D)``."""
        return self._score(x, None, None)

    def as_torch(self) -> MixtureSameFamily:
        """The same mixture as a ``torch.distributions.MixtureSameFamily`` (for cross-checks)."""
        return MixtureSameFamily(Categorical(probs=self.weights), MultivariateNormal(self.means, self.covariances))

    # -- diffused by a linear SDE ----------------------------------------------------------------
    def marginal(self, sde, t: float | torch.Tensor) -> GaussianMixture:
        """The exact marginal p_t of x_t = α_t x₀ + σ_t ε, x₀ ~ this mixture, under ``sde`` at a
        scalar time ``t``: a GaussianMixture with means α_t μ_k and covariances α_t² Σ_k + σ_t² I."""
        t = torch.as_tensor(t, dtype=self.means.dtype, device=self.means.device)
        if t.dim() != 0:
            raise ValueError(f"t must be a scalar for marginal(); use log_prob_at/score_at for per-sample times, got {tuple(t.shape)}")
        alpha, sigma = sde.alpha_sigma(t)
        eye = torch.eye(self.dim, dtype=self.means.dtype, device=self.means.device)
        return GaussianMixture(self.weights, alpha * self.means, alpha**2 * self.covariances + sigma**2 * eye)

    def log_prob_at(self, x: torch.Tensor, t: torch.Tensor | float, sde) -> torch.Tensor:
        """log p_t(x) under ``sde`` at per-sample times: ``x: (B, D)``, ``t: (B,)`` or a number → ``(B,)``."""
        alpha, sigma = sde.alpha_sigma(_per_sample(t, x))
        return self._log_prob(x, alpha, sigma)

    def score_at(self, x: torch.Tensor, t: torch.Tensor | float, sde) -> torch.Tensor:
        """∇ₓ log p_t(x) under ``sde`` at per-sample times: ``x: (B, D)``, ``t: (B,)`` → ``(B, D)``."""
        alpha, sigma = sde.alpha_sigma(_per_sample(t, x))
        return self._score(x, alpha, sigma)

    def score_fn(self, sde):
        """The exact score as a callable ``score(x, t)`` in mathml's contract (for samplers)."""
        return lambda x, t: self.score_at(x, t, sde)

    # -- shared algebra ----------------------------------------------------------------------------
    def _parts(self, x: torch.Tensor, alpha: torch.Tensor | None, sigma: torch.Tensor | None):
        """Per sample b and component k: z = U_kᵀ (x − α μ_k) (B, K, D), eigenvalues c = α²λ + σ² (B, K, D)."""
        if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(getattr(x, 'shape', ()))}")
        if alpha is None:
            mu, c = self.means[None], self._lam[None]
        else:
            mu = alpha[:, None, None] * self.means[None]
            c = alpha[:, None, None] ** 2 * self._lam[None] + sigma[:, None, None] ** 2
        z = torch.einsum("kji,bkj->bki", self._u, x[:, None, :] - mu)
        return z, c

    def _log_components(self, z: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """log w_k + log N(x; mean_k, C_k), (B, K)."""
        maha = (z * z / c).sum(-1)
        logdet = torch.log(c).sum(-1)
        return torch.log(self.weights) - 0.5 * (maha + logdet + self.dim * math.log(2 * math.pi))

    def _log_prob(self, x, alpha, sigma) -> torch.Tensor:
        z, c = self._parts(x, alpha, sigma)
        return torch.logsumexp(self._log_components(z, c), dim=-1)

    def _score(self, x, alpha, sigma) -> torch.Tensor:
        z, c = self._parts(x, alpha, sigma)
        r = torch.softmax(self._log_components(z, c), dim=-1)  # responsibilities (B, K)
        # C_k⁻¹ (mean_k − x) = −U_k diag(1/c) z
        comp = -torch.einsum("kij,bkj->bki", self._u, z / c)
        return (r[..., None] * comp).sum(1)
