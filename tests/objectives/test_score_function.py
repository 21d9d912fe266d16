"""Gradients with discrete latents: refused by default, and the score-function (REINFORCE) estimator
with a leave-one-out baseline against the exact gradient of a small Bernoulli-latent model, computed by
enumerating all 2³ latent configurations with autograd in float64."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal

from mathml.objectives import ELBO, IWAE, kl_divergence, score_function_surrogate

F64 = torch.float64
R = 20000  # independent repeats of the estimator, run side by side as a batch
X = torch.tensor([0.7, -1.2], dtype=F64)
PHI = torch.tensor([0.4, -1.1, 0.3], dtype=F64)  # logits of q(z|x), z ∈ {0, 1}³
ETA = torch.tensor([-0.3, 0.2, 0.5], dtype=F64)  # logits of the prior p(z)
W0 = torch.tensor([[1.0, -0.5, 0.8], [0.3, 1.2, -0.7]], dtype=F64)  # decoder p(x|z) = N(W z + c, σ²)
C, SIGMA = torch.tensor([0.1, -0.2], dtype=F64), 0.8


def _prior():
    return Independent(Bernoulli(logits=ETA), 1)


def _exact_gradients() -> tuple[torch.Tensor, torch.Tensor]:
    """∇_φ and ∇_W of ELBO = Σ_z q(z) log p(x|z) − KL(q ‖ p), enumerating the 8 configurations."""
    phi, W = PHI.clone().requires_grad_(), W0.clone().requires_grad_()
    z = torch.tensor(list(itertools.product([0.0, 1.0], repeat=3)), dtype=F64)  # (8, 3)
    q = Independent(Bernoulli(logits=phi), 1)
    log_lik = Independent(Normal(z @ W.T + C, SIGMA), 1).log_prob(X)  # (8,)
    elbo = (q.log_prob(z).exp() * log_lik).sum() - kl_divergence(q, _prior())
    return torch.autograd.grad(elbo, (phi, W))



def _repeated_model():
    """Parameters copied R times (one row per repeat), so one backward gives R independent gradients."""
    phi = PHI.expand(R, 3).clone().requires_grad_()
    W = W0.expand(R, 2, 3).clone().requires_grad_()
    q = Independent(Bernoulli(logits=phi), 1)
    decoder = lambda z: Independent(Normal(torch.einsum("rdj,srj->srd", W, z) + C, SIGMA), 1)  # noqa: E731
    return X.expand(R, 2), q, decoder, phi, W


def _assert_within_se(estimates: torch.Tensor, exact: torch.Tensor, *, powered: bool = True) -> None:
    """Mean of R independent estimates within 4 standard errors of the exact value, per component
    (seed fixed; SE = sample std / √R of the very estimates). ``powered``: also the SE small enough
    for the test to tell the exact gradient from 0 (the silent zero gradient of the issue)."""
    mean, se = estimates.mean(0), estimates.std(0) / math.sqrt(estimates.shape[0])
    assert ((mean - exact).abs() <= 4 * se).all(), (mean, exact, se)
    if powered:
        assert (exact.abs() > 10 * se).all(), (exact, se)


@pytest.mark.parametrize("analytic_kl", [True, False])
def test_score_function_elbo_gradient_matches_exact_enumeration(analytic_kl):
    exact_phi, exact_W = _exact_gradients()
    x, q, decoder, phi, W = _repeated_model()
    elbo = ELBO(estimator="score_function", samples=4, analytic_kl=analytic_kl, kl_samples=4)
    terms = elbo(x, q, decoder, _prior(), generator=torch.Generator().manual_seed(0))
    terms["elbo"].sum().backward()
    _assert_within_se(phi.grad, exact_phi)
    _assert_within_se(W.grad.reshape(R, -1), exact_W.reshape(-1), powered=False)  # needs no score term


def test_score_function_elbo_value_is_the_plain_monte_carlo_mean():
    decoder = lambda z: Independent(Normal(z @ W0.T + C, SIGMA), 1)  # noqa: E731
    q = Independent(Bernoulli(logits=PHI.expand(5, 3)), 1)
    terms = ELBO(estimator="score_function", samples=3)(X.expand(5, 2), q, decoder, _prior(),
                                                          generator=torch.Generator().manual_seed(1))
    # The same seed reproduces the inverse-CDF draws z = [u < σ(φ)].
    z = (torch.rand(3, 5, 3, dtype=F64, generator=torch.Generator().manual_seed(1)) < torch.sigmoid(PHI)).to(F64)
    torch.testing.assert_close(terms["reconstruction"], decoder(z).log_prob(X).mean(0))
    torch.testing.assert_close(terms["kl"], kl_divergence(q, _prior()))


def test_monte_carlo_kl_gradient_of_a_bernoulli_q_is_unbiased():
    # The case: KL(q ‖ p) by Monte Carlo with Bernoulli q had the logit gradient
    # (−0.0012, 0.0003) against the exact (−0.134, 0.076); now the score-function path is unbiased.
    logits_q, logits_p = torch.tensor([0.3, -0.6], dtype=F64), torch.tensor([0.9, -1.0], dtype=F64)
    phi = logits_q.requires_grad_()
    exact = torch.autograd.grad(kl_divergence(Bernoulli(logits=phi), Bernoulli(logits=logits_p)).sum(), phi)[0]
    phi_r = logits_q.detach().expand(R, 2).clone().requires_grad_()
    for samples in (1, 4):  # plain REINFORCE, and with the leave-one-out baseline
        phi_r.grad = None
        kl = kl_divergence(Bernoulli(logits=phi_r), Bernoulli(logits=logits_p), samples=samples,
                           generator=torch.Generator().manual_seed(2 + samples))
        kl.sum().backward()
        _assert_within_se(phi_r.grad, exact)


def test_leave_one_out_baseline_reduces_variance_and_keeps_the_mean():
    # f(z) = 10 + z under q = Bernoulli(σ(φ)): ∇_φ E[f] = σ(φ)(1 − σ(φ)); the offset 10 only adds
    # variance to plain REINFORCE, which the baseline removes.
    phi = torch.full((R,), 0.5, dtype=F64, requires_grad=True)
    z = torch.rand(4, R, dtype=F64, generator=torch.Generator().manual_seed(5)) < torch.sigmoid(phi.detach())
    z = z.to(F64)
    log_q = Bernoulli(logits=phi).log_prob(z)
    grads = {b: torch.autograd.grad(score_function_surrogate(10 + z, log_q, baseline=b).sum(), phi,
                                    retain_graph=True)[0] for b in ("leave_one_out", "none")}
    s = torch.sigmoid(torch.tensor(0.5, dtype=F64))
    for g in grads.values():
        _assert_within_se(g[:, None], (s * (1 - s)).reshape(1))
    assert grads["leave_one_out"].var() < 0.05 * grads["none"].var()
    torch.testing.assert_close(score_function_surrogate(10 + z, log_q), (10 + z).mean(0))


def test_reparameterised_objectives_refuse_discrete_latents_by_name():
    x, q, decoder, _, _ = _repeated_model()
    for objective in (ELBO(), IWAE(3)):
        with pytest.raises(TypeError, match=r"Independent\(Bernoulli, 1\) has no reparameterised sampler"):
            objective(x, q, decoder, _prior())


def test_validation():
    with pytest.raises(ValueError, match="samples must be >= 2 with estimator='score_function'"):
        ELBO(estimator="score_function")
    with pytest.raises(ValueError, match="estimator must be one of"):
        ELBO(estimator="reinforce")
    f = torch.zeros(1, 3)
    with pytest.raises(ValueError, match="S >= 2"):
        score_function_surrogate(f, f)
    with pytest.raises(ValueError, match="same shape"):
        score_function_surrogate(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="baseline must be one of"):
        score_function_surrogate(torch.zeros(2, 3), torch.zeros(2, 3), baseline="mean")
