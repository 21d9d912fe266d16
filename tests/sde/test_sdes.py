"""The four linear SDEs against their own definitions: transition coefficients vs the moment ODEs,
simulated forward-SDE moments vs ``marginal``, log-SNR inverses, priors, and the probability-flow
map of Gaussian data against its closed form."""

from __future__ import annotations

import math

import pytest
import torch
import torchdiffeq
import torchsde

from mathml.sde import EDMSDE, VESDE, VPSDE, SubVPSDE, append_dims, probability_flow, reverse_sde

SDES = {
    "vp": lambda: VPSDE(),
    "subvp": lambda: SubVPSDE(beta_min=0.2, beta_max=15.0),
    "ve": lambda: VESDE(sigma_min=0.05, sigma_max=20.0),
    "edm": lambda: EDMSDE(sigma_min=0.002, sigma_max=10.0),
}


@pytest.fixture(params=sorted(SDES))
def sde(request):
    return SDES[request.param]()


def _derivative(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """dy/dt elementwise by autograd; a y that does not depend on t (α = 1 for VE/EDM) has derivative 0."""
    if not y.requires_grad:
        return torch.zeros_like(t)
    return torch.autograd.grad(y.sum(), t, retain_graph=True)[0]


def test_transition_solves_the_moment_odes(sde):
    """For dx = f x dt + g dw: d log α/dt = f and dσ²/dt = 2 f σ² + g² (Särkkä & Solin 2019, eq. 6.2);
    checked by autograd in float64 at interior times, with α_0 = 1 and σ_0 = 0."""
    t = torch.linspace(0.05, 0.95, 19, dtype=torch.float64).mul(sde.T).requires_grad_()
    alpha, sigma = sde.alpha_sigma(t)
    dlog_alpha, dvar = (_derivative(y, t) for y in (torch.log(alpha), sigma**2))
    f, g2 = sde.drift_coefficient(t).detach(), sde.diffusion_squared(t).detach()
    torch.testing.assert_close(dlog_alpha, f, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dvar, 2 * f * sigma.detach() ** 2 + g2, rtol=1e-10, atol=1e-12)
    a0, s0 = sde.alpha_sigma(torch.zeros(1, dtype=torch.float64))
    assert a0.item() == 1.0 and s0.item() == 0.0


def test_log_snr_inverse_and_monotone(sde):
    t = torch.linspace(0.01, 1.0, 200, dtype=torch.float64) * sde.T
    lam = sde.log_snr(t)
    assert bool((lam[1:] < lam[:-1]).all()), "log-SNR must decrease in t"
    torch.testing.assert_close(sde.t_from_log_snr(lam), t, rtol=1e-10, atol=1e-12)
    alpha, sigma = sde.alpha_sigma(t)
    torch.testing.assert_close(lam, torch.log(alpha**2 / sigma**2), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("frac", [0.3, 1.0])
def test_forward_simulation_matches_marginal(sde, frac):
    """Euler–Maruyama paths of the forward SDE from a fixed x₀ (through the torchsde-protocol methods
    ``f`` and ``g``) have the mean α_t x₀ and variance σ_t² of ``marginal``.

    Tolerance: the scheme's own weak bias, computed exactly from its moment recursion
    m ← (1 + f h) m, v ← (1 + f h)² v + g² h, plus 4 standard errors of the n = 8,000-path estimates
    (σ/√n for the mean, σ²√(2/(n−1)) for the variance): a false failure about once in 10⁴ runs per
    check."""
    n, steps = 8_000, 400
    g = torch.Generator().manual_seed(7)
    x0 = torch.tensor([[1.5, -0.5]], dtype=torch.float64)
    x = x0.expand(n, 2).clone()
    t_end = frac * sde.T
    h = t_end / steps
    m_k, v_k = x0[0].clone(), torch.zeros((), dtype=torch.float64)
    for i in range(steps):
        t = torch.tensor(i * h, dtype=torch.float64)
        dw = math.sqrt(h) * torch.randn(n, 2, generator=g, dtype=torch.float64)
        x = x + sde.f(t, x) * h + sde.g(t, x) * dw
        a = 1 + sde.drift_coefficient(t) * h
        m_k, v_k = a * m_k, a**2 * v_k + sde.diffusion_squared(t) * h
    mean, std = sde.marginal(x0, t_end)
    var = std.squeeze() ** 2
    bias_m, bias_v = (m_k - mean[0]).abs(), (v_k - var).abs()
    assert ((x.mean(0) - mean[0]).abs() <= bias_m + 4 * std.squeeze() / math.sqrt(n)).all()
    assert ((x.var(0) - var).abs() <= bias_v + 4 * var * math.sqrt(2.0 / (n - 1))).all()
    # The recursion converges to the closed form: its bias is a small part of the variance.
    assert bias_v < 0.05 * var


def test_torchsde_integrates_the_sde_object(sde):
    """``torchsde.sdeint`` accepts the SDE as it is; with a shared BrownianInterval its Euler solution
    equals the same Euler recursion written out, on torchsde's own grid t_{k+1} = min(t_k + dt, t_end)
    (ENV.md: to rounding)."""
    n, steps = 8, 10
    x0 = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    t_end = 0.5 * sde.T
    dt = t_end / steps
    bm = torchsde.BrownianInterval(t0=0.0, t1=t_end, size=(n, 3), dtype=torch.float64, entropy=11)
    ts = torch.tensor([0.0, t_end], dtype=torch.float64)
    got = torchsde.sdeint(sde, x0, ts, bm=bm, method="euler", dt=dt)[-1]
    x, t0 = x0, ts[0]
    while t0 < ts[-1]:
        t1 = min(t0 + dt, ts[-1])
        x = x + sde.f(t0, x) * (t1 - t0) + sde.g(t0, x) * bm(t0, t1)
        t0 = t1
    torch.testing.assert_close(got, x, rtol=1e-13, atol=1e-13)


def test_marginal_shapes_and_broadcast(sde):
    x0 = torch.randn(4, 3, 5, 5)
    t = torch.rand(4) * sde.T
    mean, std = sde.marginal(x0, t)
    alpha, sigma = sde.alpha_sigma(t)
    assert mean.shape == x0.shape and std.shape == (4, 1, 1, 1)
    torch.testing.assert_close(mean, append_dims(alpha, 4) * x0)
    torch.testing.assert_close(std.flatten(), sigma)
    with pytest.raises(ValueError, match=r"t must lie in \[0, T\]"):
        sde.marginal(x0, torch.full((4,), 2.0 * sde.T))
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        sde.marginal(x0, torch.rand(3))


def test_prior_log_prob_matches_torch_distribution(sde):
    x = torch.randn(6, 2, 3, dtype=torch.float64) * sde.prior_std
    prior = sde.prior((2, 3), dtype=torch.float64)
    torch.testing.assert_close(sde.prior_log_prob(x), prior.log_prob(x))
    assert prior.event_shape == (2, 3)
    g = torch.Generator().manual_seed(0)
    draws = sde.prior_sample((50_000, 1), generator=g, dtype=torch.float64)
    # SE of a sample std ≈ std/√(2n); 5 SE.
    assert abs(draws.std().item() - sde.prior_std) < 5 * sde.prior_std / math.sqrt(2 * 50_000)


@pytest.mark.parametrize("bad", [dict(beta_min=0.0), dict(beta_min=5.0, beta_max=1.0), dict(t_min=-1.0)])
def test_vp_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        VPSDE(**bad)


def test_ve_and_edm_reject_bad_arguments():
    with pytest.raises(ValueError, match="sigma_max must exceed sigma_min"):
        VESDE(sigma_min=1.0, sigma_max=0.5)
    with pytest.raises(ValueError, match="sigma_min"):
        EDMSDE(sigma_min=0.0)


def _gaussian_score(sde, m, s2):
    """Exact score of p_t = N(α_t m, (α_t² s² + σ_t²) I) for x₀ ~ N(m, s² I)."""
    def score(x, t):
        alpha, sigma = sde.alpha_sigma(t)
        v = append_dims(alpha**2 * s2 + sigma**2, x.dim())
        return -(x - append_dims(alpha, x.dim()) * m) / v
    return score


def test_probability_flow_of_gaussian_data_is_the_closed_form_affine_map(sde):
    """For x₀ ~ N(m, s² I) the probability-flow ODE (Song et al. 2021, eq. 13) is linear and maps x_T to
    x_t = α_t m + √(v_t / v_T) (x_T − α_T m), v_t = α_t² s² + σ_t² (solve dx/dt = f x + ½ g² (x − α m)/v
    with dv/dt = 2 f v + g²). torchdiffeq's dopri5 at rtol = atol = 1e-10 in float64 must reproduce it."""
    m = torch.tensor([0.7, -1.2], dtype=torch.float64)
    s2 = 0.3**2
    flow = probability_flow(sde, _gaussian_score(sde, m, s2))
    x_T = torch.randn(64, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3.0
    ts = torch.tensor([sde.T, sde.t_min], dtype=torch.float64)
    # step_t keeps dopri5 from stepping past t_min (ENV.md gotcha 13).
    x_t = torchdiffeq.odeint(flow, x_T, ts, rtol=1e-10, atol=1e-10, method="dopri5",
                             options=dict(step_t=ts))[-1]
    (a_T, s_T), (a_t, s_t) = sde.alpha_sigma(ts[0]), sde.alpha_sigma(ts[1])
    v_T, v_t = a_T**2 * s2 + s_T**2, a_t**2 * s2 + s_t**2
    expected = a_t * m + torch.sqrt(v_t / v_T) * (x_T - a_T * m)
    torch.testing.assert_close(x_t, expected, rtol=1e-7, atol=1e-7)


def test_reverse_flow_in_increasing_time_equals_the_flow():
    sde = VPSDE()
    m = torch.zeros(2, dtype=torch.float64)
    score = _gaussian_score(sde, m, 0.25)
    x = torch.randn(5, 2, dtype=torch.float64)
    fwd, rev = probability_flow(sde, score), probability_flow(sde, score, reverse=True)
    s = torch.tensor(0.3, dtype=torch.float64)
    torch.testing.assert_close(rev(s, x), -fwd(sde.T - s, x))


def test_reverse_sde_reshapes_for_the_score_and_matches_anderson_drift():
    """ReverseSDE.f(s, y) = −[f(t) y − g(t)² s(y, t)] at t = T − s, on flat (B, D) states while the score
    sees (B, 1, 2, 2)."""
    sde = VESDE()
    seen = []

    def score(x, t):
        seen.append(tuple(x.shape))
        return -x

    rev = reverse_sde(sde, score, event_shape=(1, 2, 2))
    y = torch.randn(3, 4, dtype=torch.float64)
    s = torch.tensor(0.25, dtype=torch.float64)
    t = torch.full((3,), 0.75, dtype=torch.float64)
    drift = rev.f(s, y)
    g2 = sde.diffusion_squared(t)[:, None]
    torch.testing.assert_close(drift, -(0.0 * y - g2 * (-y)))
    torch.testing.assert_close(rev.g(s, y), g2.sqrt().expand(3, 4))
    assert seen == [(3, 1, 2, 2)]
    with pytest.raises(TypeError, match="LinearSDE"):
        reverse_sde(object(), score)
