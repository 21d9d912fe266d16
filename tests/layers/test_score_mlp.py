"""Score MLP and time embeddings: shapes for vector and image-shaped data, dependence on t,
the embedding formulas, and argument errors."""

import math

import pytest
import torch

from mathml.layers import GaussianFourierEmbedding, ScoreMLP, SinusoidalEmbedding


@pytest.mark.parametrize("shape", [(2,), (1, 8, 8), (3, 2, 2)])
def test_output_has_the_shape_of_x_and_gradients_reach_every_parameter(shape):
    net = ScoreMLP(list(shape), width=32, num_blocks=2, zero_init_output=False)
    x, t = torch.randn(5, *shape), torch.rand(5)
    out = net(x, t)
    assert out.shape == x.shape
    out.pow(2).sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_output_depends_on_t_and_each_sample_only_on_its_own_row():
    torch.manual_seed(0)
    net = ScoreMLP([2], width=32, num_blocks=2, zero_init_output=False).double()
    x = torch.randn(4, 2, dtype=torch.float64)
    t = torch.tensor([0.1, 0.1, 0.1, 0.1], dtype=torch.float64, requires_grad=True)
    out = net(x, t)
    # d out / d t is nonzero (time conditioning works) ...
    (dt,) = torch.autograd.grad(out.sum(), t)
    assert (dt.abs() > 1e-6).all()
    # ... and samples do not mix: row i of the output is the network applied to row i alone.
    single = torch.cat([net(x[i : i + 1], t[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(out, single)


def test_zero_initialised_output_is_zero():
    net = ScoreMLP([2], width=16, num_blocks=1)
    assert net(torch.randn(3, 2), torch.rand(3)).abs().max() == 0


def test_fourier_and_sinusoidal_embeddings_follow_their_formulas():
    t = torch.tensor([0.0, 0.25, 1.0], dtype=torch.float64)
    emb = GaussianFourierEmbedding(dim=8, scale=3.0, seed=1).double()
    b = emb.b
    assert b.shape == (4,)
    expected = torch.cat([torch.sin(2 * math.pi * t[:, None] * b), torch.cos(2 * math.pi * t[:, None] * b)], 1)
    torch.testing.assert_close(emb(t), expected)
    # the frequencies are a fixed draw: the same seed gives the same b
    torch.testing.assert_close(GaussianFourierEmbedding(8, 3.0, seed=1).b, b.float())
    sin = SinusoidalEmbedding(dim=6, time_scale=10.0, max_period=100.0).double()
    omega = torch.tensor([1.0, 100 ** (-1 / 3), 100 ** (-2 / 3)], dtype=torch.float64)
    ang = 10.0 * t[:, None] * omega
    torch.testing.assert_close(sin(t), torch.cat([torch.sin(ang), torch.cos(ang)], 1))
    # no trainable parameters in either
    assert not list(emb.parameters()) and not list(sin.parameters())


def test_bad_arguments_name_themselves():
    net = ScoreMLP([2], width=8, num_blocks=1)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        net(torch.randn(3, 3), torch.rand(3))
    with pytest.raises(ValueError, match=r"t must have shape \(B,\) = \(3,\)"):
        net(torch.randn(3, 2), torch.rand(4))
    with pytest.raises(ValueError, match="dim must be even"):
        GaussianFourierEmbedding(dim=7)
    with pytest.raises(ValueError, match="num_blocks"):
        ScoreMLP([2], num_blocks=0)
    with pytest.raises(ValueError, match="data_shape"):
        ScoreMLP([])
