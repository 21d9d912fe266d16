"""bits/dim formulas against hand-computed cases."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from mathml.metrics import bits_per_dim, dequantized_bits_per_dim, uniform_dequantize


@pytest.mark.parametrize("L", [2, 17, 256])
def test_uniform_discrete_model_costs_log2_levels_bits_per_dim(L):
    D = 64
    nll = torch.full((3,), D * math.log(L))  # −log Π_i (1/L)
    torch.testing.assert_close(bits_per_dim(nll, D), torch.full((3,), math.log2(L)))


@pytest.mark.parametrize("L", [17, 256])
def test_uniform_density_on_the_unit_cube_dequantizes_to_log2_levels(L):
    # The uniform density on [0, 1]^D has nll 0; dequantised to L levels it is the uniform discrete
    # model, log2 L bits per dimension (Theis et al. 2016, §3.1).
    torch.testing.assert_close(dequantized_bits_per_dim(torch.zeros(2), 10, L), torch.full((2,), math.log2(L)))
    # A density with −log p = D·log 2 (e.g. uniform on [0, ½]^D) saves one bit per dimension.
    torch.testing.assert_close(dequantized_bits_per_dim(torch.tensor(-10 * math.log(2.0)), 10, L),
                               torch.tensor(math.log2(L) - 1))


def test_validation():
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(torch.zeros(1), 0)
    with pytest.raises(TypeError, match="nll_nats"):
        bits_per_dim(1.0, 3)
    with pytest.raises(ValueError, match="num_levels"):
        dequantized_bits_per_dim(torch.zeros(1), 3, 1)
    with pytest.raises(ValueError, match=r"x must hold the 17-level values k/16.*0.3"):
        uniform_dequantize(torch.tensor([0.0, 0.3]), 17)
    with pytest.raises(ValueError, match="x must hold"):
        uniform_dequantize(torch.tensor([1.0 + 1 / 16]), 17)
    with pytest.raises(TypeError, match="floating-point"):
        uniform_dequantize(torch.tensor([0, 1]), 2)


def test_dequantised_bits_per_dim_is_the_exact_code_length_for_a_cellwise_constant_density():
    # Hand case, L = 3 levels, D = 2: data x = k/2. A density constant on the cells
    # [k/3, (k+1)/3)² of the unit square with cell masses P(k) has p(x̃) = 3^D P(k) there, so
    # −log p(x̃) = −log P(k) − D ln 3, and the dequantised bits/dim (nll + D ln 3)/(D ln 2) must equal
    # the discrete code length −log2 P(k) / D exactly (Jensen's bound is tight for such a density).
    L, D = 3, 2
    P = torch.tensor([[0.05, 0.10, 0.15], [0.20, 0.02, 0.08], [0.25, 0.05, 0.10]], dtype=torch.float64)
    k = torch.tensor(list(itertools.product(range(L), repeat=D)), dtype=torch.float64)  # all 9 data points
    x = k / (L - 1)
    x_tilde = uniform_dequantize(x.repeat(50, 1), L, generator=torch.Generator().manual_seed(0))
    cell = (x_tilde * L).floor().long()
    assert torch.equal(cell, k.long().repeat(50, 1))  # each x̃ lies in its own datum's cell
    nll = -(P[cell[:, 0], cell[:, 1]] * L**D).log()  # −log p(x̃)
    discrete = -P[k[:, 0].long(), k[:, 1].long()].log()
    torch.testing.assert_close(dequantized_bits_per_dim(nll, D, L), bits_per_dim(discrete.repeat(50), D))


@pytest.mark.parametrize("L", [2, 17, 256])
def test_uniform_dequantize_fills_each_cell(L):
    # x̃ = ((L−1)x + u)/L lies in [k/L, (k+1)/L) and, over draws, covers the cell uniformly:
    # the mean offset L x̃ − k is ½ within 4 standard errors (SE = sqrt(1/12 / n)); seed fixed.
    k = torch.arange(L, dtype=torch.float64).repeat(400)
    y = uniform_dequantize(k / (L - 1), L, generator=torch.Generator().manual_seed(L)) * L - k
    assert (y >= 0).all() and (y < 1).all()
    assert abs(y.mean().item() - 0.5) <= 4 * math.sqrt(1 / 12 / y.numel())
