"""2-D toy sets checked against the geometry that defines them."""

import math

import pytest
import torch

from mathml.data import TOY_2D_SETS, checkerboard, gaussian_mixture_2d, swiss_roll_2d, toy_2d, two_moons


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("name", sorted(TOY_2D_SETS))
def test_shape_dtype_and_generator_determinism(name):
    x = toy_2d(name, 257, generator=_gen(0))
    assert x.shape == (257, 2) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert torch.equal(x, toy_2d(name, 257, generator=_gen(0)))
    assert not torch.equal(x, toy_2d(name, 257, generator=_gen(1)))


def test_two_moons_without_noise_lie_on_the_two_half_circles():
    x = two_moons(2000, generator=_gen(0), noise=0.0)
    on_upper = ((x.norm(dim=1) - 1).abs() < 1e-5) & (x[:, 1] >= -1e-6)
    on_lower = (((x - torch.tensor([1.0, 0.5])).norm(dim=1) - 1).abs() < 1e-5) & (x[:, 1] <= 0.5 + 1e-6)
    assert torch.all(on_upper | on_lower)
    # A fair coin picks the moon: the count is within 4 s.e. of n/2 (s.e. = sqrt(n)/2).
    assert abs(on_upper.float().sum() - 1000) < 4 * math.sqrt(2000) / 2


def test_gaussian_mixture_modes_and_spread():
    n, radius, std = 40000, 2.0, 0.1
    x = gaussian_mixture_2d(n, generator=_gen(0), radius=radius, std=std)
    angles = 2 * math.pi * torch.arange(8) / 8
    mu = radius * torch.stack([angles.cos(), angles.sin()], dim=1)
    d2, k = torch.cdist(x, mu).pow(2).min(dim=1)
    # Each mode has weight 1/8: counts within 4 binomial s.e.
    counts = torch.bincount(k, minlength=8).float()
    assert torch.all((counts - n / 8).abs() < 4 * math.sqrt(n * (1 / 8) * (7 / 8)))
    # |x - mu_k|^2 / std^2 ~ chi^2_2: mean 2, variance 4; mean within 4 s.e. (modes are 1.5 apart, >> std).
    z = d2 / std**2
    assert abs(z.mean() - 2) < 4 * 2 / math.sqrt(n)


def test_swiss_roll_without_noise_is_the_spiral_r_equals_theta():
    x = swiss_roll_2d(3000, generator=_gen(0), noise=0.0)
    t = 10 * x.norm(dim=1)  # radius = t / 10
    assert torch.all((t >= 1.5 * math.pi - 1e-4) & (t <= 4.5 * math.pi + 1e-4))
    torch.testing.assert_close(10 * x, torch.stack([t * t.cos(), t * t.sin()], dim=1), rtol=0, atol=1e-4)


def test_checkerboard_is_uniform_on_dark_squares():
    n = 40000
    x = checkerboard(n, generator=_gen(0))
    i, j = (x[:, 0] + 2).floor().long(), (x[:, 1] + 2).floor().long()
    assert x.abs().max() <= 2 and torch.all((i + j) % 2 == 1)
    counts = torch.bincount(4 * i + j, minlength=16).float()
    dark = counts[counts > 0]
    assert dark.numel() == 8
    assert torch.all((dark - n / 8).abs() < 4 * math.sqrt(n * (1 / 8) * (7 / 8)))  # 4 binomial s.e.


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: two_moons(0), "n must"),
        (lambda: two_moons(5, noise=-1.0), "noise"),
        (lambda: gaussian_mixture_2d(5, n_modes=0), "n_modes"),
        (lambda: checkerboard(5, cells=3), "cells"),
        (lambda: swiss_roll_2d(5, generator=0), "generator"),
        (lambda: toy_2d("spirals", 5), "two_moons"),
    ],
)
def test_invalid_arguments(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.cuda
@pytest.mark.parametrize("name", sorted(TOY_2D_SETS))
def test_draws_on_the_generator_device(name):
    x = toy_2d(name, 64, generator=torch.Generator("cuda").manual_seed(0))
    assert x.device.type == "cuda" and x.shape == (64, 2)
