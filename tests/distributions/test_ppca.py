"""Probabilistic PCA closed forms checked against independent computations."""

import pytest
import torch

from mathml.distributions import PPCA, ppca_maximum_likelihood


def test_ml_fit_is_a_stationary_point_of_the_exact_likelihood():
    # The closed form (Tipping & Bishop 1999, eq. 7-8) maximises the likelihood: its gradient
    # w.r.t. (W, μ, log σ²) computed by autograd through the dense Gaussian density is ~0, and
    # perturbing it lowers the likelihood.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    fit = ppca_maximum_likelihood(x, q=2)
    W = fit.W.clone().requires_grad_()
    mu = fit.mu.clone().requires_grad_()
    log_s2 = torch.log(torch.as_tensor(fit.sigma2)).clone().requires_grad_()
    ll = PPCA(W, mu, log_s2.exp()).log_prob(x).mean()
    ll.backward()
    for grad in (W.grad, mu.grad, log_s2.grad):
        assert grad.abs().max() < 1e-8
    worse = PPCA(fit.W * 1.05, fit.mu, fit.sigma2).log_prob(x).mean()
    assert worse < ll


def test_posterior_matches_bayes_rule_on_the_joint_gaussian():
    # p(z|x) from conditioning the joint Gaussian of (z, x) directly.
    g = torch.Generator().manual_seed(1)
    W = torch.randn(4, 2, generator=g, dtype=torch.float64)
    mu = torch.randn(4, generator=g, dtype=torch.float64)
    model = PPCA(W, mu, 0.3)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    C = W @ W.T + 0.3 * torch.eye(4, dtype=torch.float64)
    mean = (W.T @ torch.linalg.solve(C, (x - mu).T)).T
    cov = torch.eye(2, dtype=torch.float64) - W.T @ torch.linalg.solve(C, W)
    post = model.posterior(x)
    torch.testing.assert_close(post.mean, mean)
    torch.testing.assert_close(post.covariance_matrix[0], cov)


@pytest.mark.parametrize("N,D,rank,q", [(200, 6, 2, 2), (200, 6, 2, 3), (3, 6, 2, 2), (3, 6, 2, 4), (50, 5, 4, 4)])
def test_rank_deficient_fit_is_refused(N, D, rank, q):
    # Data on a rank-r affine subspace (or N points, rank <= N - 1): with q >= r the discarded
    # eigenvalues are 0 up to rounding and σ²_ML ≈ 1e-17; the fit must refuse, naming q and the rank.
    g = torch.Generator().manual_seed(2)
    x = torch.randn(N, rank, generator=g, dtype=torch.float64) @ torch.randn(rank, D, generator=g, dtype=torch.float64)
    x = x + torch.randn(D, generator=g, dtype=torch.float64)
    true_rank = min(rank, N - 1)
    with pytest.raises(ValueError, match=rf"q={q} must be below the rank {true_rank} of the centred data"):
        ppca_maximum_likelihood(x, q)
    # One latent dimension fewer than the rank is a proper fit with σ² well above rounding.
    fit = ppca_maximum_likelihood(x, true_rank - 1)
    assert float(fit.sigma2) > 1e-6 * float(x.var(0).sum())


def test_fit_validation():
    with pytest.raises(ValueError, match="q must satisfy"):
        ppca_maximum_likelihood(torch.randn(10, 3), 3)
    with pytest.raises(ValueError, match="q must be an int >= 1"):
        ppca_maximum_likelihood(torch.randn(10, 3), 0)
    with pytest.raises(ValueError, match=r"x must be \(N, D\)"):
        ppca_maximum_likelihood(torch.randn(10), 1)
