"""Sliced Wasserstein: the 1-D distance against scipy and exact quantile integrals; SW against
closed forms (shifted sets exactly; two Gaussians within the sampling standard error)."""

import math

import pytest
import torch
from scipy.stats import wasserstein_distance

from mathml.metrics import random_directions, sliced_wasserstein, wasserstein_1d


@pytest.mark.parametrize("n,m", [(50, 50), (37, 91)])
def test_w1_in_one_dimension_equals_scipy(n, m):
    g = torch.Generator().manual_seed(0)
    u = torch.randn(n, 1, generator=g, dtype=torch.float64)
    v = 0.5 + 2.0 * torch.rand(m, 1, generator=g, dtype=torch.float64)
    ours = wasserstein_1d(u, v, p=1.0).item()
    assert ours == pytest.approx(wasserstein_distance(u[:, 0].numpy(), v[:, 0].numpy()), rel=1e-12, abs=1e-14)


def test_w2_unequal_sizes_equals_quantile_integral():
    # F_u^{-1} and F_v^{-1} are step functions; integrate |F_u^{-1} - F_v^{-1}|^2 on a fine grid of
    # midpoints of a common refinement (6 = lcm(2, 3) pieces): exact.
    u = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    v = torch.tensor([[0.0], [2.0], [5.0]], dtype=torch.float64)
    # pieces of width 1/6: u quantiles 0,0,0,1,1,1 ; v quantiles 0,0,2,2,5,5
    exact = (0 + 0 + 4 + 1 + 16 + 16) / 6
    assert wasserstein_1d(u, v, p=2.0).item() == pytest.approx(exact, rel=1e-14)


def test_shifted_set_gives_the_rms_projected_shift_exactly():
    # y = x + δ: every projection is shifted by <θ, δ>, so W_2(θ) = |<θ, δ>| and
    # SW_2 = sqrt(mean_l <θ_l, δ>^2) for the directions used, to rounding.
    g = torch.Generator().manual_seed(1)
    x = torch.randn(500, 3, generator=g, dtype=torch.float64)
    delta = torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    theta = random_directions(400, 3, generator=g, dtype=torch.float64)
    sw = sliced_wasserstein(x, x + delta, directions=theta)
    assert sw.item() == pytest.approx((theta @ delta).pow(2).mean().sqrt().item(), rel=1e-10)
    # and with many directions, E_θ <θ, δ>^2 = |δ|^2 / d on S^{d-1}
    sw_mc = sliced_wasserstein(x, x + delta, n_projections=5000, generator=g)
    assert sw_mc.item() ** 2 == pytest.approx(delta.pow(2).sum().item() / 3, rel=0.06)  # 5,000 directions: relative SE of the mean of <θ,δ>² ≈ 1.1/√5000 ≈ 1.6%


def test_two_gaussians_match_the_closed_form_within_the_standard_error():
    # P = N(0, I_2), Q = N(μ, s^2 I_2): θ#P = N(0, 1), θ#Q = N(<θ, μ>, s^2), so
    # W_2(θ)^2 = <θ, μ>^2 + (1 - s)^2 exactly. Fixed directions remove the Monte-Carlo error over θ;
    # what remains is sampling error, whose standard error we estimate from 10 independent replicates.
    # The empirical W_2^2 is biased upward by O(1/n); at n = 5,000 that is ~1e-4, below the tolerance.
    d, s = 2, 0.5
    mu = torch.tensor([1.0, -0.5], dtype=torch.float64)
    theta = random_directions(64, d, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    exact = ((theta @ mu).pow(2) + (1 - s) ** 2).mean().item()
    g = torch.Generator().manual_seed(3)
    vals = []
    for _ in range(10):
        x = torch.randn(5_000, d, generator=g, dtype=torch.float64)
        y = mu + s * torch.randn(5_000, d, generator=g, dtype=torch.float64)
        vals.append(sliced_wasserstein(x, y, directions=theta).item() ** 2)
    vals = torch.tensor(vals)
    se = vals.std().item() / math.sqrt(len(vals))
    assert abs(vals.mean().item() - exact) < 4 * se, (vals.mean().item(), exact, se)


def test_bad_arguments_name_themselves():
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="event shape"):
        sliced_wasserstein(x, torch.randn(10, 3))
    with pytest.raises(ValueError, match="p must be >= 1"):
        sliced_wasserstein(x, x, p=0.5)
    with pytest.raises(ValueError, match="n_projections"):
        sliced_wasserstein(x, x, n_projections=0)
    with pytest.raises(TypeError, match="generator"):
        sliced_wasserstein(x, x, generator=3)
