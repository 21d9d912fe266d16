"""ELBO and IWAE on the linear-Gaussian model (probabilistic PCA, Tipping & Bishop 1999), whose
log p(x) and posterior are exact:

    p(z) = N(0, I), p(x|z) = N(Wz + μ, σ²I)  =>  p(x) = N(μ, WWᵀ + σ²I)            (T&B eq. 4)
    p(z|x) = N(M⁻¹Wᵀ(x − μ), σ²M⁻¹),  M = WᵀW + σ²I                                (T&B eq. 6-7)

Everything is float64; statistical checks fix their seeds and allow 4 standard errors.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal

from mathml.distributions.sampling import rsample
from mathml.objectives import ELBO, IWAE, importance_sampled_log_likelihood, kl_divergence

F64 = torch.float64
D, Q, B = 6, 2, 5


@pytest.fixture(scope="module")
def model():
    g = torch.Generator().manual_seed(0)
    W = torch.randn(D, Q, dtype=F64, generator=g)
    mu = torch.randn(D, dtype=F64, generator=g)
    sigma = 0.7
    z = torch.randn(B, Q, dtype=F64, generator=g)
    x = z @ W.T + mu + sigma * torch.randn(B, D, dtype=F64, generator=g)
    return W, mu, sigma, x


def _log_evidence(W, mu, sigma, x):
    """log N(x; μ, C), C = WWᵀ + σ²I, through its Cholesky factor."""
    L = torch.linalg.cholesky(W @ W.T + sigma**2 * torch.eye(D, dtype=F64))
    white = torch.linalg.solve_triangular(L, (x - mu).T, upper=False)
    return -0.5 * (D * math.log(2 * math.pi) + white.pow(2).sum(0)) - L.diagonal().log().sum()


def _posterior(W, mu, sigma, x):
    M = W.T @ W + sigma**2 * torch.eye(Q, dtype=F64)
    mean = torch.linalg.solve(M, W.T @ (x - mu).T).T
    return MultivariateNormal(mean, covariance_matrix=sigma**2 * torch.linalg.inv(M))


def _expected_reconstruction(W, mu, sigma, x, m, S):
    """E_{N(z; m, S)}[log N(x; Wz + μ, σ²I)] = −D/2 log 2πσ² − (‖x − Wm − μ‖² + tr(WSWᵀ)) / 2σ²."""
    r = x - m @ W.T - mu
    trace = (W @ S @ W.T).diagonal(dim1=-2, dim2=-1).sum(-1)
    return -0.5 * D * math.log(2 * math.pi * sigma**2) - (r.pow(2).sum(-1) + trace) / (2 * sigma**2)


def _parts(W, mu, sigma):
    prior = Independent(Normal(torch.zeros(Q, dtype=F64), torch.ones(Q, dtype=F64)), 1)
    decoder = lambda z: Independent(Normal(z @ W.T + mu, sigma), 1)  # noqa: E731
    return decoder, prior


def _arbitrary_q(W, mu, sigma, x, shift=1.0, inflate=1.5):
    """A factorised q, ``shift`` posterior standard deviations off and ``inflate`` times as wide."""
    post = _posterior(W, mu, sigma, x)
    std = post.variance.sqrt()
    return Independent(Normal(post.mean + shift * std, inflate * std), 1)


def test_bounds_are_exact_at_the_true_posterior(model):
    W, mu, sigma, x = model
    decoder, prior = _parts(W, mu, sigma)
    log_px, post = _log_evidence(W, mu, sigma, x), _posterior(W, mu, sigma, x)
    # log p(x|z) + log p(z) − log q(z|x) = log p(x) for every z: zero variance, any k, any seed.
    for seed, k in [(0, 1), (1, 1), (2, 7)]:
        iwae = IWAE(k)(x, post, decoder, prior, generator=torch.Generator().manual_seed(seed))["iwae"]
        torch.testing.assert_close(iwae, log_px, rtol=1e-12, atol=1e-10)
    # With the analytic KL (our MultivariateNormal -> Independent(Normal) registration) and the
    # exact expected reconstruction, the ELBO is log p(x) to rounding.
    kl = ELBO()(x, post, decoder, prior, generator=torch.Generator().manual_seed(0))["kl"]
    recon = _expected_reconstruction(W, mu, sigma, x, post.mean, post.covariance_matrix)
    torch.testing.assert_close(recon - kl, log_px, rtol=1e-12, atol=1e-10)


def test_elbo_gap_equals_kl_to_the_posterior(model):
    W, mu, sigma, x = model
    decoder, prior = _parts(W, mu, sigma)
    log_px, post = _log_evidence(W, mu, sigma, x), _posterior(W, mu, sigma, x)
    q = _arbitrary_q(W, mu, sigma, x)
    gap = kl_divergence(q, post)  # our Independent(Normal) -> MultivariateNormal closed form
    assert (gap > 0.1).all()
    exact_elbo = _expected_reconstruction(W, mu, sigma, x, q.mean, torch.diag_embed(q.variance)) - kl_divergence(q, prior)
    torch.testing.assert_close(log_px - exact_elbo, gap, rtol=1e-10, atol=1e-10)

    S = 4000
    terms = ELBO(samples=S)(x, q, decoder, prior, generator=torch.Generator().manual_seed(1))
    assert (terms["elbo"] <= log_px).all()
    # Seed fixed; SE of the S-sample reconstruction mean = per-draw std / sqrt(S), from the same draws.
    z = rsample(q, (S,), generator=torch.Generator().manual_seed(1))
    se = decoder(z).log_prob(x).std(0) / math.sqrt(S)
    assert ((log_px - terms["elbo"] - gap).abs() <= 4 * se).all()


def test_iwae_is_non_decreasing_in_k_and_approaches_log_evidence(model):
    W, mu, sigma, x = model
    decoder, prior = _parts(W, mu, sigma)
    log_px = _log_evidence(W, mu, sigma, x)
    q = _arbitrary_q(W, mu, sigma, x, shift=1.5, inflate=1.3)
    R = 400  # independent replicates of L_k per data point
    means, ses = [], []
    g = torch.Generator().manual_seed(2)
    ks = [1, 2, 5, 20, 100]
    for k in ks:
        reps = torch.stack([IWAE(k)(x, q, decoder, prior, generator=g)["iwae"] for _ in range(R)])
        means.append(reps.mean(0))
        ses.append(reps.std(0) / math.sqrt(R))
    # Seed fixed; the replicates are independent across k, so SE(diff) = sqrt(SE_a² + SE_b²).
    for a in range(len(ks) - 1):
        assert (means[a + 1] - means[a] >= -4 * (ses[a] ** 2 + ses[a + 1] ** 2).sqrt()).all()
    assert (means[-1] <= log_px + 4 * ses[-1]).all()
    gap_1, gap_100 = log_px - means[0], log_px - means[-1]
    assert (gap_1 > 0.5).all() and (gap_100 < 0.1 * gap_1).all()


def test_importance_sampled_log_likelihood_recovers_log_evidence(model):
    W, mu, sigma, x = model
    decoder, prior = _parts(W, mu, sigma)
    log_px = _log_evidence(W, mu, sigma, x)
    q = _arbitrary_q(W, mu, sigma, x, shift=0.3, inflate=1.3)
    k = 1000
    estimate = importance_sampled_log_likelihood(x, q, decoder, prior, k=k, chunk=128,
                                                 generator=torch.Generator().manual_seed(3))
    # Seed fixed; SE of log((1/k) Σ w) by the delta method, std(w) / (sqrt(k) mean(w)), from an
    # independent set of k weights (the bias, O(SE²), is far smaller than 4 SE here).
    z = rsample(q, (k,), generator=torch.Generator().manual_seed(4))
    log_w = decoder(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)
    w = (log_w - log_w.max(0).values).exp()
    se = w.std(0) / (math.sqrt(k) * w.mean(0))
    assert ((estimate - log_px).abs() <= 4 * se).all()
    assert not estimate.requires_grad


def test_importance_sampled_standard_error_matches_the_spread_over_repeats(model):
    # The delta-method SE (Casella & Berger 2002, Thm 5.5.24) against the empirical std of the estimate
    # over R independent repeats of each data point. Seed fixed; the empirical std of R near-Gaussian
    # estimates has relative SE 1/sqrt(2R), so the ratio may differ from 1 by 4/sqrt(2R) (≈ 9% here);
    # the delta method's own error is O(1/k) (k = 200).
    W, mu, sigma, x = model
    decoder, prior = _parts(W, mu, sigma)
    R, k = 1000, 200
    xr = x.repeat(R, 1)
    q = _arbitrary_q(W, mu, sigma, xr, shift=1.0, inflate=1.5)
    est, se = importance_sampled_log_likelihood(xr, q, decoder, prior, k=k, chunk=64, return_stderr=True,
                                                generator=torch.Generator().manual_seed(1))
    est, se = est.reshape(R, B), se.reshape(R, B)
    ratio = se.mean(0) / est.std(0)
    assert ((ratio - 1).abs() <= 4 / math.sqrt(2 * R)).all(), ratio
    # And the estimate is within 4 of its reported SEs of log p(x), averaged over the repeats.
    assert ((est.mean(0) - _log_evidence(W, mu, sigma, x)).abs() <= 4 * se.mean(0) / math.sqrt(R) + 0.01).all()
