"""Metrics: negative log-likelihood in nats and bits per dimension; sample-based distances (sliced
Wasserstein, maximum mean discrepancy); MCMC diagnostics (ESS, split-R̂, kernel Stein discrepancy)."""

from .mcmc import effective_sample_size, kernel_stein_discrepancy, split_rhat
from .mmd import median_bandwidth, mmd_squared
from .nll import bits_per_dim, dequantized_bits_per_dim, uniform_dequantize
from .sliced_wasserstein import random_directions, sliced_wasserstein, wasserstein_1d

__all__ = [
    "bits_per_dim",
    "dequantized_bits_per_dim",
    "effective_sample_size",
    "kernel_stein_discrepancy",
    "median_bandwidth",
    "mmd_squared",
    "random_directions",
    "sliced_wasserstein",
    "split_rhat",
    "uniform_dequantize",
    "wasserstein_1d",
]
