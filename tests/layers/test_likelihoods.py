"""Likelihood heads: shapes for any leading dims, parameter layout, scale floors, validation."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Bernoulli, Normal

from mathml.distributions import DiscretizedGaussian
from mathml.layers import BernoulliLikelihood, DiscretizedGaussianLikelihood, GaussianLikelihood

EVENT = torch.Size([1, 4, 3])


@pytest.mark.parametrize("head", [BernoulliLikelihood(), GaussianLikelihood(), GaussianLikelihood(learn_scale=True),
                                  GaussianLikelihood(per_dimension=True), DiscretizedGaussianLikelihood(17)])
@pytest.mark.parametrize("batch", [(), (5,), (2, 5)])
def test_shapes_for_leading_dims(head, batch):
    params = torch.randn(*batch, head.num_params, *EVENT)
    dist = head(params, EVENT)
    assert dist.batch_shape == batch and dist.event_shape == EVENT
    x = torch.randint(0, 2, (*batch, *EVENT)).float()
    assert dist.log_prob(x).shape == batch


def test_parameters_are_read_in_the_documented_layout():
    params = torch.randn(3, 2, *EVENT)
    x = torch.rand(3, *EVENT)
    g = GaussianLikelihood(per_dimension=True, min_scale=1e-3)(params, EVENT)
    scale = torch.nn.functional.softplus(params[:, 1]) + 1e-3
    torch.testing.assert_close(g.log_prob(x), Normal(params[:, 0], scale).log_prob(x).sum((-3, -2, -1)))
    b = BernoulliLikelihood()(params[:, :1], EVENT)
    xb = (x > 0.5).float()
    torch.testing.assert_close(b.log_prob(xb), Bernoulli(logits=params[:, 0]).log_prob(xb).sum((-3, -2, -1)))
    levels = torch.randint(0, 17, (3, *EVENT)) / 16
    dg = DiscretizedGaussianLikelihood(17, min_scale=1e-3)(params, EVENT)
    torch.testing.assert_close(dg.log_prob(levels),
                               DiscretizedGaussian(params[:, 0], scale, 17).log_prob(levels).sum((-3, -2, -1)))


def test_fixed_and_learned_shared_scale():
    fixed = GaussianLikelihood(scale=0.3)
    assert list(fixed.parameters()) == []
    assert fixed(torch.zeros(2, 1, *EVENT), EVENT).base_dist.scale.unique().item() == pytest.approx(0.3)
    learned = GaussianLikelihood(scale=0.3, learn_scale=True, min_scale=1e-2).double()
    assert learned.sigma.item() == pytest.approx(0.3)
    dist = learned(torch.zeros(2, 1, *EVENT, dtype=torch.float64), EVENT)
    assert dist.base_dist.scale.dtype == torch.float64
    dist.log_prob(torch.ones(2, *EVENT, dtype=torch.float64)).sum().backward()
    # Σ over 2 × 12 values of log N(1; 0, σ²) = −log σ − 1/(2σ²) − ½ log 2π, σ = softplus(raw) + σ_min:
    # d/d raw = 24 (−1/σ + 1/σ³) sigmoid(raw).
    sigma, raw = learned.sigma.item(), learned.raw_scale.item()
    expected = 24 * (-1 / sigma + 1 / sigma**3) * torch.sigmoid(torch.tensor(raw, dtype=torch.float64)).item()
    assert learned.raw_scale.grad.item() == pytest.approx(expected, rel=1e-12)


def test_learned_scales_never_fall_below_min_scale():
    min_scale = 1e-2
    params = torch.full((4, 2, *EVENT), -1e4)  # raw scales that would collapse σ to 0
    for head in (GaussianLikelihood(per_dimension=True, min_scale=min_scale),
                 DiscretizedGaussianLikelihood(256, min_scale=min_scale)):
        scale = head(params, EVENT).base_dist.scale
        assert (scale >= min_scale).all()
    shared = GaussianLikelihood(scale=1.0, learn_scale=True, min_scale=min_scale)
    with torch.no_grad():
        shared.raw_scale.fill_(-1e4)
    assert shared.sigma >= torch.tensor(min_scale)  # compared in float32
    # σ_min bounds the density: log N(x; x, σ_min²) = −log σ_min − ½ log 2π per dimension, no more.
    lp = shared(torch.zeros(1, 1, *EVENT), EVENT).log_prob(torch.zeros(1, *EVENT))
    assert lp.item() <= EVENT.numel() * (-math.log(min_scale) - 0.5 * math.log(2 * math.pi)) + 1e-3


def test_validation():
    with pytest.raises(ValueError, match="scale"):
        GaussianLikelihood(scale=0.0)
    with pytest.raises(ValueError, match="min_scale"):
        GaussianLikelihood(min_scale=-1.0)
    with pytest.raises(ValueError, match="min_scale"):
        DiscretizedGaussianLikelihood(min_scale=0.0)
    with pytest.raises(ValueError, match="num_levels"):
        DiscretizedGaussianLikelihood(num_levels=1)
    with pytest.raises(ValueError, match=r"expected params of shape \(\*batch, 2, 1, 4, 3\)"):
        DiscretizedGaussianLikelihood()(torch.zeros(3, 1, *EVENT), EVENT)
