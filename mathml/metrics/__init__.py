"""Metrics: negative log-likelihood in nats and bits per dimension; sample-based distances (sliced
Wasserstein, maximum mean discrepancy); MCMC diagnostics (ESS, split-R̂, kernel Stein discrepancy); FID with a pluggable feature network
(Inception weights from a local file, or a small classifier trained offline) and the Inception-Score-style
class entropy."""

from .feature_classifier import (
    FeatureClassifier,
    cached_feature_classifier,
    classifier_accuracy,
    default_cache_dir,
    load_feature_classifier,
    save_feature_classifier,
    train_feature_classifier,
)
from .fid import FeatureNetworkMismatch, FIDResult, frechet_distance, inception_feature_network
from .inception_score import inception_score
from .mcmc import effective_sample_size, kernel_stein_discrepancy, split_rhat
from .mmd import median_bandwidth, mmd_squared
from .nll import bits_per_dim, dequantized_bits_per_dim, uniform_dequantize
from .sliced_wasserstein import random_directions, sliced_wasserstein, wasserstein_1d

__all__ = [
    "FIDResult",
    "FeatureClassifier",
    "FeatureNetworkMismatch",
    "cached_feature_classifier",
    "classifier_accuracy",
    "default_cache_dir",
    "frechet_distance",
    "inception_feature_network",
    "inception_score",
    "load_feature_classifier",
    "save_feature_classifier",
    "train_feature_classifier",
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
