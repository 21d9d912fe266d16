"""GaussianMixture: densities, scores and diffused marginals against torch.distributions, autograd,
finite differences, quadrature and sample moments."""

from __future__ import annotations

import math

import pytest
import torch

from mathml.distributions import GaussianMixture
from mathml.sde import EDMSDE, VESDE, VPSDE, SubVPSDE

SDES = [VPSDE(), SubVPSDE(), VESDE(sigma_min=0.01, sigma_max=5.0), EDMSDE(sigma_max=5.0)]


def _mixture(d: int = 3, k: int = 4, seed: int = 0) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(k, d, d, generator=g, dtype=torch.float64)
    cov = a @ a.transpose(-1, -2) / d + 0.05 * torch.eye(d, dtype=torch.float64)
    weights = torch.rand(k, generator=g, dtype=torch.float64) + 0.2
    return GaussianMixture(weights, 2.0 * torch.randn(k, d, generator=g, dtype=torch.float64), cov)


def test_log_prob_matches_torch_mixture():
    gm = _mixture()
    x = torch.randn(50, 3, dtype=torch.float64) * 2
    torch.testing.assert_close(gm.log_prob(x), gm.as_torch().log_prob(x), rtol=1e-12, atol=1e-12)


def test_isotropic_variances_shorthand():
    gm = GaussianMixture(torch.ones(2), torch.tensor([[0.0, 0.0], [1.0, 2.0]]), torch.tensor([0.5, 2.0]))
    torch.testing.assert_close(gm.covariances[1], 2.0 * torch.eye(2))


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("t_frac", [0.0, 0.1, 0.7])
def test_diffused_score_equals_autograd_and_finite_differences(sde, t_frac):
    gm = _mixture()
    x = torch.randn(20, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 2
    t = torch.full((20,), t_frac * sde.T, dtype=torch.float64)
    xr = x.clone().requires_grad_()
    autograd, = torch.autograd.grad(gm.log_prob_at(xr, t, sde).sum(), xr)
    score = gm.score_at(x, t, sde)
    torch.testing.assert_close(score, autograd, rtol=1e-10, atol=1e-10)
    # Central differences: error O(h²) ~ 1e-10 at h = 1e-5 with float64 rounding ~ 1e-11 / h.
    h = 1e-5
    eye = torch.eye(3, dtype=torch.float64)
    fd = torch.stack([(gm.log_prob_at(x + h * e, t, sde) - gm.log_prob_at(x - h * e, t, sde)) / (2 * h) for e in eye], 1)
    torch.testing.assert_close(score, fd, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_marginal_at_scalar_time_equals_per_sample_form(sde):
    gm = _mixture()
    x = torch.randn(10, 3, dtype=torch.float64)
    t = 0.37 * sde.T
    m = gm.marginal(sde, t)
    tt = torch.full((10,), t, dtype=torch.float64)
    torch.testing.assert_close(m.log_prob(x), gm.log_prob_at(x, tt, sde))
    torch.testing.assert_close(m.score(x), gm.score_at(x, tt, sde))
    torch.testing.assert_close(gm.score_fn(sde)(x, tt), gm.score_at(x, tt, sde))


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_marginal_is_the_convolution_by_quadrature(sde):
    """In 1-D, p_t(x) = ∫ p₀(x₀) N(x; α_t x₀, σ_t²) dx₀, evaluated by the trapezoid rule on a fine grid."""
    gm = GaussianMixture(torch.tensor([0.3, 0.7], dtype=torch.float64),
                         torch.tensor([[-1.0], [2.0]], dtype=torch.float64),
                         torch.tensor([0.2**2, 0.5**2], dtype=torch.float64))
    t = torch.tensor(0.2 * sde.T, dtype=torch.float64)
    alpha, sigma = sde.alpha_sigma(t)
    x0 = torch.linspace(-6, 8, 40_001, dtype=torch.float64)
    p0 = gm.log_prob(x0[:, None]).exp()
    x = torch.tensor([-1.5, 0.0, 1.0, 2.5], dtype=torch.float64)
    kern = torch.exp(-0.5 * ((x[:, None] - alpha * x0[None]) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    quad = torch.trapezoid(p0[None] * kern, x0, dim=1)
    torch.testing.assert_close(gm.marginal(sde, t).log_prob(x[:, None]).exp(), quad, rtol=1e-7, atol=1e-10)


def test_sample_moments_match_within_standard_error():
    """Mean and covariance of 200,000 draws vs the mixture's exact moments
    (E x = Σ w μ, Cov x = Σ w (Σ_k + μ_k μ_kᵀ) − E x E xᵀ); tolerance 5 SE per entry, with the SE of
    a mean from the exact variance and of a covariance entry from √((Σ_ii Σ_jj + Σ_ij²)/n) (Gaussian
    approximation; the mixture's heavier fourth moments are covered by the factor 5)."""
    gm = _mixture()
    n = 200_000
    x = gm.sample(n, generator=torch.Generator().manual_seed(2))
    w = gm.weights
    mean = (w[:, None] * gm.means).sum(0)
    second = (w[:, None, None] * (gm.covariances + gm.means[:, :, None] * gm.means[:, None, :])).sum(0)
    cov = second - mean[:, None] * mean[None]
    se_mean = (cov.diagonal() / n).sqrt()
    assert ((x.mean(0) - mean).abs() < 5 * se_mean).all()
    emp = torch.cov(x.T)
    se_cov = ((cov.diagonal()[:, None] * cov.diagonal()[None] + cov**2) / n).sqrt()
    assert ((emp - cov).abs() < 5 * se_cov).all()


def test_sampling_is_reproducible_from_the_generator():
    gm = _mixture()
    a = gm.sample(7, generator=torch.Generator().manual_seed(5))
    b = gm.sample(7, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b) and a.shape == (7, 3)


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="positive definite"):
        GaussianMixture(torch.ones(1), torch.zeros(1, 2), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture(torch.tensor([1.0, -1.0]), torch.zeros(2, 2), torch.ones(2))
    with pytest.raises(ValueError, match="covariances must be"):
        GaussianMixture(torch.ones(2), torch.zeros(2, 2), torch.ones(3))
    gm = _mixture()
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3\)"):
        gm.log_prob(torch.zeros(4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="n must be an int >= 1"):
        gm.sample(0)
    with pytest.raises(ValueError, match="scalar"):
        gm.marginal(VPSDE(), torch.ones(3))
