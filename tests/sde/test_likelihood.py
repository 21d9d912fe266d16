"""log_likelihood against the exact log-density of diffused Gaussian mixtures.

With the mixture's exact score and its exact marginal at T as the prior, the probability-flow
likelihood equals GaussianMixture.marginal(sde, t_min).log_prob(x) up to the ODE solver's error;
at rtol = atol = 1e-6 in float64 that is well below the 1e-4 nats required (ENV.md gotcha 13).
Hutchinson checks use many independent probe draws of the same points in one batch (each row its
own probes), fixed seeds, and tolerances of 4 standard errors.
"""

import math

import pytest
import torch

from mathml.distributions.gaussian_mixture import GaussianMixture
from mathml.metrics.nll import dequantized_bits_per_dim
from mathml.objectives import GaussianProjection
from mathml.sde import EDMSDE, VESDE, VPSDE, log_likelihood, log_prob_to_bits_per_dim, uniform_dequantize

DT = torch.float64


def mixture(d, seed=0):
    g = torch.Generator().manual_seed(seed)
    means = 1.5 * torch.randn(3, d, generator=g, dtype=DT)
    a = 0.4 * torch.randn(3, d, d, generator=g, dtype=DT)
    cov = a @ a.transpose(-1, -2) + 0.1 * torch.eye(d, dtype=DT)
    return GaussianMixture(torch.tensor([0.2, 0.3, 0.5], dtype=DT), means, cov)


@pytest.mark.parametrize("d", [2, 5])
@pytest.mark.parametrize("sde", [VPSDE(t_min=1e-5), VESDE(sigma_min=0.01, sigma_max=20.0, t_min=1e-5),
                                 EDMSDE(sigma_min=0.002, sigma_max=20.0)], ids=["vp", "ve", "edm"])
def test_exact_score_and_prior_give_the_exact_log_density(d, sde):
    gm = mixture(d)
    x = gm.sample(8, generator=torch.Generator().manual_seed(1))
    res = log_likelihood(sde, gm.score_fn(sde), x, exact_trace=True, rtol=1e-6, atol=1e-6,
                         prior_log_prob=gm.marginal(sde, sde.T).log_prob)
    exact = gm.marginal(sde, sde.t_min).log_prob(x)
    assert (res.log_prob - exact).abs().max().item() < 1e-4
    torch.testing.assert_close(res.log_prob, res.prior_log_prob + res.delta_log_prob)
    assert res.latent.shape == x.shape and res.nfe > 0
    # The latent is the data carried to T by the flow: under the exact prior it has the right density scale.
    assert res.log_prob.dtype == DT


def _hutchinson_draws(n_probes, reps=400, probe=None):
    sde, gm = VPSDE(t_min=1e-3), mixture(2, seed=3)
    x = gm.sample(3, generator=torch.Generator().manual_seed(4))
    prior = gm.marginal(sde, sde.T).log_prob
    exact = log_likelihood(sde, gm.score_fn(sde), x, exact_trace=True, prior_log_prob=prior, rtol=1e-7, atol=1e-7)
    res = log_likelihood(sde, gm.score_fn(sde), x.repeat(reps, 1), n_probes=n_probes, probe=probe, rtol=1e-7,
                         atol=1e-7, prior_log_prob=prior, generator=torch.Generator().manual_seed(5 + n_probes))
    return res.log_prob.reshape(reps, 3), exact.log_prob


@pytest.mark.parametrize("probe", [None, GaussianProjection()], ids=["rademacher", "gaussian"])
def test_hutchinson_is_unbiased(probe):
    draws, exact = _hutchinson_draws(1, probe=probe)
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(draws.shape[0])
    assert bool((se > 0).all())
    assert bool(((mean - exact).abs() < 4 * se).all()), (mean - exact, se)


def test_hutchinson_variance_falls_as_one_over_n_probes():
    # With probes fixed along the path the estimate is εᵀ(∫J dt)ε, so n probes average n i.i.d. copies:
    # Var_n = Var_1 / n exactly. Pooled over 3 points × 400 draws the sample-variance ratio has relative
    # SE ≈ √(2/1197 + 2/1197) ≈ 0.058, so 4 SE ≈ 23 %.
    d1, _ = _hutchinson_draws(1)
    d4, _ = _hutchinson_draws(4)
    ratio = (d1.var(0).sum() / d4.var(0).sum()).item()
    assert abs(ratio / 4.0 - 1.0) < 0.23, ratio


