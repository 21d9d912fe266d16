"""bits/dim formulas against hand-computed cases."""

from __future__ import annotations

import math

import pytest
import torch

from mathml.metrics import bits_per_dim, dequantized_bits_per_dim


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
