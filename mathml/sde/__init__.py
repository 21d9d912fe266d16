"""Score-based diffusion: linear SDEs in torchsde's protocol (VP, sub-VP, VE, EDM), their reverse
SDE and probability-flow ODE, samplers, time grids and likelihoods.

Time runs from data (t = 0) to noise (t = T) (Song et al. 2021). A score is a callable
``score(x, t)`` with ``x: (B, ...)``, ``t: (B,)``, returning the shape of ``x``.
"""

from .base import LinearSDE, append_dims, as_time
from .edm import EDMSDE
from .guidance import ClassifierFreeGuidance, drop_labels
from .likelihood import LikelihoodResult, log_likelihood, log_prob_to_bits_per_dim, uniform_dequantize
from .fokker_planck import FokkerPlanckGrid, FokkerPlanckSolution, fokker_planck_operator, solve_fokker_planck
from .langevin import LangevinResult, annealed_langevin, mala, ula, underdamped_langevin
from .optimizer_limits import (
    gradient_descent,
    gradient_flow,
    heavy_ball,
    heavy_ball_flow,
    sgd,
    sgd_modified_equation,
    side_by_side,
)
from .ou import OrnsteinUhlenbeckSDE
from .reverse import ProbabilityFlowODE, ReverseSDE, probability_flow, reverse_sde
from .samplers import (
    TORCHSDE_METHODS,
    ddim,
    dpm_solver_2m,
    dpm_solver_3m,
    dpm_solver_sde,
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
    "ClassifierFreeGuidance",
    "drop_labels",
    "EDMSDE",
    "FokkerPlanckGrid",
    "FokkerPlanckSolution",
    "LangevinResult",
    "LikelihoodResult",
    "LinearSDE",
    "OrnsteinUhlenbeckSDE",
    "ProbabilityFlowODE",
    "ReverseSDE",
    "SubVPSDE",
    "VESDE",
    "VPSDE",
    "annealed_langevin",
    "append_dims",
    "as_time",
    "fokker_planck_operator",
    "gradient_descent",
    "gradient_flow",
    "heavy_ball",
    "heavy_ball_flow",
    "log_likelihood",
    "log_prob_to_bits_per_dim",
    "mala",
    "probability_flow",
    "reverse_sde",
    "sgd",
    "sgd_modified_equation",
    "side_by_side",
    "solve_fokker_planck",
    "ula",
    "underdamped_langevin",
    "uniform_dequantize",
    # samplers and time grids
    "TORCHSDE_METHODS",
    "ddim",
    "dpm_solver_2m",
    "dpm_solver_3m",
    "dpm_solver_sde",
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
