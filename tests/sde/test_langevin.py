"""Langevin samplers against exact stationary laws: ULA's discretisation bias in closed form,
MALA's exact invariance (KS tests), annealed Langevin's mixture weights, BAOAB's exact
configurational variance on Gaussians."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from mathml.distributions import GaussianMixture
from mathml.sde import EDMSDE
from mathml.sde.langevin import annealed_langevin, mala, ula, underdamped_langevin

# KS tests below use level 1e-3 each; there are 7 KS tests in this file, so a correct sampler fails
# this file by chance with probability below 1 % (and never, for the fixed seeds used).
KS_LEVEL = 1e-3


def test_ula_settles_at_its_discretised_variance():
    """π = N(0, s²): x' = (1 − h/s²) x + √(2h) ξ has stationary variance s²/(1 − h/(2s²)), not s².
    20,000 chains after 200 steps (contraction (1 − h/s²)^200 ≈ 1e-9): the sample variance's SE is
    v√(2/n) ≈ 0.011; tolerance 4 SE. The bias (0.111) is ten times that, so s² is rejected."""
    s2, h, n = 1.0, 0.2, 20_000
    g = torch.Generator().manual_seed(0)
    res = ula(lambda x: -x / s2, torch.zeros(n, 1, dtype=torch.float64), step_size=h, n_steps=200, generator=g)
    v = res.x.var().item()
    predicted = s2 / (1 - h / (2 * s2))
    se = predicted * math.sqrt(2 / (n - 1))
    assert abs(v - predicted) < 4 * se
    assert abs(v - s2) > 4 * se


def _banana_log_prob(a: float = 1.0, b: float = 0.5):
    """Haario et al. (1999) banana: x₁ ~ N(0, a²), x₂ | x₁ ~ N(b (x₁² − a²), 1)."""
    def log_prob(x):
        x1, x2 = x[:, 0], x[:, 1]
        return -0.5 * x1**2 / a**2 - 0.5 * (x2 - b * (x1**2 - a**2)) ** 2
    return log_prob


def _banana_sample(n, g, a=1.0, b=0.5):
    x1 = a * torch.randn(n, generator=g, dtype=torch.float64)
    x2 = b * (x1**2 - a**2) + torch.randn(n, generator=g, dtype=torch.float64)
    return torch.stack([x1, x2], 1)


def test_mala_keeps_a_gaussian_exactly_where_ula_does_not():
    """Start 5,000 independent chains at exact draws of π = N(0, 1) and take 20 steps with a large
    step (h = 0.8): a π-invariant kernel leaves them exactly π-distributed (KS test, level 1e-3);
    ULA at the same h drifts to variance 1/(1 − 0.4) and is rejected."""
    n, h = 5_000, 0.8
    g = torch.Generator().manual_seed(1)
    x0 = torch.randn(n, 1, generator=g, dtype=torch.float64)
    res = mala(lambda x: -0.5 * x.pow(2).sum(1), x0, step_size=h, n_steps=20, generator=g)
    assert stats.kstest(res.x[:, 0].numpy(), "norm").pvalue > KS_LEVEL
    assert 0.2 < res.acceptance_rate.mean().item() < 0.95
    bad = ula(lambda x: -x, x0, step_size=h, n_steps=20, generator=g)
    assert stats.kstest(bad.x[:, 0].numpy(), "norm").pvalue < KS_LEVEL


def test_mala_keeps_the_banana_exactly():
    """The banana's two exact 1-D laws: x₁ ~ N(0, 1) and x₂ − b(x₁² − 1) ~ N(0, 1) (KS, level 1e-3)."""
    n = 5_000
    g = torch.Generator().manual_seed(2)
    res = mala(_banana_log_prob(), _banana_sample(n, g), step_size=0.3, n_steps=30, generator=g)
    x1, x2 = res.x[:, 0], res.x[:, 1]
    assert stats.kstest(x1.numpy(), "norm").pvalue > KS_LEVEL
    assert stats.kstest((x2 - 0.5 * (x1**2 - 1)).numpy(), "norm").pvalue > KS_LEVEL


def test_mala_keeps_a_mixture_exactly():
    """1-D mixture 0.3 N(−2, 0.5²) + 0.7 N(1, 1): KS against its exact CDF (level 1e-3)."""
    gm = GaussianMixture(torch.tensor([0.3, 0.7], dtype=torch.float64),
                         torch.tensor([[-2.0], [1.0]], dtype=torch.float64),
                         torch.tensor([0.25, 1.0], dtype=torch.float64))
    g = torch.Generator().manual_seed(3)
    res = mala(gm.log_prob, gm.sample(5_000, generator=g), step_size=0.5, n_steps=30, generator=g)

    def cdf(x):
        return 0.3 * stats.norm.cdf(x, -2.0, 0.5) + 0.7 * stats.norm.cdf(x, 1.0, 1.0)

    assert stats.kstest(res.x[:, 0].numpy(), cdf).pvalue > KS_LEVEL


