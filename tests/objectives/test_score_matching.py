"""Denoising score matching and the parametrisation adapters, checked against closed forms.

Gaussian data x₀ ~ N(m, s² I) in D dims have the exact diffused score, so the DSM loss at that
score has an analytic floor (derived in mathml/objectives/denoising.py):
E‖σ s + ε‖² = D α² s² / (α² s² + σ²). Monte-Carlo checks fix their seed and use a tolerance of
4 standard errors of the sample mean (a false failure has probability ≈ 6e-5).
"""

import math

import pytest
import torch

from mathml.distributions.gaussian_mixture import GaussianMixture
from mathml.objectives import (
    DataPrediction,
    DenoisingScoreMatching,
    EDMPreconditioning,
    EDMWeighting,
    EpsilonPrediction,
    LikelihoodWeighting,
    LogNormalNoiseTime,
    LogSNRUniformTime,
    SigmaSquaredWeighting,
    UniformTime,
    VelocityPrediction,
    data_from_score,
    edm_coefficients,
    edm_output_from_score,
    epsilon_from_score,
    score_from_data,
    score_from_epsilon,
    score_from_velocity,
    velocity_from_score,
)
from mathml.sde import EDMSDE, VESDE, VPSDE, SubVPSDE

DT = torch.float64
SDES = [VPSDE(), SubVPSDE(), VESDE(sigma_min=0.01, sigma_max=20.0), EDMSDE(sigma_min=0.002, sigma_max=20.0)]
IDS = ["vp", "subvp", "ve", "edm"]


def gaussian(d=3, m=0.7, s=1.3):
    return GaussianMixture(torch.ones(1, dtype=DT), torch.full((1, d), m, dtype=DT), torch.tensor([s * s], dtype=DT))


def mc_close(samples, expected, k=4.0):
    mean, se = samples.mean().item(), samples.std().item() / math.sqrt(samples.numel())
    assert abs(mean - expected) < k * se + 1e-12, (mean, expected, se)


@pytest.mark.parametrize("sde", SDES, ids=IDS)
@pytest.mark.parametrize("frac", [0.05, 0.4, 0.9])
def test_dsm_loss_at_exact_score_is_the_analytic_floor(sde, frac):
    d, s, n = 3, 1.3, 20000
    gm, g = gaussian(d, s=s), torch.Generator().manual_seed(0)
    dsm = DenoisingScoreMatching(sde, weighting=SigmaSquaredWeighting())
    t = torch.full((n,), sde.t_min + frac * (sde.T - sde.t_min), dtype=DT)
    x0, eps = gm.sample(n, generator=g), torch.randn(n, d, generator=g, dtype=DT)
    out = dsm.terms_at(gm.score_fn(sde), x0, t, eps)
    alpha, sigma = sde.alpha_sigma(t[0])
    floor = d * alpha**2 * s**2 / (alpha**2 * s**2 + sigma**2)
    torch.testing.assert_close(out["weight"], torch.ones_like(t))  # λ = σ²: w = λ/σ² = 1
    mc_close(out["loss"], floor.item())
    # A constant score offset δ adds exactly σ² D δ² in expectation (the cross term has mean 0).
    delta = 0.3
    shifted = dsm.terms_at(lambda x, tt: gm.score_fn(sde)(x, tt) + delta, x0, t, eps)
    mc_close(shifted["loss"], (floor + sigma**2 * d * delta**2).item())


def _softplus(v):
    return math.log1p(math.exp(v)) if v < 30 else v


