"""Time grids: endpoints, monotonicity, and the defining property of each schedule checked through
the SDE's own closed forms (σ̃ = σ/α for Karras, λ = log SNR for the log-SNR grid)."""

import pytest
import torch

import math

from mathml.sde import EDMSDE, VESDE, VPSDE, SubVPSDE, karras_grid, log_snr_grid, uniform_grid, warped_log_snr_grid

SDES = [VPSDE(), SubVPSDE(), VESDE(), EDMSDE()]
SCHEDULES = [uniform_grid, karras_grid, log_snr_grid, warped_log_snr_grid]


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda f: f.__name__)
def test_grid_shape_endpoints_and_order(sde, schedule):
    t = schedule(sde, 17, dtype=torch.float64)
    assert t.shape == (18,) and t.dtype == torch.float64
    assert t[0].item() == sde.T and t[-1].item() == sde.t_min
    assert bool((t[1:] < t[:-1]).all())
    t32 = schedule(sde, 17, t_min=0.5 * sde.T, dtype=torch.float32)
    assert t32.dtype == torch.float32 and t32[-1].item() == pytest.approx(0.5 * sde.T)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_uniform_grid_has_equal_steps(sde):
    t = uniform_grid(sde, 10, dtype=torch.float64)
    gaps = t[:-1] - t[1:]
    torch.testing.assert_close(gaps, torch.full_like(gaps, (sde.T - sde.t_min) / 10), rtol=1e-12, atol=0)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_log_snr_grid_has_equal_log_snr_steps(sde):
    lam = sde.log_snr(log_snr_grid(sde, 12, dtype=torch.float64))
    steps = lam[1:] - lam[:-1]
    torch.testing.assert_close(steps, steps.mean().expand(12), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("rho", [1.0, 7.0])
def test_karras_grid_follows_eq5_in_scaled_noise(sde, rho):
    n = 9
    t = karras_grid(sde, n, rho=rho, dtype=torch.float64)
    alpha, sigma = sde.alpha_sigma(t)
    got = sigma / alpha
    s_max, s_min = got[0].item(), got[-1].item()
    i = torch.arange(n + 1, dtype=torch.float64) / n
    want = (s_max ** (1 / rho) + i * (s_min ** (1 / rho) - s_max ** (1 / rho))) ** rho
    torch.testing.assert_close(got, want, rtol=1e-9, atol=0)


@pytest.mark.parametrize("sde", SDES, ids=lambda s: type(s).__name__)
def test_warped_log_snr_grid_steps_follow_the_warp(sde):
    n, w = 40, 0.3
    torch.testing.assert_close(warped_log_snr_grid(sde, n, warp=0.0, dtype=torch.float64),
                               log_snr_grid(sde, n, dtype=torch.float64), rtol=1e-12, atol=1e-12)
    lam = sde.log_snr(warped_log_snr_grid(sde, n, warp=w, dtype=torch.float64))
    steps = lam[1:] - lam[:-1]
    uniform = (lam[-1] - lam[0]) / n
    # the step over [u, u + 1/N] is the integral of 1 + w cos(2πu′) times the uniform step
    u = torch.arange(n, dtype=torch.float64) / n
    want = uniform * (1 + w * n / (2 * math.pi) * (torch.sin(2 * math.pi * (u + 1 / n)) - torch.sin(2 * math.pi * u)))
    torch.testing.assert_close(steps, want, rtol=1e-8, atol=1e-9)
    with pytest.raises(ValueError, match="warp"):
        warped_log_snr_grid(sde, n, warp=1.0)


def test_karras_grid_is_the_edm_schedule_for_edmsde():
    # EDM (Karras et al. 2022, eq. 5, Table 1): σ_i with σ_min = 0.002, σ_max = 80, ρ = 7; t = σ for EDMSDE.
    t = karras_grid(EDMSDE(), 18, dtype=torch.float64)
    i = torch.arange(19, dtype=torch.float64)
    want = (80 ** (1 / 7) + i / 18 * (0.002 ** (1 / 7) - 80 ** (1 / 7))) ** 7
    torch.testing.assert_close(t, want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda f: f.__name__)
def test_bad_arguments_raise(schedule):
    sde = VPSDE()
    with pytest.raises(ValueError, match="steps"):
        schedule(sde, 0)
    with pytest.raises(ValueError, match="t_min"):
        schedule(sde, 5, t_min=2.0)
    with pytest.raises(TypeError, match="sde"):
        schedule("vp", 5)
    with pytest.raises(ValueError, match="rho"):
        karras_grid(sde, 5, rho=0.0)
