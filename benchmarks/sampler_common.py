"""The problem every sampler benchmark solves, and its exact answers.

Target: the 8-component 2-D Gaussian mixture of issue 6 (means on a radius-4 circle at angles
2πk/8, isotropic std 0.3, equal weights) under ``VPSDE()`` (β_min = 0.1, β_max = 20, T = 1,
t_min = 1e-3), with the exact score ``GaussianMixture.score_fn(sde)``; all in float64.

Deterministic samplers solve the probability-flow ODE (Song et al. 2021, ICLR, eq. 13) from
x_T ~ N(0, I) at t = T to t_end; their reference is the same ODE solved tightly (torchdiffeq
dopri5, rtol = atol = 1e-10, float64) from the same x_T between the same two times.

Stochastic samplers are scored by the within-mode spread: every sample is assigned to its nearest
mode mean α_t μ_k, and the spread is the root mean square residual per coordinate,

    s = √( (1 / (n D)) Σ_i ‖x_i − α_t μ_{k(i)}‖² ),

whose exact value is the component standard deviation of the diffused mixture at t_end,
√(α_t² 0.3² + σ_t²) (``GaussianMixture.marginal(sde, t_end)``; the nearest-mode truncation is
5 standard deviations out and changes it by < 1e-6 relative). Its standard error is estimated from
the sample by the delta method: SE(s) = SE(mean of ‖r‖²/D) / (2 s).
"""

from __future__ import annotations

import math

import torch

from mathml.distributions import GaussianMixture
from mathml.sde import VPSDE, probability_flow

RADIUS, STD, K = 4.0, 0.3, 8


def eight_gaussians(dtype=torch.float64) -> GaussianMixture:
    """The issue-6 target: 8 equal-weight isotropic components, std 0.3, means on a circle of radius 4."""
    angle = 2 * math.pi * torch.arange(K, dtype=dtype) / K
    means = RADIUS * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return GaussianMixture(torch.full((K,), 1.0 / K, dtype=dtype), means, torch.full((K,), STD**2, dtype=dtype))


def problem():
    """(sde, mixture, exact score) in float64."""
    sde = VPSDE()
    gmm = eight_gaussians()
    return sde, gmm, gmm.score_fn(sde)


def reference_solution(sde, score, x_T: torch.Tensor, t_start: float, t_end: float,
                       rtol: float = 1e-10, atol: float = 1e-10) -> tuple[torch.Tensor, int]:
    """The probability-flow ODE from ``x_T: (B, D)`` at ``t_start`` to ``t_end`` (dopri5, float64).
    Returns (x (B, D), number of score evaluations)."""
    from torchdiffeq import odeint

    calls = [0]

    def counted(x, t):
        calls[0] += 1
        return score(x, t)

    flow = probability_flow(sde, counted)
    ts = torch.tensor([t_start, t_end], dtype=torch.float64)
    # step_t: make dopri5 land on t_end instead of stepping past it (shared ENV.md, gotcha 13).
    x = odeint(flow, x_T.double(), ts, method="dopri5", rtol=rtol, atol=atol, options=dict(step_t=ts[1:]))[-1]
    return x, calls[0]


def rms_distance(x: torch.Tensor, ref: torch.Tensor) -> float:
    """√(mean_i ‖x_i − ref_i‖²): root mean square Euclidean distance over the batch."""
    return float((x.double() - ref).pow(2).sum(1).mean().sqrt())


def within_mode_spread(x: torch.Tensor, gmm: GaussianMixture, sde, t_end: float) -> tuple[float, float, list[float]]:
    """(s, SE(s), per-mode s_k) of samples ``x: (n, D)`` at ``t_end`` (see the module docstring)."""
    x = x.double()
    alpha = float(sde.alpha_sigma(torch.tensor(t_end, dtype=torch.float64))[0]) if t_end > 0 else 1.0
    centres = alpha * gmm.means
    d2 = torch.cdist(x, centres).pow(2)
    k = d2.argmin(1)
    r2 = d2.gather(1, k[:, None]).squeeze(1) / x.shape[1]
    m = float(r2.mean())
    s = math.sqrt(m)
    se = float(r2.std()) / math.sqrt(len(r2)) / (2 * s)
    per_mode = [math.sqrt(float(r2[k == j].mean())) if bool((k == j).any()) else float("nan") for j in range(gmm.num_components)]
    return s, se, per_mode


def exact_spread(gmm: GaussianMixture, sde, t_end: float) -> float:
    """√(α² 0.3² + σ²): the component std of ``gmm.marginal(sde, t_end)`` (all components equal)."""
    if t_end <= 0:
        cov = gmm.covariances
    else:
        cov = gmm.marginal(sde, t_end).covariances
    return float(cov[0].diagonal().mean().sqrt())
