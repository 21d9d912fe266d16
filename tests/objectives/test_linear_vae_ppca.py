"""A linear VAE trained with our ELBO reaches the probabilistic-PCA maximum likelihood on digits.

Lucas et al. (2019, "Don't Blame the ELBO!", §4): with an affine decoder p(x|z) = N(Wz + b, σ²I),
an affine encoder mean and an x-independent diagonal encoder variance, the global optimum of the
ELBO is the PPCA maximum-likelihood solution (Tipping & Bishop 1999, eq. 7-8):

    μ_ML = x̄,  σ²_ML = mean of the D − q discarded eigenvalues of S,  W_ML = U_q (Λ_q − σ²_ML I)^{1/2}.

We compare exact marginal log-likelihoods, log N(x; b, WWᵀ + σ²I), of the trained model and of the
closed-form optimum, both via Cholesky factors.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Independent, Normal

from mathml.layers import GaussianLikelihood
from mathml.objectives import ELBO

F64 = torch.float64
LATENT = 8


def _mean_log_likelihood(x, W, b, sigma2):
    """(1/N) Σ_n log N(x_n; b, WWᵀ + σ²I) via the Cholesky factor of the covariance."""
    D = x.shape[1]
    L = torch.linalg.cholesky(W @ W.T + sigma2 * torch.eye(D, dtype=F64))
    white = torch.linalg.solve_triangular(L, (x - b).T, upper=False)
    return (-0.5 * (D * math.log(2 * math.pi) + white.pow(2).sum(0)) - L.diagonal().log().sum()).mean()


def _ppca_maximum(x, q):
    """T&B eq. 7-8 from the eigendecomposition of the 1/N sample covariance."""
    mu = x.mean(0)
    lam, U = torch.linalg.eigh((x - mu).T @ (x - mu) / x.shape[0])
    lam, U = lam.flip(0), U.flip(1)
    sigma2 = lam[q:].mean()
    W = U[:, :q] * (lam[:q] - sigma2).sqrt()
    return _mean_log_likelihood(x, W, mu, sigma2)


@pytest.mark.slow
def test_linear_vae_reaches_the_ppca_maximum_likelihood():
    from sklearn.datasets import load_digits

    # All 1797 images of scikit-learn's digits, scaled to [0, 1] (pixel values / 16).
    x = torch.as_tensor(load_digits().images.reshape(-1, 64) / 16.0, dtype=F64)
    N, D = x.shape
    torch.manual_seed(0)  # nn.Linear's default initialisation
    encoder = nn.Linear(D, LATENT).to(F64)
    raw_scale = nn.Parameter(torch.zeros(LATENT, dtype=F64))  # x-independent q(z|x) scale
    decoder_net = nn.Linear(LATENT, D).to(F64)
    likelihood = GaussianLikelihood(scale=0.5, learn_scale=True).to(F64)
    prior = Independent(Normal(torch.zeros(LATENT, dtype=F64), torch.ones(LATENT, dtype=F64)), 1)

    def decoder(z):  # z: (S, N, q) -> p(x|z) with batch (S, N), event (D,)
        return likelihood(decoder_net(z).unsqueeze(-2), torch.Size([D]))

    objective = ELBO(samples=2)
    parameters = [*encoder.parameters(), raw_scale, *decoder_net.parameters(), *likelihood.parameters()]
    # Full-batch L-BFGS on a sample-average ELBO: every evaluation reuses the same noise ε (a
    # common-random-numbers objective), so the line search sees a deterministic function. Its
    # optimum differs from the expected ELBO's by O(1/(S·N)) per image; measured gap ~0.003-0.005.
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=600, history_size=50,
                                  line_search_fn="strong_wolfe", tolerance_grad=1e-12, tolerance_change=1e-15)

    def closure():
        optimizer.zero_grad()
        q_z = Independent(Normal(encoder(x), (nn.functional.softplus(raw_scale) + 1e-4).expand(N, LATENT)), 1)
        loss = objective(x, q_z, decoder, prior, generator=torch.Generator().manual_seed(1))["loss"].mean()
        loss.backward()
        return loss

    optimizer.step(closure)

    with torch.no_grad():
        trained = _mean_log_likelihood(x, decoder_net.weight, decoder_net.bias, likelihood.sigma**2)
        optimum = _ppca_maximum(x, LATENT)
    gap = (optimum - trained).item()
    print(f"linear VAE vs PPCA maximum: gap {gap:.5f} nats per image (optimum {optimum.item():.4f})")
    assert gap > -1e-9  # nothing beats the maximum likelihood
    assert gap < 0.01
