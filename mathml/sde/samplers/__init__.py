"""Samplers: plain functions ``sampler(sde, score, x_T, *, steps, generator=None, schedule=...,
denoise=False, ...) -> x`` that walk a time grid from t = T to t_min (one family per file).

Each declares ``.order`` (strong order for SDE methods, global order for ODE methods),
``.nfe_per_step`` and ``.nfe(steps, **options)`` (score evaluations), also as ``nfe(sampler, steps)``.

| sampler | method | order | NFE / step |
|---|---|---|---|
| ``euler_maruyama`` | reverse SDE, Euler–Maruyama | 1 (strong, additive noise) | 1 |
| ``torchsde_sampler`` | reverse SDE, torchsde ``method`` | euler/milstein 1, srk 1.5 | 1 / 1 / 10 (+1 per call) |
| ``predictor_corrector`` | EM predictor + Langevin corrector | 1 (predictor) | 1 + corrector_steps |
| ``pf_ode_euler`` | PF-ODE, Euler in t | 1 | 1 |
| ``pf_ode_heun`` | PF-ODE, Heun in σ̃ (Karras Alg. 1) | 2 | 2 |
| ``pf_ode_dopri5`` | PF-ODE, adaptive dopri5 | 5 | adaptive |
| ``ddim`` | DDIM (η = 0: exponential Euler in λ) | 1 | 1 |
| ``dpm_solver_2m``, ``dpm_solver_3m`` | DPM-Solver++ multistep | 2, 3 | 1 |
| ``dpm_solver_sde`` | SDE-DPM-Solver++ multistep (default k = 3) | 1 (strong) | 1 |
| ``edm_stochastic`` | Karras Alg. 2 (churn) | 2 (S_churn = 0) | 2 |
| ``exponential_adams`` | exponential Adams PEC in λ (UniPC-type) | k + 1 with corrector (default 4) | 1 |
"""

from ._common import nfe
from .ddim import ddim
from .dpm_solver import dpm_solver_2m, dpm_solver_3m
from .dpm_solver_sde import dpm_solver_sde
from .edm import edm_stochastic
from .euler_maruyama import euler_maruyama
from .exponential_adams import exponential_adams
from .predictor_corrector import predictor_corrector
from .probability_flow import pf_ode_dopri5, pf_ode_euler, pf_ode_heun
from .torchsde_methods import TORCHSDE_METHODS, torchsde_sampler

__all__ = [
    "TORCHSDE_METHODS",
    "ddim",
    "dpm_solver_2m",
    "dpm_solver_3m",
    "dpm_solver_sde",
    "edm_stochastic",
    "euler_maruyama",
    "exponential_adams",
    "nfe",
    "pf_ode_dopri5",
    "pf_ode_euler",
    "pf_ode_heun",
    "predictor_corrector",
    "torchsde_sampler",
]
