"""DiscretizedGaussian against the Normal CDF (scipy as the oracle), normalisation and stability."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Independent

from mathml.distributions import DiscretizedGaussian
from mathml.distributions.sampling import sample

F64 = torch.float64


def _grid(L):
    loc = torch.tensor([0.0, 0.3, 0.5, 1.0, -0.4, 1.7, 0.51], dtype=F64)
    scale = torch.tensor([0.01, 0.05, 0.2, 1.0, 3.0, 0.5, 1e-3], dtype=F64)
    return DiscretizedGaussian(loc, scale, L)


@pytest.mark.parametrize("L", [2, 17, 256])
def test_probabilities_sum_to_one_over_the_levels(L):
    d = _grid(L)
    levels = d.enumerate_support()
    assert levels.shape == (L, 7)
    total = torch.logsumexp(d.log_prob(levels), dim=0)
    torch.testing.assert_close(total, torch.zeros(7, dtype=F64), atol=1e-12, rtol=0)


@pytest.mark.parametrize("L", [17, 256])
def test_matches_normal_cdf_differences(L):
    from scipy.stats import norm

    d = _grid(L)
    levels = d.enumerate_support()
    x, mu, s = levels.numpy(), d.loc.numpy(), d.scale.numpy()
    delta = 0.5 / (L - 1)
    upper = norm.cdf((x + delta - mu) / s)
    lower = norm.cdf((x - delta - mu) / s)
    upper[-1], lower[0] = 1.0, 0.0  # edge bins extend to ±∞ (Salimans et al. 2017, §2.1)
    expected = torch.as_tensor(upper - lower)
    torch.testing.assert_close(d.log_prob(levels).exp(), expected, atol=1e-12, rtol=1e-9)


def test_float32_is_accurate_in_the_tails_and_for_narrow_bins():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50  # oracle: 50-digit arithmetic

    def exact(x, mu, s, L):
        delta = mpmath.mpf(1) / (2 * (L - 1))
        lower, upper = (x - delta - mu) / s, (x + delta - mu) / s
        if lower > 0:  # Φ(u) − Φ(l) = Φ(−l) − Φ(−u): no cancellation against 1 in the upper tail
            lower, upper = -upper, -lower
        return float(mpmath.log(mpmath.ncdf(upper) - mpmath.ncdf(lower)))

    L = 256
    cases = [(200 / 255, 0.0, 0.01), (51 / 255, 1.0, 0.02), (120 / 255, 0.0, 1e3), (128 / 255, 0.5, 1e-3),
             (100 / 255, 0.3, 0.2)]
    x, mu, s = (torch.tensor(c, dtype=torch.float32) for c in zip(*cases))
    got = DiscretizedGaussian(mu, s, L).log_prob(x).double()
    expected = torch.tensor([exact(*map(mpmath.mpf, map(float, c)), L) for c in zip(x, mu, s)], dtype=F64)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extreme_locs_and_scales_give_finite_log_prob_and_gradients(dtype):
    loc = torch.tensor([-1e3, 1e3, 0.5, 0.5, 0.0, 1.0, 40.0], dtype=dtype, requires_grad=True)
    scale = torch.tensor([1e-3, 1e-3, 1e-3, 1e3, 1e-3, 1e-3, 1e-2], dtype=dtype, requires_grad=True)
    d = DiscretizedGaussian(loc, scale, 256)
    x = torch.tensor([0.0, 1.0, 128 / 255, 64 / 255, 1.0, 0.0, 153 / 255], dtype=dtype)
    lp = d.log_prob(x)
    assert torch.isfinite(lp).all(), lp
    lp.sum().backward()
    assert torch.isfinite(loc.grad).all() and torch.isfinite(scale.grad).all()


def test_sampling_mean_and_support():
    d = Independent(DiscretizedGaussian(torch.tensor([0.2, 0.9]), torch.tensor([0.3, 0.1]), 17), 1)
    n = 40000
    x = sample(d, (n,), generator=torch.Generator().manual_seed(0))
    assert x.shape == (n, 2)
    assert torch.equal(x * 16, (x * 16).round()) and x.min() >= 0 and x.max() <= 1
    levels = d.base_dist.enumerate_support()
    exact_mean = (levels * d.base_dist.log_prob(levels).exp()).sum(0)
    torch.testing.assert_close(d.mean, exact_mean)
    # Seed fixed; 4 standard errors (per-coordinate sample std / sqrt(n)).
    assert ((x.mean(0) - exact_mean).abs() <= 4 * x.std(0) / n**0.5).all()
    assert d.base_dist.sample((3,)).shape == (3, 2)


def test_validation():
    with pytest.raises(ValueError, match="num_levels"):
        DiscretizedGaussian(torch.zeros(2), torch.ones(2), 1)
    with pytest.raises(ValueError):
        DiscretizedGaussian(torch.zeros(2), -torch.ones(2), 17)
    with pytest.raises(ValueError):  # not one of the 17 levels
        DiscretizedGaussian(torch.zeros(2), torch.ones(2), 17).log_prob(torch.tensor([0.03, 0.5]))
