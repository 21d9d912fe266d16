"""MCMC diagnostics: ESS of independent and AR(1) chains against closed forms and ArviZ, R̂ that
flags chains in different modes, and the kernel Stein discrepancy against autograd and the Stein
identity."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mathml.metrics import effective_sample_size, kernel_stein_discrepancy, split_rhat
from mathml.metrics.mcmc import _imq_stein_kernel


def _ar1(m: int, n: int, phi: float, seed: int) -> torch.Tensor:
    """Stationary AR(1) chains x_{i+1} = φ x_i + ε_i, x_0 ~ N(0, 1/(1 − φ²)): (m, n) float64."""
    g = torch.Generator().manual_seed(seed)
    e = torch.randn(m, n, generator=g, dtype=torch.float64)
    x = torch.empty_like(e)
    x[:, 0] = e[:, 0] / math.sqrt(1 - phi**2)
    for i in range(1, n):
        x[:, i] = phi * x[:, i - 1] + e[:, i]
    return x


def test_ess_of_independent_draws_is_about_the_number_of_draws():
    """8 × 2,000 independent normal draws: ESS ≈ 16,000. The estimator's relative SD here is a few
    per cent (Geyer's truncated sum over ~a few lags); tolerance ±10 %."""
    x = torch.randn(8, 2000, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ess = effective_sample_size(x)
    assert ess.shape == (3,)
    assert ((ess - 16_000).abs() < 1_600).all()


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_ess_of_ar1_chains_matches_its_closed_form(phi):
    """For AR(1), τ = (1 + φ)/(1 − φ) and ESS = MN (1 − φ)/(1 + φ). 8 chains × 4,000 draws; the
    estimator's relative error at these sizes is about 5 % (φ = 0.9) and less for φ = 0.5;
    tolerance 15 %."""
    x = _ar1(8, 4000, phi, seed=1)[..., None]
    expected = 8 * 4000 * (1 - phi) / (1 + phi)
    for rank_normalized in (True, False):
        ess = effective_sample_size(x, rank_normalized=rank_normalized).item()
        assert abs(ess - expected) < 0.15 * expected


def test_rhat_flags_chains_started_in_different_modes_and_passes_mixed_ones():
    g = torch.Generator().manual_seed(2)
    mixed = torch.randn(4, 1000, 2, generator=g)
    stuck = mixed.clone()
    stuck[:2] += 3.0  # two chains in another mode
    assert (split_rhat(mixed) < 1.01).all()
    assert (split_rhat(stuck) > 1.1).all()
    # Chains that agree in location but not in scale: caught by the folded (tail) R̂.
    scaled = mixed.clone()
    scaled[:2] *= 3.0
    assert (split_rhat(scaled) > 1.05).all()
    # A single chain that drifts is caught by splitting it.
    drift = torch.linspace(0, 5, 1000)[None, :, None] + 0.1 * torch.randn(1, 1000, 1, generator=g)
    assert split_rhat(drift).item() > 1.5


def test_agrees_with_arviz():
    """ArviZ (arviz-stats' array layer) implements the same estimators (Vehtari et al. 2021); the
    truncation of Geyer's sequence differs in small details, so ESS agrees to 3 % (most cases are
    identical to rounding); R̂ agrees to 1e-4 (measured differences are ~1e-5, from conventions of
    the rank/fold transforms), far below the 0.01 that decides convergence."""
    array_stats = pytest.importorskip("arviz_stats.base").array_stats
    for phi, seed in ((0.0, 3), (0.5, 4), (0.9, 5)):
        x = _ar1(4, 1000, phi, seed)
        ours = effective_sample_size(x[..., None]).item()
        theirs = float(array_stats.ess(x.numpy(), chain_axis=0, draw_axis=1, method="bulk"))
        assert abs(ours - theirs) < 0.03 * theirs
        ours_mean = effective_sample_size(x[..., None], rank_normalized=False).item()
        theirs_mean = float(array_stats.ess(x.numpy(), chain_axis=0, draw_axis=1, method="mean"))
        assert abs(ours_mean - theirs_mean) < 0.03 * theirs_mean
        r_ours = split_rhat(x[..., None]).item()
        r_theirs = float(array_stats.rhat(x.numpy(), chain_axis=0, draw_axis=1, method="rank"))
        assert abs(r_ours - r_theirs) < 1e-4


def test_stein_kernel_matches_autograd():
    """k₀(x, y) = s(x)ᵀs(y)k + s(x)ᵀ∇_y k + s(y)ᵀ∇_x k + tr ∇_x∇_y k with all kernel derivatives by
    autograd, for the IMQ kernel and random scores."""
    g = torch.Generator().manual_seed(6)
    d = 3
    x, y = torch.randn(4, d, generator=g, dtype=torch.float64), torch.randn(5, d, generator=g, dtype=torch.float64)
    sx, sy = torch.randn(4, d, generator=g, dtype=torch.float64), torch.randn(5, d, generator=g, dtype=torch.float64)
    c2, beta = 1.3, -0.4
    ours = _imq_stein_kernel(x, y, sx, sy, c2, beta)

    def k(a, b):
        return (c2 + (a - b).pow(2).sum()).pow(beta)

    for i in range(4):
        for j in range(5):
            a, b = x[i].clone().requires_grad_(), y[j].clone().requires_grad_()
            kv = k(a, b)
            ga, gb = torch.autograd.grad(kv, (a, b), create_graph=True)
            trace = sum(torch.autograd.grad(ga[l], b, retain_graph=True)[0][l] for l in range(d))
            expected = (sx[i] @ sy[j]) * kv + sx[i] @ gb + sy[j] @ ga + trace
            torch.testing.assert_close(ours[i, j], expected.detach(), rtol=1e-10, atol=1e-12)


def test_ksd_u_statistic_is_unbiased_at_the_target_and_detects_a_shift():
    """Stein's identity E_p k₀(x, y) = 0 for x, y ~ p independent: the U-statistic of KSD² over
    draws from N(0, I₂) averages to 0 (40 repeats of n = 300; tolerance 4 SE of the mean of
    repeats, from their spread). A sample shifted by 1 has KSD² well above that."""
    g = torch.Generator().manual_seed(7)
    reps = torch.stack([
        kernel_stein_discrepancy(x := torch.randn(300, 2, generator=g, dtype=torch.float64), -x, u_statistic=True)
        for _ in range(40)
    ])
    se = reps.std() / math.sqrt(40)
    assert reps.mean().abs() < 4 * se
    shifted = torch.randn(300, 2, generator=g, dtype=torch.float64) + 1.0
    ksd2_shift = kernel_stein_discrepancy(shifted, lambda x: -x, u_statistic=True)
    assert ksd2_shift > reps.mean() + 20 * reps.std()


def test_ksd_falls_with_sample_size_at_the_target():
    """For exact draws the V-statistic KSD decreases like N^{-1/2} (Gorham & Mackey 2017, §3): from
    N = 100 to 1,600 it falls by roughly 4×; checked as at least 2.5× (averaged over 5 seeds)."""
    def mean_ksd(n):
        vals = []
        for seed in range(5):
            x = torch.randn(n, 2, generator=torch.Generator().manual_seed(100 + seed), dtype=torch.float64)
            vals.append(kernel_stein_discrepancy(x, -x, chunk=512).item())
        return np.mean(vals)
    assert mean_ksd(100) / mean_ksd(1600) > 2.5


def test_chunking_does_not_change_the_result():
    x = torch.randn(500, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    a = kernel_stein_discrepancy(x, -x, chunk=64)
    b = kernel_stein_discrepancy(x, -x, chunk=5000)
    torch.testing.assert_close(a, b, rtol=1e-12, atol=0)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="draws per chain"):
        effective_sample_size(torch.zeros(2, 3))
    with pytest.raises(TypeError, match="chains must be a Tensor"):
        split_rhat([[1.0, 2.0]])
    with pytest.raises(ValueError, match="beta"):
        kernel_stein_discrepancy(torch.zeros(4, 2), torch.zeros(4, 2), beta=0.5)
    with pytest.raises(ValueError, match="score must be"):
        kernel_stein_discrepancy(torch.zeros(4, 2), torch.zeros(3, 2))
