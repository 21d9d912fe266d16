"""The finite-volume Fokker–Planck solver against exact OU marginals (measured order), its
conservation and positivity, torchsde particle histograms, and the probability-flow ODE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torchdiffeq
import torchsde

from mathml.distributions import GaussianMixture
from mathml.sde import VPSDE, probability_flow
from mathml.sde.fokker_planck import FokkerPlanckGrid, fokker_planck_operator, solve_fokker_planck
from mathml.sde.ou import OrnsteinUhlenbeckSDE

OU = OrnsteinUhlenbeckSDE(theta=1.0, sigma=1.0)


def _ou_drift(x, t):
    return -OU.theta * x


def _const_diffusion(x, t):
    return torch.full_like(x, OU.sigma)


def _gaussian(x, mean, var):
    var = torch.as_tensor(var, dtype=torch.float64)
    return torch.exp(-0.5 * (x - mean) ** 2 / var) / torch.sqrt(2 * math.pi * var)


def _ou_l1_error(n: int) -> float:
    m0, s0, t = 1.5, 0.3, 1.0
    grid = FokkerPlanckGrid((-4.0,), (4.0,), (n,))
    x = grid.axes()[0]
    h = grid.widths[0]
    sol = solve_fokker_planck(grid, _ou_drift, _const_diffusion, _gaussian(x, m0, s0**2), [t], dt=2 * h * h,
                              time_homogeneous=True)
    alpha, sigma = OU.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    exact = _gaussian(x, alpha * m0, alpha**2 * s0**2 + sigma**2)
    return float((sol.density[-1] - exact).abs().sum() * h)


def test_matches_the_exact_ou_marginal_at_second_order():
    """L1 error against N(α_t m₀, α_t² s₀² + σ_t²) (Särkkä & Solin 2019, eq. 6.23) on grids of 50–200
    cells with Δt ∝ h²: the log–log slope is 2 ± 0.2 (Scharfetter–Gummel is second order for smooth
    solutions; implicit Euler's O(Δt) = O(h²) here)."""
    ns = [50, 100, 200]
    errors = [_ou_l1_error(n) for n in ns]
    slope = -np.polyfit(np.log(ns), np.log(errors), 1)[0]
    assert 1.8 < slope < 2.2, (errors, slope)
    assert errors[-1] < 3e-3


def test_mass_is_conserved_and_density_stays_non_negative_at_any_step():
    """Strong drift (Péclet number ≫ 1) and a huge step Δt = 5: implicit Euler on the M-matrix keeps
    p ≥ 0 and Σ p h to rounding (1e-12 relative), from a point-mass-like start."""
    grid = FokkerPlanckGrid((-5.0,), (5.0,), (200,))
    p0 = torch.zeros(200, dtype=torch.float64)
    p0[20] = 1.0 / grid.widths[0]
    sol = solve_fokker_planck(grid, lambda x, t: 30.0 * torch.sin(x), lambda x, t: torch.full_like(x, 0.05), p0,
                              [1.0, 5.0, 20.0], dt=5.0)
    assert bool((sol.density >= 0).all())
    torch.testing.assert_close(grid.mass(sol.density), torch.ones(3, dtype=torch.float64), rtol=1e-12, atol=0)


def test_operator_columns_sum_to_zero_with_non_negative_off_diagonals():
    grid = FokkerPlanckGrid((-2.0, -1.0), (2.0, 3.0), (12, 9))
    a = fokker_planck_operator(grid, lambda x, t: torch.stack([x[:, 1], -x[:, 0] ** 3], 1),
                               lambda x, t: 0.5 + x.abs(), 0.0).toarray()
    np.testing.assert_allclose(a.sum(0), 0.0, atol=1e-10)
    off = a - np.diag(np.diag(a))
    assert off.min() >= 0.0


def test_two_dimensional_vp_marginal_with_time_dependent_drift():
    """2-D, the VP SDE (time-dependent β(t)) started from N(m₀, s₀² I): the solution at t = 0.3 matches
    the Gaussian marginal N(α_t m₀, (α_t² s₀² + σ_t²) I) to L1 < 0.01 on a 60 × 60 grid."""
    sde = VPSDE()
    grid = FokkerPlanckGrid((-3.0, -3.0), (3.0, 3.0), (60, 60))
    c = grid.centres()
    m0, s0 = torch.tensor([1.0, -0.5], dtype=torch.float64), 0.4
    p0 = (_gaussian(c[:, 0], m0[0], s0**2) * _gaussian(c[:, 1], m0[1], s0**2)).reshape(60, 60)
    sol = solve_fokker_planck(grid, lambda x, t: sde.f(torch.tensor(t), x),
                              lambda x, t: sde.g(torch.tensor(t), x), p0, [0.3], dt=0.005)
    alpha, sigma = sde.alpha_sigma(torch.tensor(0.3, dtype=torch.float64))
    var = alpha**2 * s0**2 + sigma**2
    exact = (_gaussian(c[:, 0], alpha * m0[0], var) * _gaussian(c[:, 1], alpha * m0[1], var)).reshape(60, 60)
    l1 = float((sol.density[-1] - exact).abs().sum() * grid.cell_volume)
    assert l1 < 0.01
    assert abs(grid.mass(sol.density[-1]).item() - grid.mass(p0).item()) < 1e-12


def _bin_probabilities(grid, density, edges):
    """Mass of the FP density in each histogram bin (bins are unions of whole cells)."""
    x = grid.axes()[0]
    idx = np.digitize(x.numpy(), edges) - 1
    mass = density.numpy() * grid.widths[0]
    return np.array([mass[idx == b].sum() for b in range(len(edges) - 1)])


def _histogram_agrees(samples, probs, edges):
    """Each bin's count within 4.5 binomial SEs of n·p (20 bins: a false failure about once in 10⁴)."""
    n = len(samples)
    counts, _ = np.histogram(samples, bins=edges)
    se = np.sqrt(n * probs * (1 - probs)) + 1.0
    return np.all(np.abs(counts - n * probs) < 4.5 * se), counts, n * probs


@pytest.mark.slow
def test_torchsde_particles_agree_with_the_double_well_solution():
    """dX = (X − X³) dt + 0.8 dW from N(−1, 0.2²): a bimodal, non-Gaussian law at t = 2. 10,000
    particles by torchsde's Euler scheme (Δt = 5e-3; its weak bias is far below the binomial SE) vs
    the solver on 400 cells: every bin of a 20-bin histogram within 4.5 SE."""
    drift = lambda x, t: x - x**3  # noqa: E731
    diff = lambda x, t: torch.full_like(x, 0.8)  # noqa: E731
    grid = FokkerPlanckGrid((-3.0,), (3.0,), (400,))
    x = grid.axes()[0]
    sol = solve_fokker_planck(grid, drift, diff, _gaussian(x, -1.0, 0.04), [2.0], dt=0.005, time_homogeneous=True)

    class DoubleWell(torch.nn.Module):
        noise_type, sde_type = "diagonal", "ito"

        def f(self, t, y):
            return drift(y, t)

        def g(self, t, y):
            return diff(y, t)

    n = 10_000
    g = torch.Generator().manual_seed(0)
    y0 = -1.0 + 0.2 * torch.randn(n, 1, generator=g, dtype=torch.float64)
    bm = torchsde.BrownianInterval(t0=0.0, t1=2.0, size=(n, 1), dtype=torch.float64, entropy=1)
    particles = torchsde.sdeint(DoubleWell(), y0, torch.tensor([0.0, 2.0], dtype=torch.float64), bm=bm,
                                method="euler", dt=5e-3)[-1, :, 0].numpy()
    edges = np.linspace(-3.0, 3.0, 21)
    ok, counts, expected = _histogram_agrees(particles, _bin_probabilities(grid, sol.density[-1], edges), edges)
    assert ok, (counts, expected)


def test_probability_flow_particles_follow_the_same_marginal():
    """The probability-flow ODE (Song et al. 2021, eq. 13) of the OU process, with the exact score of
    the diffused two-component mixture, moves 20,000 draws of p₀ to draws of p_t: their histogram
    agrees with the Fokker–Planck solution (every bin within 4.5 binomial SE)."""
    p0_mix = GaussianMixture(torch.tensor([0.4, 0.6], dtype=torch.float64),
                             torch.tensor([[-1.5], [1.0]], dtype=torch.float64),
                             torch.tensor([0.3**2, 0.5**2], dtype=torch.float64))
    grid = FokkerPlanckGrid((-5.0,), (5.0,), (400,))
    x = grid.axes()[0]
    p0 = p0_mix.log_prob(x[:, None]).exp()
    t = 0.8
    sol = solve_fokker_planck(grid, _ou_drift, _const_diffusion, p0, [t], dt=0.002, time_homogeneous=True)
    x0 = p0_mix.sample(20_000, generator=torch.Generator().manual_seed(1))
    flow = probability_flow(OU, p0_mix.score_fn(OU))
    ts = torch.tensor([0.0, t], dtype=torch.float64)
    xt = torchdiffeq.odeint(flow, x0, ts, rtol=1e-8, atol=1e-8, method="dopri5", options=dict(step_t=ts))[-1, :, 0]
    edges = np.linspace(-5.0, 5.0, 21)
    ok, counts, expected = _histogram_agrees(xt.numpy(), _bin_probabilities(grid, sol.density[-1], edges), edges)
    assert ok, (counts, expected)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="length 1 or 2"):
        FokkerPlanckGrid((0.0, 0.0, 0.0), (1.0, 1.0, 1.0), (2, 2, 2))
    grid = FokkerPlanckGrid((0.0,), (1.0,), (10,))
    with pytest.raises(ValueError, match="grid's shape"):
        solve_fokker_planck(grid, _ou_drift, _const_diffusion, torch.ones(9), [1.0], dt=0.1)
    with pytest.raises(ValueError, match="increasing"):
        solve_fokker_planck(grid, _ou_drift, _const_diffusion, torch.ones(10), [1.0, 0.5], dt=0.1)
    with pytest.raises(ValueError, match="non-negative"):
        solve_fokker_planck(grid, _ou_drift, _const_diffusion, -torch.ones(10), [1.0], dt=0.1)
    with pytest.raises(ValueError, match="diffusion must be non-zero"):
        solve_fokker_planck(grid, _ou_drift, lambda x, t: torch.zeros_like(x), torch.ones(10), [1.0], dt=0.1)
