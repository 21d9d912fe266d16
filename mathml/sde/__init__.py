"""Score-based diffusion: linear SDEs in torchsde's protocol (VP, sub-VP, VE, EDM), their reverse
SDE and probability-flow ODE, samplers, time grids and likelihoods.

Time runs from data (t = 0) to noise (t = T) (Song et al. 2021). A score is a callable
``score(x, t)`` with ``x: (B, ...)``, ``t: (B,)``, returning the shape of ``x``.
"""

from .base import LinearSDE, append_dims, as_time
from .edm import EDMSDE
from .reverse import ProbabilityFlowODE, ReverseSDE, probability_flow, reverse_sde
from .samplers import (
    TORCHSDE_METHODS,
    ddim,
    dpm_solver_2m,
    dpm_solver_3m,
    edm_stochastic,
    euler_maruyama,
    exponential_adams,
    nfe,
    pf_ode_dopri5,
    pf_ode_euler,
    pf_ode_heun,
    predictor_corrector,
    torchsde_sampler,
)
from .schedules import karras_grid, log_snr_grid, uniform_grid, warped_log_snr_grid
from .ve import VESDE
from .vp import VPSDE, SubVPSDE

__all__ = [
    "EDMSDE",
    "LinearSDE",
    "ProbabilityFlowODE",
    "ReverseSDE",
    "SubVPSDE",
    "VESDE",
    "VPSDE",
    "append_dims",
    "as_time",
    "probability_flow",
    "reverse_sde",
    # samplers and time grids
    "TORCHSDE_METHODS",
    "ddim",
    "dpm_solver_2m",
    "dpm_solver_3m",
    "edm_stochastic",
    "euler_maruyama",
    "exponential_adams",
    "karras_grid",
    "log_snr_grid",
    "nfe",
    "pf_ode_dopri5",
    "pf_ode_euler",
    "pf_ode_heun",
    "predictor_corrector",
    "torchsde_sampler",
    "uniform_grid",
    "warped_log_snr_grid",
]