def test_per_sample_error_control_bounds_the_worst_point():
    # A batch with one hard point: batch-RMS error control lets it drift, the per-sample norm does not.
    sde, gm = VPSDE(t_min=1e-5), mixture(3, seed=1)
    x = gm.sample(64, generator=torch.Generator().manual_seed(2))
    prior, exact = gm.marginal(sde, sde.T).log_prob, gm.marginal(sde, sde.t_min).log_prob(x)
    errs = {}
    for per_sample in (False, True):
        r = log_likelihood(sde, gm.score_fn(sde), x, exact_trace=True, prior_log_prob=prior, rtol=1e-4, atol=1e-4,
                           per_sample_error=per_sample)
        errs[per_sample] = (r.log_prob - exact).abs().max().item()
    assert errs[True] < errs[False], errs


def test_bits_per_dim_of_the_uniform_density_is_log2_levels():
    # The uniform density on [−1, 1)^D (log p = −D ln 2) induces the uniform distribution on the L^D values:
    # its code length is exactly log₂ L bits per dimension.
    d, levels = 12, 256
    log_p = torch.full((3,), -d * math.log(2.0), dtype=DT)
    torch.testing.assert_close(log_prob_to_bits_per_dim(log_p, num_dims=d, num_levels=levels, scale=2.0),
                               torch.full((3,), 8.0, dtype=DT))
    # scale 1 (data left on [0, 1)): the uniform density there has log p = 0 and the same code length.
    torch.testing.assert_close(log_prob_to_bits_per_dim(torch.zeros(2, dtype=DT), num_dims=d, num_levels=levels,
                                                        scale=1.0), torch.full((2,), 8.0, dtype=DT))
    # and the composition with mathml.metrics is the documented one: nll on [0, 1) = −log p − D ln scale.
    torch.testing.assert_close(log_prob_to_bits_per_dim(log_p, num_dims=d, num_levels=levels),
                               dequantized_bits_per_dim(-log_p - d * math.log(2.0), d, levels))


def test_dequantised_bits_per_dim_bounds_the_discrete_code_length():
    # 1-D Gaussian density on the [−1, 1)-scaled data; cells of width 2/L. E_u over a fine midpoint rule.
    levels, normal = 16, torch.distributions.Normal(torch.tensor(0.1, dtype=DT), torch.tensor(0.4, dtype=DT))
    k = torch.arange(levels, dtype=DT)
    u = (torch.arange(2000, dtype=DT) + 0.5) / 2000
    x = 2.0 * (k[:, None] + u[None]) / levels - 1.0
    bpd = log_prob_to_bits_per_dim(normal.log_prob(x), num_dims=1, num_levels=levels).mean(1)
    lo, hi = 2.0 * k / levels - 1.0, 2.0 * (k + 1) / levels - 1.0
    discrete = -torch.log(normal.cdf(hi) - normal.cdf(lo)) / math.log(2.0)
    assert bool((bpd >= discrete - 1e-9).all())  # Jensen: the dequantised value bounds the code length
    assert (bpd - discrete)[4:12].max() < 0.05  # and is tight where the density is smooth on a cell


def test_uniform_dequantize_stays_in_its_cell():
    levels = 17
    x = torch.arange(levels, dtype=DT).repeat(10) / (levels - 1)
    y = uniform_dequantize(x, levels, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(torch.floor(y * levels), torch.round(x * (levels - 1)))


def test_log_likelihood_runs_under_inference_mode():
    # Lightning's test loop runs in inference mode; the divergence still needs autograd.
    sde, gm = VPSDE(), mixture(2)
    x = gm.sample(4, generator=torch.Generator().manual_seed(0))
    ref = log_likelihood(sde, gm.score_fn(sde), x, exact_trace=True, rtol=1e-6, atol=1e-6)
    with torch.inference_mode():
        x_inf = x.clone()
        res = log_likelihood(sde, gm.score_fn(sde), x_inf, exact_trace=True, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(res.log_prob, ref.log_prob)


def test_log_likelihood_validates_its_arguments():
    sde, gm = VPSDE(), mixture(2)
    x, score = gm.sample(2), gm.score_fn(sde)
    with pytest.raises(ValueError, match="n_probes"):
        log_likelihood(sde, score, x, n_probes=0)
    with pytest.raises(ValueError, match="t_min"):
        log_likelihood(sde, score, x, t_min=1.5)
    with pytest.raises(TypeError, match="probe"):
        log_likelihood(sde, score, x, probe="rademacher")
    with pytest.raises(TypeError, match="sde"):
        log_likelihood("vp", score, x)
    with pytest.raises(TypeError, match="prior_log_prob"):
        log_likelihood(sde, score, x, prior_log_prob=3)
    with pytest.raises(ValueError, match="x"):
        log_likelihood(sde, score, x[0])
    with pytest.raises(ValueError, match="num_levels"):
        uniform_dequantize(x, 1)
