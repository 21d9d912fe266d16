"""Sliced score matching against Hyvärinen's objective on Gaussians, where it is known exactly.

For data x ~ N(m, S) and a linear model score s_θ(x) = −A (x − b), Hyvärinen 2005 (eq. 4 and
Thm. 1) gives E[tr ∇s_θ + ½‖s_θ‖²] = ½ E‖s_θ − ∇ log p‖² − ½ E‖∇ log p‖², with
½ E‖s_θ − ∇ log p‖² = ½ [tr(M S Mᵀ) + ‖A (m − b)‖²], M = S⁻¹ − A, and E‖∇ log p‖² = tr S⁻¹.
Every projection scheme must have that mean. Monte-Carlo checks fix their seeds; tolerance 4
standard errors of the sample mean.
"""

import math

import pytest
import torch

from mathml.distributions.gaussian_mixture import GaussianMixture
from mathml.objectives import (
    GaussianProjection,
    RademacherProjection,
    SigmaSquaredWeighting,
    SlicedScoreMatching,
    TimeDistribution,
)
from mathml.sde import VESDE, VPSDE

DT = torch.float64


def mc_close(samples, expected, k=4.0):
    mean, se = samples.mean().item(), samples.std().item() / math.sqrt(samples.numel())
    assert abs(mean - expected) < k * se, (mean, expected, se)


def gaussian_problem(d=3):
    g = torch.Generator().manual_seed(0)
    l = torch.randn(d, d, generator=g, dtype=DT) * 0.4 + torch.eye(d, dtype=DT)
    s_cov = l @ l.T + 0.2 * torch.eye(d, dtype=DT)
    m = torch.randn(d, generator=g, dtype=DT)
    a = torch.randn(d, d, generator=g, dtype=DT) * 0.3 + torch.eye(d, dtype=DT)  # not symmetric
    b = torch.randn(d, generator=g, dtype=DT)
    s_inv = torch.linalg.inv(s_cov)
    mm = s_inv - a
    fisher = 0.5 * (torch.trace(mm @ s_cov @ mm.T) + (a @ (m - b)).pow(2).sum())
    expected = (fisher - 0.5 * torch.trace(s_inv)).item()
    data = GaussianMixture(torch.ones(1, dtype=DT), m[None], s_cov[None])
    return data, (lambda x: -(x - b) @ a.T), expected, a


@pytest.mark.parametrize("projection", [RademacherProjection(), GaussianProjection()], ids=repr)
@pytest.mark.parametrize("variance_reduced", [False, True])
@pytest.mark.parametrize("n_projections", [1, 3])
def test_ssm_mean_equals_hyvarinen_objective(projection, variance_reduced, n_projections):
    data, score, expected, a = gaussian_problem()
    x = data.sample(20000, generator=torch.Generator().manual_seed(1))
    ssm = SlicedScoreMatching(n_projections=n_projections, projection=projection, variance_reduced=variance_reduced)
    out = ssm(score, x, generator=torch.Generator().manual_seed(2))
    assert out["loss"].shape == (20000,)
    mc_close(out["loss"], expected)
    # The Jacobian term alone estimates tr ∇s = −tr A for every projection (E[v vᵀ] = I).
    mc_close(out["jacobian"], -torch.trace(a).item())


def test_variance_reduction_and_more_projections_lower_the_variance():
    data, score, _, _ = gaussian_problem()
    x = data.sample(20000, generator=torch.Generator().manual_seed(1))

    def var(**kw):
        return SlicedScoreMatching(**kw)(score, x, generator=torch.Generator().manual_seed(3))["loss"].var().item()

    plain = var(projection=GaussianProjection())
    assert var(projection=GaussianProjection(), variance_reduced=True) < plain
    assert var(projection=GaussianProjection(), n_projections=4) < plain


class _Fixed(TimeDistribution):
    def __init__(self, t):
        self.t = t

    def sample(self, sde, n, t_min, *, generator=None, dtype=None, device=None):
        return torch.full((n,), self.t, dtype=dtype, device=device)

    def density(self, sde, t, t_min):
        raise NotImplementedError


@pytest.mark.parametrize("sde", [VPSDE(), VESDE(sigma_min=0.01, sigma_max=10.0)], ids=["vp", "ve"])
def test_noise_conditional_ssm_at_the_exact_marginal_score(sde):
    # At the exact score of p_t the Fisher term vanishes: E[loss] = −½ λ(t) E‖∇ log p_t‖² = −½ σ² D/(α² s² + σ²).
    d, s, t = 2, 0.7, 0.3
    data = GaussianMixture(torch.ones(1, dtype=DT), torch.zeros(1, d, dtype=DT), torch.tensor([s * s], dtype=DT))
    x = data.sample(20000, generator=torch.Generator().manual_seed(4))
    ssm = SlicedScoreMatching(sde, weighting=SigmaSquaredWeighting(), time_distribution=_Fixed(t))
    out = ssm(data.score_fn(sde), x, generator=torch.Generator().manual_seed(5))
    alpha, sigma = (v.item() for v in sde.alpha_sigma(torch.tensor(t, dtype=DT)))
    mc_close(out["loss"], -0.5 * sigma**2 * d / (alpha**2 * s**2 + sigma**2))
    torch.testing.assert_close(out["t"], torch.full((20000,), t, dtype=DT))


def test_ssm_trains_a_linear_model_toward_the_data_score():
    # A gradient check of the double-backward path: minimising SSM on N(0, S) recovers A = S⁻¹.
    torch.manual_seed(0)
    data, _, _, _ = gaussian_problem(2)
    x = data.sample(1000, generator=torch.Generator().manual_seed(6)).float()
    lin = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(lin.parameters(), lr=0.1)
    ssm = SlicedScoreMatching(projection=GaussianProjection(), variance_reduced=True)
    gen = torch.Generator().manual_seed(7)
    for _ in range(150):
        opt.zero_grad()
        ssm(lin, x, generator=gen)["loss"].mean().backward()
        opt.step()
    exact = data.score(x.double()).float()
    rel = (lin(x) - exact).norm() / exact.norm()
    assert rel < 0.1, rel


def test_ssm_validates_its_arguments():
    with pytest.raises(ValueError, match="n_projections"):
        SlicedScoreMatching(n_projections=0)
    with pytest.raises(TypeError, match="projection"):
        SlicedScoreMatching(projection="gaussian")
    with pytest.raises(ValueError, match="t_min"):
        SlicedScoreMatching(t_min=0.1)
    with pytest.raises(ValueError, match="shape"):
        SlicedScoreMatching()(lambda x: x[:, :1], torch.randn(3, 2))
