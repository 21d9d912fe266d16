"""Negative log-likelihood in bits per dimension.

Which formula applies depends on the model's likelihood:

- a discrete likelihood (a probability mass over the data's actual values: Bernoulli on binary
  data, ``DiscretizedGaussian`` on quantised pixels) — :func:`bits_per_dim`, the NLL divided by
  D ln 2. This is a code length in bits per dimension.
- a density on data scaled to [0, 1] that were quantised to L levels — :func:`dequantized_bits_per_dim`.
  A density's NLL alone is not a code length (it can be negative). Under uniform dequantisation
  (Theis et al. 2016, §3.1; Papamakarios et al. 2017, §4), x + u/L with u ~ U[0, 1)^D is a density
  on [0, 1]^D; rescaling back to the integer grid {0..L−1}^D multiplies the density by L^{−D}, and
  its NLL, (nll + D ln L), bounds the discrete model's code length. Comparable with bits/dim in
  the literature for L = 256 (8-bit images).
"""

from __future__ import annotations

import math

import torch

__all__ = ["bits_per_dim", "dequantized_bits_per_dim"]


def _check(nll_nats: object, num_dims: object) -> None:
    if not isinstance(nll_nats, torch.Tensor):
        raise TypeError(f"nll_nats must be a Tensor of NLLs in nats (any shape), got {type(nll_nats).__name__}")
    if isinstance(num_dims, bool) or not isinstance(num_dims, int) or num_dims < 1:
        raise ValueError(f"num_dims must be an int >= 1 (dimensions per datum), got {num_dims!r}")


def bits_per_dim(nll_nats: torch.Tensor, num_dims: int) -> torch.Tensor:
    """bits/dim = nll / (D ln 2) for a discrete likelihood.

    Args:
        nll_nats: −log P(x) in nats per datum, any shape.
        num_dims: D, dimensions per datum (e.g. 64 for 8x8 digits).

    Returns:
        Tensor of the shape of ``nll_nats``.
    """
    _check(nll_nats, num_dims)
    return nll_nats / (num_dims * math.log(2.0))


def dequantized_bits_per_dim(nll_nats: torch.Tensor, num_dims: int, num_levels: int) -> torch.Tensor:
    """bits/dim = (nll + D ln L) / (D ln 2) for a density on [0, 1]-scaled, L-level data
    (Theis et al. 2016, §3.1).

    Args:
        nll_nats: −log p(x) in nats per datum for the density on [0, 1]^D, any shape.
        num_dims: D, dimensions per datum.
        num_levels: L ≥ 2, quantisation levels of the raw data (256 for 8-bit, 17 for digits).

    Returns:
        Tensor of the shape of ``nll_nats``.
    """
    _check(nll_nats, num_dims)
    if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 2:
        raise ValueError(f"num_levels must be an int >= 2, got {num_levels!r}")
    return (nll_nats + num_dims * math.log(num_levels)) / (num_dims * math.log(2.0))
