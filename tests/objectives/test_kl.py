"""KL divergence against closed forms written here with torch.linalg, Monte Carlo within 4 standard
errors, and the properties KL >= 0, KL(p||p) = 0."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.distributions import Bernoulli, Categorical, Independent, MultivariateNormal, Normal, StudentT

from mathml.distributions.sampling import sample
from mathml.objectives import closed_form_kl, kl_divergence, kl_divergence_per_dim

F64 = torch.float64


def _gaussian_kl(m0, S0, m1, S1):
    """KL(N(m0, S0) || N(m1, S1)) = ½[tr(S1⁻¹S0) + Δᵀ S1⁻¹ Δ − d + ln|S1| − ln|S0|] (Matrix Cookbook eq. 380)."""
    d = m0.shape[-1]
    delta = (m1 - m0).unsqueeze(-1)
    trace = torch.linalg.solve(S1, S0).diagonal(dim1=-2, dim2=-1).sum(-1)
    maha = (delta.mT @ torch.linalg.solve(S1, delta)).squeeze(-1).squeeze(-1)
    return 0.5 * (trace + maha - d + torch.linalg.slogdet(S1)[1] - torch.linalg.slogdet(S0)[1])


def _spd(B, d, g):
    A = torch.randn(B, d, d, dtype=F64, generator=g)
    return A @ A.mT + 0.5 * torch.eye(d, dtype=F64)


def _diag(B, d, g):
    mu = torch.randn(B, d, dtype=F64, generator=g)
    sigma = torch.rand(B, d, dtype=F64, generator=g) + 0.3
    return mu, sigma


def test_diagonal_gaussians_match_closed_form():
    g = torch.Generator().manual_seed(0)
    (m0, s0), (m1, s1) = _diag(7, 5, g), _diag(7, 5, g)
    q, p = Independent(Normal(m0, s0), 1), Independent(Normal(m1, s1), 1)
    expected = _gaussian_kl(m0, torch.diag_embed(s0**2), m1, torch.diag_embed(s1**2))
    torch.testing.assert_close(kl_divergence(q, p), expected, rtol=1e-12, atol=1e-12)
    assert kl_divergence(q, p).shape == (7,)


@pytest.mark.parametrize("pair", ["diag-full", "full-diag", "full-full"])
def test_full_covariance_gaussians_match_closed_form(pair):
    g = torch.Generator().manual_seed(1)
    B, d = 6, 4
    (m0, s0), (m1, s1) = _diag(B, d, g), _diag(B, d, g)
    S0, S1 = _spd(B, d, g), _spd(B, d, g)
    if pair == "diag-full":  # our registration Independent(Normal) -> MultivariateNormal
        q, p = Independent(Normal(m0, s0), 1), MultivariateNormal(m1, S1)
        expected = _gaussian_kl(m0, torch.diag_embed(s0**2), m1, S1)
    elif pair == "full-diag":  # our registration MultivariateNormal -> Independent(Normal)
        q, p = MultivariateNormal(m0, S0), Independent(Normal(m1, s1), 1)
        expected = _gaussian_kl(m0, S0, m1, torch.diag_embed(s1**2))
    else:
        q, p = MultivariateNormal(m0, S0), MultivariateNormal(m1, S1)
        expected = _gaussian_kl(m0, S0, m1, S1)
    torch.testing.assert_close(kl_divergence(q, p), expected, rtol=1e-10, atol=1e-10)


def test_registered_gaussian_pairs_broadcast_a_shared_prior():
    g = torch.Generator().manual_seed(2)
    m0, s0 = _diag(5, 3, g)
    S1 = _spd(1, 3, g)[0]
    q, p = Independent(Normal(m0, s0), 1), MultivariateNormal(torch.zeros(3, dtype=F64), S1)
    expected = _gaussian_kl(m0, torch.diag_embed(s0**2), torch.zeros(3, dtype=F64), S1.expand(5, 3, 3))
    torch.testing.assert_close(kl_divergence(q, p), expected)
    torch.testing.assert_close(kl_divergence(p, q), _gaussian_kl(torch.zeros(3, dtype=F64), S1.expand(5, 3, 3),
                                                                  m0, torch.diag_embed(s0**2)))


def test_bernoulli_and_categorical_match_closed_form():
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 8, 6, dtype=F64, generator=g).clamp(0.05, 0.95)
    q, p = Independent(Bernoulli(probs=a), 1), Independent(Bernoulli(probs=b), 1)
    expected = (a * (a / b).log() + (1 - a) * ((1 - a) / (1 - b)).log()).sum(-1)
    torch.testing.assert_close(kl_divergence(q, p), expected)
    pa, pb = torch.rand(2, 8, 5, dtype=F64, generator=g).add(0.1).unbind(0)
    pa, pb = pa / pa.sum(-1, keepdim=True), pb / pb.sum(-1, keepdim=True)
    torch.testing.assert_close(kl_divergence(Categorical(pa), Categorical(pb)), (pa * (pa / pb).log()).sum(-1))


def _monte_carlo_pairs():
    g = torch.Generator().manual_seed(4)
    (m0, s0), (m1, s1) = _diag(3, 4, g), _diag(3, 4, g)
    S0 = _spd(3, 4, g)
    a, b = torch.rand(2, 3, 6, dtype=F64, generator=g).clamp(0.05, 0.95)
    pa, pb = torch.rand(2, 3, 5, dtype=F64, generator=g).add(0.1).unbind(0)
    return {
        "diag": (Independent(Normal(m0, s0), 1), Independent(Normal(m1, s1), 1)),
        "full-diag": (MultivariateNormal(m0, S0), Independent(Normal(m1, s1), 1)),
        "bernoulli": (Independent(Bernoulli(probs=a), 1), Independent(Bernoulli(probs=b), 1)),
        "categorical": (Categorical(pa / pa.sum(-1, keepdim=True)), Categorical(pb / pb.sum(-1, keepdim=True))),
    }


@pytest.mark.parametrize("name", ["diag", "full-diag", "bernoulli", "categorical"])
def test_monte_carlo_within_four_standard_errors(name):
    q, p = _monte_carlo_pairs()[name]
    S = 4000
    # Seed fixed; the tolerance is 4 standard errors, SE = (per-draw std) / sqrt(S), computed from
    # the very draws the estimator uses (same generator seed).
    z = sample(q, (S,), generator=torch.Generator().manual_seed(5))
    per_draw = q.log_prob(z) - p.log_prob(z)
    se = per_draw.std(0) / math.sqrt(S)
    estimate = kl_divergence(q, p, samples=S, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(estimate, per_draw.mean(0))
    assert ((estimate - kl_divergence(q, p)).abs() <= 4 * se).all()


def test_monte_carlo_gradient_flows_through_reparameterised_draws():
    loc = torch.zeros(3, dtype=F64, requires_grad=True)
    q = Independent(Normal(loc, torch.ones(3, dtype=F64)), 1)
    p = Independent(Normal(torch.ones(3, dtype=F64), torch.ones(3, dtype=F64)), 1)
    kl_divergence(q, p, samples=64, generator=torch.Generator().manual_seed(0)).backward()
    # With z_s = μ + ε_s: log q(z_s) − log p(z_s) = −ε_s²/2 + (μ + ε_s − 1)²/2, whose pathwise
    # derivative in μ is μ + ε_s − 1; the same seed reproduces the ε_s.
    eps = torch.randn(64, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(loc.grad, eps.mean(0) - 1)


def _params(draw_positive):
    return st.lists(draw_positive, min_size=3, max_size=3)


finite = st.floats(-5, 5, allow_nan=False)
positive = st.floats(0.05, 5, allow_nan=False)


@settings(max_examples=50, deadline=None)
@given(m0=_params(finite), s0=_params(positive), m1=_params(finite), s1=_params(positive))
def test_gaussian_kl_nonnegative_and_zero_on_itself(m0, s0, m1, s1):
    t = lambda v: torch.tensor(v, dtype=F64)  # noqa: E731
    q, p = Independent(Normal(t(m0), t(s0)), 1), Independent(Normal(t(m1), t(s1)), 1)
    assert kl_divergence(q, p) >= -1e-12
    assert kl_divergence(q, q).abs() <= 1e-12
    full = MultivariateNormal(t(m1), torch.diag_embed(t(s1)) + 0.1 * torch.ones(3, 3, dtype=F64))
    assert kl_divergence(q, full) >= -1e-10
    assert kl_divergence(full, q) >= -1e-10
    q_as_full = MultivariateNormal(t(m0), torch.diag_embed(t(s0) ** 2))
    assert kl_divergence(q, q_as_full).abs() <= 1e-10
    assert kl_divergence(q_as_full, q).abs() <= 1e-10


@settings(max_examples=50, deadline=None)
@given(a=st.lists(st.floats(0.01, 0.99), min_size=4, max_size=4),
       b=st.lists(st.floats(0.01, 0.99), min_size=4, max_size=4))
def test_discrete_kl_nonnegative_and_zero_on_itself(a, b):
    a, b = torch.tensor(a, dtype=F64), torch.tensor(b, dtype=F64)
    q, p = Independent(Bernoulli(probs=a), 1), Independent(Bernoulli(probs=b), 1)
    assert kl_divergence(q, p) >= -1e-12 and kl_divergence(q, q).abs() <= 1e-12
    cq, cp = Categorical(a / a.sum()), Categorical(b / b.sum())
    assert kl_divergence(cq, cp) >= -1e-12 and kl_divergence(cq, cq).abs() <= 1e-12


def test_missing_pair_error_names_types_and_suggests_samples():
    q = Normal(torch.zeros(2), torch.ones(2))
    p = StudentT(3.0, torch.zeros(2), torch.ones(2))
    assert closed_form_kl(q, p) is None
    with pytest.raises(ValueError, match=r"q=Normal.*p=StudentT.*samples>0"):
        kl_divergence(q, p)
    assert torch.isfinite(kl_divergence(q, p, samples=10, generator=torch.Generator().manual_seed(0))).all()


def test_input_validation():
    q = Independent(Normal(torch.zeros(2, 3), 1.0), 1)
    with pytest.raises(ValueError, match="event_shape"):
        kl_divergence(q, Independent(Normal(torch.zeros(4), 1.0), 1))
    with pytest.raises(ValueError, match="samples"):
        kl_divergence(q, q, samples=-1)
    with pytest.raises(TypeError, match="p must be"):
        kl_divergence(q, torch.zeros(3))


def test_per_dimension_kl_sums_to_the_total():
    g = torch.Generator().manual_seed(6)
    (m0, s0), (m1, s1) = _diag(5, 4, g), _diag(1, 4, g)
    q, p = Independent(Normal(m0, s0), 1), Independent(Normal(m1[0], s1[0]), 1)
    per_dim = kl_divergence_per_dim(q, p)
    assert per_dim.shape == (5, 4)
    expected = (s1[0] / s0).log() + (s0**2 + (m0 - m1[0]) ** 2) / (2 * s1[0] ** 2) - 0.5
    torch.testing.assert_close(per_dim, expected)
    torch.testing.assert_close(per_dim.sum(-1), kl_divergence(q, p))
    with pytest.raises(ValueError, match="factorised p"):
        kl_divergence_per_dim(q, MultivariateNormal(torch.zeros(4, dtype=F64), torch.eye(4, dtype=F64)))


def _families():
    """Families built from a batch shape, each with a generator-driven parameter draw."""
    def params(shape, g, extra=()):
        return torch.rand((*shape, *extra), dtype=F64, generator=g) * 0.8 + 0.1
    return {
        "bernoulli": lambda s, g: Bernoulli(probs=params(s, g)),
        "independent-bernoulli": lambda s, g: Independent(Bernoulli(probs=params(s, g, (4,))), 1),
        "categorical": lambda s, g: Categorical(probs=params(s, g, (3,))),
        "normal": lambda s, g: Normal(params(s, g) - 0.5, params(s, g)),
        "independent-normal": lambda s, g: Independent(Normal(params(s, g, (3,)), params(s, g, (3,))), 1),
    }


@pytest.mark.parametrize("family", list(_families()))
@pytest.mark.parametrize("q_shape,p_shape", [((3, 2), (2,)), ((2,), (3, 2)), ((3, 1), (1, 2)), ((3, 2), ())])
def test_batch_shapes_broadcast_before_dispatch(family, q_shape, p_shape):
    # torch's Bernoulli–Bernoulli form crashed on q batch (3, 2) against p batch (2,); every pair must
    # give the KL of the explicitly expanded pair, of the broadcast shape, closed form and Monte Carlo.
    g = torch.Generator().manual_seed(11)
    make = _families()[family]
    q, p = make(q_shape, g), make(p_shape, g)
    shape = torch.broadcast_shapes(q_shape, p_shape)
    expected = torch.distributions.kl_divergence(q.expand(shape), p.expand(shape))  # torch, same shapes
    assert expected.shape == shape
    torch.testing.assert_close(kl_divergence(q, p), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(closed_form_kl(q, p), expected, rtol=1e-12, atol=1e-12)
    assert kl_divergence(q, p, samples=3, generator=torch.Generator().manual_seed(0)).shape == shape


def test_unbroadcastable_batch_shapes_are_named():
    with pytest.raises(ValueError, match=r"broadcastable batch shapes, got \(3,\) and \(2,\)"):
        kl_divergence(Bernoulli(torch.full((3,), 0.5)), Bernoulli(torch.full((2,), 0.5)))
