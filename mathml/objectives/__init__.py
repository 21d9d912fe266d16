"""Objectives: KL divergence, the evidence lower bound and importance-weighted bounds.

Every objective returns per-sample terms (a dict with the total under ``"loss"``); recipes reduce.
"""

from .contrastive_divergence import ContrastiveDivergence, EnergyScoreMatching, ReplayBuffer
from .denoising import DenoisingScoreMatching
from .elbo import ELBO
from .iwae import IWAE, importance_sampled_log_likelihood
from .kl import closed_form_kl, kl_divergence, kl_divergence_per_dim
from .parametrization import (
    DataPrediction,
    EDMPreconditioning,
    EpsilonPrediction,
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
from .reinforce import score_function_surrogate
from .sliced import GaussianProjection, Projection, RademacherProjection, SlicedScoreMatching
from .weighting import (
    EDMWeighting,
    LikelihoodWeighting,
    LogNormalNoiseTime,
    LogSNRUniformTime,
    SigmaSquaredWeighting,
    TimeDistribution,
    UniformTime,
    Weighting,
)

__all__ = [
    "ContrastiveDivergence",
    "DataPrediction",
    "DenoisingScoreMatching",
    "EDMPreconditioning",
    "EDMWeighting",
    "EnergyScoreMatching",
    "EpsilonPrediction",
    "GaussianProjection",
    "LikelihoodWeighting",
    "LogNormalNoiseTime",
    "LogSNRUniformTime",
    "Projection",
    "RademacherProjection",
    "ReplayBuffer",
    "SigmaSquaredWeighting",
    "SlicedScoreMatching",
    "TimeDistribution",
    "UniformTime",
    "VelocityPrediction",
    "Weighting",
    "data_from_score",
    "edm_coefficients",
    "edm_output_from_score",
    "epsilon_from_score",
    "score_from_data",
    "score_from_epsilon",
    "score_from_velocity",
    "velocity_from_score",
    "ELBO",
    "IWAE",
    "closed_form_kl",
    "importance_sampled_log_likelihood",
    "kl_divergence",
    "kl_divergence_per_dim",
    "score_function_surrogate",
]