@pytest.mark.parametrize("sde", [VPSDE(), VESDE(sigma_min=0.01, sigma_max=20.0)], ids=["vp", "ve"])
def test_likelihood_weighting_importance_sampled_matches_uniform_time_and_the_closed_form(sde):
    # With λ = g² and the exact score of N(m, s² I): E_{t~U}[(g²/σ²) floor(t)] = (1/(T − t_min)) ∫ floor dλ
    # with floor = D sigmoid(λ + 2 ln s) (since α²/σ² = e^λ), so the integral is D [softplus]_{λ_T}^{λ_min}.
    d, s, n = 2, 0.8, 40000
    gm = gaussian(d, s=s)
    t_min = 1e-3
    lam_T, lam_0 = sde.log_snr(torch.tensor([sde.T, t_min], dtype=DT)).tolist()
    exact = d * (_softplus(lam_0 + 2 * math.log(s)) - _softplus(lam_T + 2 * math.log(s))) / (sde.T - t_min)
    x0 = gm.sample(n, generator=torch.Generator().manual_seed(1))
    uniform = DenoisingScoreMatching(sde, weighting=LikelihoodWeighting(), t_min=t_min)
    sampled = DenoisingScoreMatching(sde, weighting=LikelihoodWeighting(), time_distribution=LogSNRUniformTime(),
                                     t_min=t_min, importance_weighted=True)
    lu = uniform(gm.score_fn(sde), x0, generator=torch.Generator().manual_seed(2))["loss"]
    out = sampled(gm.score_fn(sde), x0, generator=torch.Generator().manual_seed(3))
    mc_close(lu, exact)
    mc_close(out["loss"], exact)
    # The importance weight is the constant (λ_min − λ_T)/(T − t_min), and it cuts the variance.
    torch.testing.assert_close(out["weight"], torch.full_like(out["weight"], (lam_0 - lam_T) / (sde.T - t_min)))
    assert out["loss"].var() < 0.5 * lu.var()
    assert bool(((out["t"] >= t_min) & (out["t"] <= sde.T)).all())


@pytest.mark.parametrize("sde", [VPSDE(), EDMSDE()], ids=["vp", "edm"])
def test_edm_weighting_gives_karras_loss_on_the_denoiser(sde):
    # loss = λ(σ̃) ‖D_θ(x̃; σ̃) − x₀‖² with λ(σ̃) = (σ̃² + σ_d²)/(σ̃ σ_d)² (Karras et al. 2022, Table 1).
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 3)).to(DT)
    model = EDMPreconditioning(lambda x, c: net(x) * (1 + c[:, None]), sde, sigma_data=0.5)
    dsm = DenoisingScoreMatching(sde, weighting=EDMWeighting(0.5), time_distribution=LogNormalNoiseTime())
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(64, 3, generator=g, dtype=DT)
    out = dsm(model, x0, generator=g)
    eps = torch.randn(64, 3, generator=torch.Generator().manual_seed(9), dtype=DT)
    out = dsm.terms_at(model, x0, out["t"], eps)
    alpha, sigma = sde.alpha_sigma(out["t"])
    x_t = alpha[:, None] * x0 + sigma[:, None] * eps
    st = sigma / alpha
    karras = (st**2 + 0.25) / (st * 0.5) ** 2 * (model.denoise(x_t, out["t"]) - x0).pow(2).sum(1)
    torch.testing.assert_close(out["loss"], karras)


def test_lognormal_time_distribution_matches_ln_sigma_moments():
    sde = EDMSDE(sigma_min=1e-4, sigma_max=1e4)  # wide enough that clamping is negligible
    t = LogNormalNoiseTime(-1.2, 1.2).sample(sde, 20000, sde.t_min, generator=torch.Generator().manual_seed(0), dtype=DT)
    ln = torch.log(t)
    mc_close(ln, -1.2)
    assert abs(ln.std().item() - 1.2) < 4 * 1.2 / math.sqrt(2 * 20000)  # SE of a sample std ≈ σ/√(2n)


@pytest.mark.parametrize("dist", [UniformTime(), LogSNRUniformTime(), LogNormalNoiseTime()], ids=repr)
@pytest.mark.parametrize("sde", [VPSDE(), VESDE()], ids=["vp", "ve"])
def test_time_density_integrates_to_one(dist, sde):
    # Trapezoid rule in λ (the densities are smooth there): ∫ q(t) dt = ∫ q(t) σ²/g² dλ.
    t_min = 1e-3
    lam = torch.linspace(*sde.log_snr(torch.tensor([sde.T, t_min], dtype=DT)).tolist(), 200001, dtype=DT)
    t = sde.t_from_log_snr(lam)
    integrand = dist.density(sde, t, t_min) * sde.alpha_sigma(t)[1] ** 2 / sde.diffusion_squared(t)
    mass = torch.trapezoid(integrand, lam).item()
    if isinstance(dist, LogNormalNoiseTime):  # the clamped tails are atoms outside the density
        lo, hi = (torch.log(sde.alpha_sigma(torch.tensor([t_min, sde.T], dtype=DT))[1]) -
                  torch.log(sde.alpha_sigma(torch.tensor([t_min, sde.T], dtype=DT))[0]))
        normal = torch.distributions.Normal(-1.2, 1.2)
        expected = (normal.cdf(hi) - normal.cdf(lo)).item()
    else:
        expected = 1.0
    assert abs(mass - expected) < 1e-6


