"""MMD² U-statistic: exact bounds on identical sets, unbiasedness against the closed form for
Gaussians, and the median heuristic against scipy."""

import math

import pytest
import torch
from scipy.spatial.distance import pdist

from mathml.metrics import median_bandwidth, mmd_squared


def _expected_rbf(mu1, s1, mu2, s2, h):
    """E exp(-|X - Y|^2 / (2 h^2)) for X ~ N(mu1, s1^2 I_d), Y ~ N(mu2, s2^2 I_d) independent:
    X - Y ~ N(Δ, (s1^2 + s2^2) I), so E = (h^2 / (h^2 + v))^{d/2} exp(-|Δ|^2 / (2 (h^2 + v))), v = s1^2 + s2^2."""
    d = mu1.numel()
    v = s1**2 + s2**2
    return (h**2 / (h**2 + v)) ** (d / 2) * math.exp(-(mu1 - mu2).pow(2).sum().item() / (2 * (h**2 + v)))


def _exact_mmd2(mu1, s1, mu2, s2, hs):
    return sum(_expected_rbf(mu1, s1, mu1, s1, h) + _expected_rbf(mu2, s2, mu2, s2, h)
               - 2 * _expected_rbf(mu1, s1, mu2, s2, h) for h in hs) / len(hs)


def test_identical_sets_lie_in_the_exact_range():
    # With k(x, x) = 1 and S = Σ_{i≠j} k(x_i, x_j) ∈ [0, m(m-1)], MMD²_u(X, X) = 2S/(m²(m-1)) - 2/m ∈ [-2/m, 0].
    x = torch.randn(300, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    v = mmd_squared(x, x, bandwidths=[1.0]).item()
    assert -2 / 300 <= v <= 0
    kxx = torch.exp(-torch.cdist(x, x).pow(2) / 2)
    s = (kxx.sum() - 300).item()
    assert v == pytest.approx(2 * s / (300**2 * 299) - 2 / 300, rel=1e-12)


@pytest.mark.parametrize("mu2,s2", [((0.0, 0.0), 1.0), ((0.7, -0.3), 0.6)])
def test_unbiased_against_the_closed_form(mu2, s2):
    # Mean of 400 independent estimates (m = n = 60) vs the exact MMD²; tolerance 4 standard errors
    # of that mean (fixed seed). Fixed bandwidths: the estimate is then exactly unbiased.
    hs = [0.5, 1.0, 2.0]
    mu1, mu2 = torch.zeros(2, dtype=torch.float64), torch.tensor(mu2, dtype=torch.float64)
    exact = _exact_mmd2(mu1, 1.0, mu2, s2, hs)
    g = torch.Generator().manual_seed(1)
    vals = torch.tensor([
        mmd_squared(torch.randn(60, 2, generator=g, dtype=torch.float64),
                    mu2 + s2 * torch.randn(60, 2, generator=g, dtype=torch.float64), bandwidths=hs).item()
        for _ in range(400)
    ])
    se = vals.std().item() / math.sqrt(len(vals))
    assert abs(vals.mean().item() - exact) < 4 * se, (vals.mean().item(), exact, se)


def test_median_heuristic_is_the_median_pairwise_distance():
    g = torch.Generator().manual_seed(2)
    x, y = torch.randn(31, 3, generator=g, dtype=torch.float64), torch.randn(20, 3, generator=g, dtype=torch.float64)
    # torch's median of an even count is the lower middle value; compare with that order statistic.
    d = torch.from_numpy(pdist(torch.cat([x, y]).numpy())).sort().values
    assert median_bandwidth(x, y).item() == pytest.approx(d[(len(d) - 1) // 2].item(), rel=1e-12)
    assert mmd_squared(x, y).item() == pytest.approx(mmd_squared(x, y, bandwidths=[median_bandwidth(x, y).item()]).item())


def test_bad_arguments_name_themselves():
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="at least 2 samples"):
        mmd_squared(x[:1], x)
    with pytest.raises(ValueError, match="bandwidths"):
        mmd_squared(x, x, bandwidths=[1.0, -1.0])
    with pytest.raises(ValueError, match="event shape"):
        mmd_squared(x, torch.randn(10, 3))
