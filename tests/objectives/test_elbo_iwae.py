"""ELBO and IWAE modules: β, free bits, analytic vs sampled KL, shapes, per-point log-sum-exp and
input validation."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Independent, MultivariateNormal, Normal, StudentT

from mathml.distributions.sampling import rsample
from mathml.objectives import ELBO, IWAE, importance_sampled_log_likelihood, kl_divergence_per_dim

F64 = torch.float64
B, d, D = 8, 3, 5


def _setup(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, D, dtype=F64, generator=g)
    W = torch.randn(D, d, dtype=F64, generator=g)
    mu = torch.randn(B, d, dtype=F64, generator=g).requires_grad_()
    sigma = (torch.rand(B, d, dtype=F64, generator=g) + 0.2).requires_grad_()
    q = Independent(Normal(mu, sigma), 1)
    decoder = lambda z: Independent(Normal(z @ W.T, 1.0), 1)  # noqa: E731
    prior = Independent(Normal(torch.zeros(d, dtype=F64), torch.ones(d, dtype=F64)), 1)
    return x, q, decoder, prior, (mu, sigma)


def test_terms_shapes_and_identities():
    x, q, decoder, prior, _ = _setup()
    terms = ELBO(beta=0.3)(x, q, decoder, prior, generator=torch.Generator().manual_seed(1))
    assert set(terms) == {"loss", "elbo", "reconstruction", "kl"}
    assert all(v.shape == (B,) for v in terms.values())
    torch.testing.assert_close(terms["elbo"], terms["reconstruction"] - terms["kl"])
    torch.testing.assert_close(terms["loss"], -(terms["reconstruction"] - 0.3 * terms["kl"]))
    # Per-call beta overrides the constructor's (KL warm-up).
    again = ELBO(beta=0.3)(x, q, decoder, prior, beta=0.0, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(again["loss"], -terms["reconstruction"])
    # The same generator seed gives the same draws.
    torch.testing.assert_close(again["reconstruction"], terms["reconstruction"])


def test_sampled_kl_is_used_without_a_closed_form_or_when_asked():
    x, q, decoder, _, _ = _setup()
    heavy = Independent(StudentT(4.0, torch.zeros(d, dtype=F64), torch.ones(d, dtype=F64)), 1)
    g = torch.Generator().manual_seed(2)
    terms = ELBO(kl_samples=3)(x, q, decoder, heavy, generator=g)
    assert torch.isfinite(terms["kl"]).all()
    _, _, _, prior, _ = _setup()
    S = 20000
    sampled = ELBO(analytic_kl=False, kl_samples=S)(x, q, decoder, prior, generator=torch.Generator().manual_seed(3))
    analytic = ELBO()(x, q, decoder, prior, generator=torch.Generator().manual_seed(3))
    # Seed fixed; SE of the sampled KL from the per-draw std of log q − log p, 4 SE allowed.
    z = rsample(q, (S,), generator=torch.Generator().manual_seed(4))
    se = (q.log_prob(z) - prior.log_prob(z)).std(0) / math.sqrt(S)
    assert ((sampled["kl"] - analytic["kl"]).abs() <= 4 * se).all()


def test_free_bits_objective_matches_kingma_2016():
    """Batch mean of the loss's KL term = Σ_j max(λ, mean_i KL_ij), with the same gradient."""
    x, q, decoder, prior, (mu, sigma) = _setup()
    kl_ij = kl_divergence_per_dim(q, prior).detach()
    lam = float(kl_ij.mean(0).sort().values[:2].mean())  # one dimension below the floor, two above
    m_j = kl_ij.mean(0)
    assert (m_j > lam).any() and (m_j < lam).any()

    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    terms = ELBO(free_bits=lam)(x, q, decoder, prior, generator=g())
    kl_term = terms["reconstruction"] + terms["loss"]  # loss = −(reconstruction − kl_term), β = 1
    torch.testing.assert_close(kl_term.mean(), torch.clamp(m_j, min=lam).sum())
    torch.testing.assert_close(terms["kl"], kl_ij.sum(-1))  # reported KL is the true one
    torch.testing.assert_close(terms["elbo"], terms["reconstruction"] - terms["kl"])

    grads = torch.autograd.grad(terms["loss"].mean(), (mu, sigma))
    x2, q2, decoder2, prior2, (mu2, sigma2) = _setup()
    z = rsample(q2, (1,), generator=g())
    reference = -decoder2(z).log_prob(x2).mean() + kl_divergence_per_dim(q2, prior2).mean(0).clamp(min=lam).sum()
    for a, b in zip(grads, torch.autograd.grad(reference, (mu2, sigma2))):
        torch.testing.assert_close(a, b)


