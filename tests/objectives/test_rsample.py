"""mathml.distributions.sampling.rsample: exact reparameterisation with an injected generator,
moments within 4 standard errors, discrete draws from uniforms, and the unsupported-type error."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import (
    Bernoulli, Categorical, Exponential, Independent, MultivariateNormal, Normal, OneHotCategorical,
)

from mathml.distributions.sampling import rsample, sample

F64 = torch.float64


def test_gaussians_are_exactly_reparameterised():
    loc = torch.tensor([[0.5, -1.0, 2.0]], dtype=F64, requires_grad=True)
    scale = torch.tensor([0.1, 2.0, 1.0], dtype=F64, requires_grad=True)
    z = rsample(Independent(Normal(loc, scale), 1), (4,), generator=torch.Generator().manual_seed(0))
    eps = torch.randn(4, 1, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z, loc + scale * eps)
    z.sum().backward()
    torch.testing.assert_close(scale.grad, eps.sum((0, 1)))

    A = torch.tensor([[1.0, 0.0], [0.5, 2.0]], dtype=F64)
    mvn = MultivariateNormal(torch.zeros(3, 2, dtype=F64), scale_tril=A)
    z = rsample(mvn, (5,), generator=torch.Generator().manual_seed(1))
    eps = torch.randn(5, 3, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(z, eps @ A.T)


def test_same_seed_same_draws_and_global_rng_untouched():
    d = Normal(torch.zeros(3), torch.ones(3))
    state = torch.get_rng_state()
    a = rsample(d, (2,), generator=torch.Generator().manual_seed(3))
    b = rsample(d, (2,), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(state, torch.get_rng_state())


def test_discrete_draws_have_the_right_frequencies():
    n = 20000
    p = torch.tensor([0.1, 0.5, 0.85], dtype=F64)
    x = sample(Bernoulli(probs=p), (n,), generator=torch.Generator().manual_seed(4))
    assert set(x.unique().tolist()) <= {0.0, 1.0}
    # Seed fixed; 4 standard errors, SE = sqrt(p(1−p)/n).
    assert ((x.mean(0) - p).abs() <= 4 * (p * (1 - p) / n).sqrt()).all()

    probs = torch.tensor([[0.2, 0.3, 0.5], [0.7, 0.0, 0.3]], dtype=F64)
    k = sample(Categorical(probs), (n,), generator=torch.Generator().manual_seed(5))
    assert k.shape == (n, 2)
    freq = torch.nn.functional.one_hot(k, 3).to(F64).mean(0)
    assert ((freq - probs).abs() <= 4 * (probs * (1 - probs) / n).sqrt() + 1e-12).all()
    assert (k[:, 1] != 1).all()  # zero-probability category never drawn
    onehot = sample(OneHotCategorical(probs), (3,), generator=torch.Generator().manual_seed(6))
    assert onehot.shape == (3, 2, 3) and torch.equal(onehot.sum(-1), torch.ones(3, 2, dtype=F64))


def test_gaussian_moments_within_standard_errors():
    n = 20000
    S = torch.tensor([[2.0, 0.6], [0.6, 0.5]], dtype=F64)
    z = rsample(MultivariateNormal(torch.tensor([1.0, -1.0], dtype=F64), S), (n,),
                generator=torch.Generator().manual_seed(7))
    # Seed fixed; 4 SE for the mean (sqrt(diag S / n)); covariance entries within 4·sqrt(2/n)·scale.
    assert ((z.mean(0) - torch.tensor([1.0, -1.0], dtype=F64)).abs() <= 4 * (S.diagonal() / n).sqrt()).all()
    cov = torch.cov(z.T)
    assert ((cov - S).abs() <= 4 * math.sqrt(2 / n) * S.diagonal().max()).all()


def test_without_generator_uses_the_distribution_itself():
    loc = torch.tensor([0.5, -1.0], requires_grad=True)
    d = Normal(loc, 2.0)
    torch.manual_seed(0)
    z = rsample(d, (3,))
    torch.manual_seed(0)
    torch.testing.assert_close(z, d.rsample((3,)))
    assert z.requires_grad
    torch.manual_seed(1)
    b = sample(Bernoulli(torch.full((4,), 0.3)), (3,))
    torch.manual_seed(1)
    assert torch.equal(b, Bernoulli(torch.full((4,), 0.3)).sample((3,)))


def test_unsupported_type_lists_supported_ones():
    with pytest.raises(TypeError, match=r"supports .*Normal.*got Exponential"):
        rsample(Exponential(1.0), (2,), generator=torch.Generator())
    with pytest.raises(TypeError, match="dist must be"):
        rsample(torch.zeros(2))


@pytest.mark.parametrize("dist", [
    Bernoulli(logits=torch.zeros(2, requires_grad=True)),
    Categorical(logits=torch.zeros(3, requires_grad=True)),
    Independent(Bernoulli(probs=torch.full((2, 3), 0.3)), 1),
])
@pytest.mark.parametrize("seed", [None, 0])
def test_no_silent_fallback_for_families_without_reparameterisation(dist, seed):
    # A draw from a discrete q carries no gradient; rsample must refuse rather than return sample().
    g = None if seed is None else torch.Generator().manual_seed(seed)
    name = type(dist.base_dist if isinstance(dist, Independent) else dist).__name__
    with pytest.raises(TypeError, match=rf"{name}.*no reparameterised sampler.*mathml.distributions.sample"):
        rsample(dist, (4,), generator=g)
    x = sample(dist, (4,), generator=g)
    assert x.shape == (4, *dist.batch_shape, *dist.event_shape) and not x.requires_grad


def test_sample_draws_the_same_values_as_rsample_without_gradient():
    loc = torch.tensor([0.5, -1.0], requires_grad=True)
    d = Normal(loc, 2.0)
    a = rsample(d, (3,), generator=torch.Generator().manual_seed(2))
    b = sample(d, (3,), generator=torch.Generator().manual_seed(2))
    assert torch.equal(a.detach(), b) and a.requires_grad and not b.requires_grad
