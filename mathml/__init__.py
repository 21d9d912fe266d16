"""mathml: exact, tested PyTorch building blocks for generative modelling and planning.

Subpackages are imported on demand (``import mathml.objectives``) so that using one part
never pays for another's dependencies.
"""

__version__ = "0.1.0"
