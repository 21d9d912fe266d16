"""Encoders and decoders: distribution shapes, leading sample dims, errors, scale floors."""

import pytest
import torch
from torch.distributions import Independent, Normal

from mathml.layers import (
    BernoulliLikelihood,
    ConvDecoder,
    ConvEncoder,
    DiscretizedGaussianLikelihood,
    GaussianLikelihood,
    MLPDecoder,
    MLPEncoder,
)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("conv", [False, True])
def test_encoder_returns_diagonal_gaussian(shape, conv):
    enc = (ConvEncoder if conv else MLPEncoder)(list(shape), latent_dim=5)
    q = enc(torch.rand(4, *shape))
    assert isinstance(q, Independent) and isinstance(q.base_dist, Normal)
    assert q.batch_shape == (4,) and q.event_shape == (5,)
    assert (q.base_dist.scale >= enc.min_scale).all()


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("head", [BernoulliLikelihood, GaussianLikelihood, DiscretizedGaussianLikelihood])
def test_decoder_handles_leading_sample_dims(shape, conv, head):
    dec = (ConvDecoder if conv else MLPDecoder)(5, list(shape), head())
    p = dec(torch.randn(3, 4, 5))  # (S, B, d)
    assert p.batch_shape == (3, 4) and p.event_shape == shape
    x = torch.rand(4, *shape)
    if head is BernoulliLikelihood:
        x = x.round()
    elif head is DiscretizedGaussianLikelihood:
        x = (x * 255).round() / 255
    assert p.log_prob(x).shape == (3, 4)


def test_linear_encoder_scale_is_shared_and_affine():
    enc = MLPEncoder([1, 8, 8], latent_dim=3, hidden=[], amortize_scale=False)
    x = torch.rand(6, 1, 8, 8)
    q = enc(x)
    # σ does not depend on x; μ is affine in x: μ(a x1 + (1-a) x2) = a μ(x1) + (1-a) μ(x2).
    assert torch.equal(q.base_dist.scale[0], q.base_dist.scale[5])
    a = 0.3
    mix = enc(a * x[:1] + (1 - a) * x[1:2]).mean
    torch.testing.assert_close(mix, a * q.mean[:1] + (1 - a) * q.mean[1:2])


def test_shape_errors_name_expected_shape():
    enc = MLPEncoder([1, 8, 8], latent_dim=3)
    with pytest.raises(ValueError, match=r"\(B, 1, 8, 8\)"):
        enc(torch.rand(2, 64))
    dec = MLPDecoder(3, [1, 8, 8], BernoulliLikelihood())
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        dec(torch.rand(2, 4))
    with pytest.raises(ValueError, match="latent_dim"):
        MLPEncoder([1, 8, 8], latent_dim=0)
    with pytest.raises(TypeError, match="likelihood"):
        MLPDecoder(3, [1, 8, 8], torch.nn.Identity())


@pytest.mark.parametrize(
    ("head", "levels"),
    [(BernoulliLikelihood(), 2), (DiscretizedGaussianLikelihood(17), 17), (GaussianLikelihood(scale=0.05), 17)],
)
def test_heads_declare_whether_they_are_a_probability_mass(head, levels):
    # bits/dim is reported only for masses. A mass sums to 1 over the value grid k / (L - 1) of one
    # pixel; a density (the Gaussian, σ = 0.05, grid spacing 1/16) does not, so `discrete` must say so.
    event = torch.Size([1, 1, 1])
    params = torch.randn(5, head.num_params, *event, generator=torch.Generator().manual_seed(0))
    dist = head(params, event)
    grid = torch.arange(levels, dtype=torch.float32) / (levels - 1)
    total = torch.stack([dist.log_prob(v.expand(5, *event)).exp() for v in grid]).sum(0)
    is_mass = bool(torch.allclose(total, torch.ones(5), atol=1e-5))
    assert head.discrete == is_mass, total
