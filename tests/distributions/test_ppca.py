"""Probabilistic PCA closed forms checked against independent computations."""

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
