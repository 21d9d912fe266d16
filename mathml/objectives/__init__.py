"""Objectives: KL divergence, the evidence lower bound and importance-weighted bounds.

Every objective returns per-sample terms (a dict with the total under ``"loss"``); recipes reduce.
"""

from .elbo import ELBO
from .iwae import IWAE, importance_sampled_log_likelihood
from .kl import closed_form_kl, kl_divergence, kl_divergence_per_dim
from .reinforce import score_function_surrogate

__all__ = [
    "ELBO",
    "IWAE",
    "closed_form_kl",
    "importance_sampled_log_likelihood",
    "kl_divergence",
    "kl_divergence_per_dim",
    "score_function_surrogate",
]