# -- parametrisations ----------------------------------------------------------------------------
@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_conversions_recover_the_true_noise_and_round_trip(sde):
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(16, 4, generator=g, dtype=DT), torch.randn(16, 4, generator=g, dtype=DT)
    t = sde.t_min + (sde.T - sde.t_min) * torch.rand(16, generator=g, dtype=DT)
    alpha, sigma = sde.alpha_sigma(t)
    x_t = alpha[:, None] * x0 + sigma[:, None] * eps
    target = -eps / sigma[:, None]  # the conditional score (Song et al. 2021, eq. 7)
    v = alpha[:, None] * eps - sigma[:, None] * x0  # Salimans & Ho 2022, §4
    torch.testing.assert_close(score_from_epsilon(eps, sigma), target)
    torch.testing.assert_close(score_from_data(x_t, x0, alpha, sigma), target, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(score_from_velocity(x_t, v, alpha, sigma), target, rtol=1e-9, atol=1e-9)
    s = torch.randn(16, 4, generator=g, dtype=DT)
    torch.testing.assert_close(score_from_epsilon(epsilon_from_score(s, sigma), sigma), s)
    torch.testing.assert_close(score_from_data(x_t, data_from_score(x_t, s, alpha, sigma), alpha, sigma), s,
                               rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(score_from_velocity(x_t, velocity_from_score(x_t, s, alpha, sigma), alpha, sigma), s,
                               rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(velocity_from_score(x_t, target, alpha, sigma), v, rtol=1e-8, atol=1e-8)
    torch.testing.assert_close(data_from_score(x_t, target, alpha, sigma), x0, rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("sde", SDES, ids=IDS)
def test_wrappers_turn_oracle_predictions_into_the_exact_score(sde):
    # Networks that return the exact ε̂, x̂₀, v̂ (or EDM's F) of a Gaussian's posterior give the exact score.
    gm = gaussian(2, m=0.3, s=0.9)
    score = gm.score_fn(sde)
    g = torch.Generator().manual_seed(0)
    t = sde.t_min + (sde.T - sde.t_min) * torch.rand(8, generator=g, dtype=DT)
    alpha, sigma = sde.alpha_sigma(t)
    x = alpha[:, None] * gm.sample(8, generator=g) + sigma[:, None] * torch.randn(8, 2, generator=g, dtype=DT)
    exact = score(x, t)

    def eps_net(x, t):
        return epsilon_from_score(score(x, t), sde.alpha_sigma(t)[1])

    def x0_net(x, t):
        return data_from_score(x, score(x, t), *sde.alpha_sigma(t))

    def v_net(x, t):
        return velocity_from_score(x, score(x, t), *sde.alpha_sigma(t))

    for model in (EpsilonPrediction(eps_net, sde), DataPrediction(x0_net, sde), VelocityPrediction(v_net, sde)):
        torch.testing.assert_close(model(x, t), exact, rtol=1e-8, atol=1e-8)
        torch.testing.assert_close(model.denoise(x, t), data_from_score(x, exact, alpha, sigma), rtol=1e-8, atol=1e-8)

    # EDM: F = (D − c_skip x̃)/c_out with D the exact denoiser, received at (c_in x̃, ¼ ln σ̃).
    sd = 0.5

    def edm_net(x_in, c_noise):
        st = torch.exp(4 * c_noise)  # c_noise = ¼ ln σ̃
        t_ = sde.t_from_log_snr(-2 * torch.log(st))
        a, sg = sde.alpha_sigma(t_)
        x_noisy = a[:, None] * x_in / edm_coefficients(st, sd)[2][:, None]  # x = α x̃, x̃ = x_in / c_in
        return edm_output_from_score(x_noisy, score(x_noisy, t_), a, sg, sd)

    torch.testing.assert_close(EDMPreconditioning(edm_net, sde, sigma_data=sd)(x, t), exact, rtol=1e-7, atol=1e-7)


def test_edm_preconditioner_feeds_the_network_karras_inputs_for_vp():
    sde, seen = VPSDE(), {}

    def net(x_in, c_noise):
        seen["x"], seen["c"] = x_in, c_noise
        return torch.zeros_like(x_in)

    x, t = torch.randn(5, 3, dtype=DT), torch.linspace(0.1, 0.9, 5, dtype=DT)
    model = EDMPreconditioning(net, sde, sigma_data=0.5)
    alpha, sigma = sde.alpha_sigma(t)
    st = sigma / alpha
    denoised = model.denoise(x, t)
    torch.testing.assert_close(seen["c"], 0.25 * torch.log(st))
    torch.testing.assert_close(seen["x"], (x / alpha[:, None]) / torch.sqrt(st**2 + 0.25)[:, None])
    torch.testing.assert_close(denoised, 0.25 / (st**2 + 0.25)[:, None] * x / alpha[:, None])  # F = 0: D = c_skip x̃


def test_edm_coefficients_match_table_1_and_unit_variance_conditions():
    # Table 1 ("Ours") and the conditions they are derived from (Karras et al. 2022, App. B.6):
    # Var(c_in (x₀ + σ n)) = 1, Var((x₀ − c_skip (x₀ + σ n)) / c_out) = 1 for Var x₀ = σ_d², and c_noise = ¼ ln σ.
    sigma, sd = torch.logspace(-3, 2, 50, dtype=DT), 0.5
    c_skip, c_out, c_in, c_noise = edm_coefficients(sigma, sd)
    torch.testing.assert_close(c_in**2 * (sd**2 + sigma**2), torch.ones_like(sigma))
    torch.testing.assert_close(((1 - c_skip) ** 2 * sd**2 + c_skip**2 * sigma**2) / c_out**2, torch.ones_like(sigma))
    torch.testing.assert_close(c_noise, torch.log(sigma) / 4)
    # c_skip minimises c_out (App. B.6): ∂/∂c_skip of the target variance vanishes there.
    torch.testing.assert_close(-(1 - c_skip) * sd**2 + c_skip * sigma**2, torch.zeros_like(sigma), rtol=0, atol=1e-12)


def test_dsm_validates_its_arguments():
    sde = VPSDE()
    with pytest.raises(TypeError, match="sde"):
        DenoisingScoreMatching("vp")
    with pytest.raises(TypeError, match="weighting"):
        DenoisingScoreMatching(sde, weighting="sigma2")
    with pytest.raises(TypeError, match="time_distribution"):
        DenoisingScoreMatching(sde, time_distribution="uniform")
    with pytest.raises(ValueError, match="t_min"):
        DenoisingScoreMatching(sde, t_min=2.0)
    with pytest.raises(ValueError, match="shape"):
        DenoisingScoreMatching(sde)(lambda x, t: x[:, :1], torch.randn(4, 2))
    with pytest.raises(ValueError, match="x0"):
        DenoisingScoreMatching(sde)(lambda x, t: x, torch.randn(4))
    with pytest.raises(ValueError, match="net"):
        EpsilonPrediction(lambda x, t: x[:, :1], sde)(torch.randn(4, 2), torch.full((4,), 0.5))


def test_dsm_is_reproducible_and_differentiable():
    sde = VPSDE()
    net = torch.nn.Linear(2, 2)
    model = EpsilonPrediction(lambda x, t: net(x), sde)
    x0 = torch.randn(32, 2)
    a = DenoisingScoreMatching(sde)(model, x0, generator=torch.Generator().manual_seed(5))
    b = DenoisingScoreMatching(sde)(model, x0, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a["loss"], b["loss"])
    assert a["loss"].shape == (32,) and a["loss"].dtype == torch.float32
    a["loss"].mean().backward()
    assert net.weight.grad is not None and bool(torch.isfinite(net.weight.grad).all())