def test_mala_adapts_during_burn_in_only_and_reaches_the_target_rate():
    """From a poor h = 5 on N(0, I₁₀), Robbins–Monro tuning during 300 burn-in steps brings the
    acceptance rate after burn-in near 0.574 (±0.1 over 200 chains × 300 steps: the rate's SE is
    about 0.003, the slack covers the tuning's own noise); the step size is frozen after burn-in."""
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(200, 10, generator=g, dtype=torch.float64)
    res = mala(lambda x: -0.5 * x.pow(2).sum(1), x0, step_size=5.0, n_steps=600, burn_in=300, adapt=True,
               generator=g, thin=10)
    assert abs(res.acceptance_rate.mean().item() - 0.574) < 0.1
    assert res.chain.shape == (200, 30, 10)
    assert bool((res.step_size < 5.0).all())
    # A kernel with frozen h leaves N(0, I) invariant: the kept draws' variance is 1 within 5 SE
    # (6,000 correlated draws per coordinate; SE inflated ×3 for autocorrelation, stated).
    v = res.chain.var().item()
    assert abs(v - 1.0) < 5 * 3 * math.sqrt(2 / res.chain.numel())


@pytest.mark.slow
def test_annealed_langevin_recovers_unbalanced_weights_where_plain_langevin_does_not():
    """Song & Ermon 2019, §3.2 and Fig. 3: 0.8 N((−5, −5), I) + 0.2 N((5, 5), I), chains started
    uniformly in [−8, 8]². Plain Langevin with the exact score keeps each chain in its starting
    basin (about half per mode); annealed Langevin with the exact perturbed scores s(x, σ) (the
    mixture convolved with N(0, σ²I): EDMSDE's marginal at t = σ) puts 0.8 ± 0.03 (3 SE of a
    proportion over 4,000 chains ≈ 0.019) in the heavy mode."""
    gm = GaussianMixture(torch.tensor([0.8, 0.2], dtype=torch.float64),
                         torch.tensor([[-5.0, -5.0], [5.0, 5.0]], dtype=torch.float64),
                         torch.tensor([1.0, 1.0], dtype=torch.float64))
    sde = EDMSDE(sigma_min=0.01, sigma_max=50.0)
    g = torch.Generator().manual_seed(5)
    n = 4_000
    x0 = 16 * torch.rand(n, 2, generator=g, dtype=torch.float64) - 8
    sigmas = torch.logspace(math.log10(20.0), math.log10(0.1), 10, dtype=torch.float64)
    ann = annealed_langevin(lambda x, s: gm.score_at(x, s, sde), x0, sigmas, step_lr=5e-3, n_steps_each=100,
                            generator=g)
    heavy = (ann.x.sum(1) < 0).double().mean().item()
    assert abs(heavy - 0.8) < 0.03
    plain = ula(gm.score, x0, step_size=0.1, n_steps=1_000, generator=g)
    plain_heavy = (plain.x.sum(1) < 0).double().mean().item()
    assert abs(plain_heavy - 0.5) < 0.05


def test_baoab_samples_gaussian_positions_exactly_at_large_steps():
    """BAOAB on π = N(0, s²) has exactly π as the stationary law of x at any stable h
    (Leimkuhler & Matthews 2013, §4.1): at h = 1, s = 1, 20,000 chains after 300 steps the variance is
    1 within 4 SE (SE = √(2/n) ≈ 0.01), where ULA at the same h would give 2."""
    n = 20_000
    g = torch.Generator().manual_seed(6)
    res = underdamped_langevin(lambda x: -x, torch.zeros(n, 1, dtype=torch.float64), step_size=1.0, n_steps=300,
                               friction=1.0, generator=g)
    assert abs(res.x.var().item() - 1.0) < 4 * math.sqrt(2 / n)
    assert stats.kstest(res.x[:, 0].numpy(), "norm").pvalue > KS_LEVEL


def test_results_have_the_shapes_of_the_chains():
    g = torch.Generator().manual_seed(7)
    x0 = torch.randn(6, 2, 3)
    r = ula(lambda x: -x, x0, step_size=0.1, n_steps=10, burn_in=4, thin=2, generator=g)
    assert r.x.shape == x0.shape and r.chain.shape == (6, 3, 2, 3)
    r = underdamped_langevin(lambda x: -x, x0, step_size=0.1, n_steps=5, generator=g)
    assert r.v.shape == x0.shape and r.chain is None


def test_same_generator_seed_gives_the_same_chains():
    x0 = torch.zeros(4, 2)
    a = mala(lambda x: -x.pow(2).sum(1), x0, step_size=0.3, n_steps=5, generator=torch.Generator().manual_seed(9))
    b = mala(lambda x: -x.pow(2).sum(1), x0, step_size=0.3, n_steps=5, generator=torch.Generator().manual_seed(9))
    assert torch.equal(a.x, b.x)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ula(lambda x: -x, torch.zeros(3, 1), step_size=0.0, n_steps=5), "step_size"),
        (lambda: ula(lambda x: -x, torch.zeros(3, 1), step_size=0.1, n_steps=0), "n_steps"),
        (lambda: ula(lambda x: -x, torch.zeros(3, 1), step_size=0.1, n_steps=5, burn_in=5, thin=1), "burn_in"),
        (lambda: mala(lambda x: -x.sum(1), torch.zeros(3, 1), step_size=0.1, n_steps=5, adapt=True), "burn_in > 0"),
        (lambda: mala(lambda x: -x, torch.zeros(3, 1), step_size=0.1, n_steps=5), r"log_prob\(x\) must return"),
        (lambda: annealed_langevin(lambda x, s: -x, torch.zeros(3, 1), [0.1, 1.0]), "decreasing"),
        (lambda: underdamped_langevin(lambda x: -x, torch.zeros(3, 1), step_size=0.1, n_steps=2,
                                      v0=torch.zeros(2, 1)), "v0"),
    ],
)
def test_bad_arguments_are_refused(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
