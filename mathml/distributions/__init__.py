"""Distributions with exact densities: priors, discretised likelihoods, probabilistic PCA."""

from .discretized import DiscretizedGaussian
from .ppca import PPCA, ppca_maximum_likelihood
from .priors import StandardNormalPrior
from .sampling import rsample

__all__ = ["DiscretizedGaussian", "PPCA", "ppca_maximum_likelihood", "StandardNormalPrior", "rsample"]
