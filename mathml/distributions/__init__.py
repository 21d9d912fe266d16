"""Distributions with exact densities: priors, discretised likelihoods, probabilistic PCA."""

from .discretized import DiscretizedGaussian
from .gaussian_mixture import GaussianMixture
from .ppca import PPCA, ppca_maximum_likelihood
from .priors import StandardNormalPrior
from .sampling import rsample, sample

__all__ = ["DiscretizedGaussian", "GaussianMixture", "PPCA", "ppca_maximum_likelihood", "StandardNormalPrior", "rsample", "sample"]