def test_free_bits_needs_factorised_distributions():
    x, q, decoder, _, _ = _setup()
    full = MultivariateNormal(torch.zeros(d, dtype=F64), torch.eye(d, dtype=F64))
    with pytest.raises(ValueError, match=r"free_bits=0.5 > 0.*factorised p"):
        ELBO(free_bits=0.5)(x, q, decoder, full)


@pytest.mark.parametrize("kwargs,name", [({"beta": -1.0}, "beta"), ({"free_bits": -0.1}, "free_bits"),
                                         ({"kl_samples": 0}, "kl_samples"), ({"samples": 0}, "samples")])
def test_elbo_constructor_validation(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ELBO(**kwargs)


def test_forward_validation_names_the_argument():
    x, q, decoder, prior, _ = _setup()
    with pytest.raises(ValueError, match="beta"):
        ELBO()(x, q, decoder, prior, beta=-0.5)
    with pytest.raises(ValueError, match="q_z must have batch_shape"):
        ELBO()(x[:3], q, decoder, prior)
    with pytest.raises(TypeError, match="prior must be"):
        IWAE(2)(x, q, decoder, torch.zeros(d))
    wrong = lambda z: Normal(z @ torch.ones(d, D, dtype=F64), 1.0)  # noqa: E731  (no Independent)
    with pytest.raises(ValueError, match="decoder"):
        ELBO()(x, q, wrong, prior)
    with pytest.raises(ValueError, match="k must be"):
        IWAE(0)
    with pytest.raises(ValueError, match="chunk must be"):
        importance_sampled_log_likelihood(x, q, decoder, prior, k=10, chunk=0)


def test_iwae_is_a_per_point_logsumexp_of_the_log_weights():
    x, q, decoder, prior, _ = _setup()
    k = 6
    out = IWAE(k)(x, q, decoder, prior, generator=torch.Generator().manual_seed(6))
    z = rsample(q, (k,), generator=torch.Generator().manual_seed(6))
    log_w = decoder(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)  # (k, B)
    expected = torch.log(torch.exp(log_w).mean(0))  # small values: the naive form is safe here
    torch.testing.assert_close(out["iwae"], expected)
    torch.testing.assert_close(out["loss"], -expected)


def test_iwae_k1_equals_the_joint_single_sample_elbo_estimate():
    x, q, decoder, prior, _ = _setup()
    g = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    iwae = IWAE(1)(x, q, decoder, prior, generator=g())["iwae"]
    z = rsample(q, (1,), generator=g())
    torch.testing.assert_close(iwae, (decoder(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z))[0])


def test_importance_sampled_log_likelihood_is_stable_for_huge_log_weights():
    x, q, decoder, prior, _ = _setup()
    far = lambda z: Independent(Normal(z @ torch.ones(d, D, dtype=F64) + 300.0, 1.0), 1)  # noqa: E731
    est = importance_sampled_log_likelihood(x, q, far, prior, k=250, chunk=100,
                                            generator=torch.Generator().manual_seed(8))
    assert est.shape == (B,) and torch.isfinite(est).all() and (est < -1e4).all()


def test_importance_sampled_standard_error_is_the_delta_method_on_the_same_weights():
    # One chunk and the same seed reproduce the k draws; the SE must equal s_w / (sqrt(k) w̄) written
    # directly on those weights (s_w the unbiased std), the delta method of the module docstring.
    x, q, decoder, prior, _ = _setup()
    k = 40
    log_px, se = importance_sampled_log_likelihood(x, q, decoder, prior, k=k, chunk=k, return_stderr=True,
                                                   generator=torch.Generator().manual_seed(9))
    z = rsample(q, (k,), generator=torch.Generator().manual_seed(9))
    w = (decoder(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)).exp()
    torch.testing.assert_close(log_px, w.mean(0).log())
    torch.testing.assert_close(se, w.std(0) / (math.sqrt(k) * w.mean(0)))
    # Chunking changes only how the sums are accumulated: the same formula on the chunk-wise draws.
    log_px_c, se_c = importance_sampled_log_likelihood(x, q, decoder, prior, k=k, chunk=7, return_stderr=True,
                                                       generator=torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)
    z = torch.cat([rsample(q, (min(7, k - s),), generator=g) for s in range(0, k, 7)])
    w = (decoder(z).log_prob(x) + prior.log_prob(z) - q.log_prob(z)).exp()
    torch.testing.assert_close(log_px_c, w.mean(0).log())
    torch.testing.assert_close(se_c, w.std(0) / (math.sqrt(k) * w.mean(0)))
    with pytest.raises(ValueError, match="k must be >= 2 for a standard error"):
        importance_sampled_log_likelihood(x, q, decoder, prior, k=1, return_stderr=True)
