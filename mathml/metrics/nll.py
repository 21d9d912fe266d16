"""Negative log-likelihood in bits per dimension.

Which formula applies depends on the model's likelihood:

- a discrete likelihood (a probability mass over the data's actual values: Bernoulli on binary
  data, ``DiscretizedGaussian`` on quantised pixels) — :func:`bits_per_dim`, the NLL divided by
  D ln 2. This is a code length in bits per dimension.
- a density on dequantised data — :func:`dequantized_bits_per_dim`, with the data dequantised by
  :func:`uniform_dequantize`. A density's NLL alone is not a code length (it can be negative).

Uniform dequantisation (Theis et al. 2016, §3.1; Papamakarios et al. 2017, §4). mathml's data
hold the L-level values x = k/(L−1), k ∈ {0..L−1}^D. Dequantise on the integer grid and rescale
to the unit cube,

    y = k + u,   u ~ U[0, 1)^D,        x̃ = y / L = ((L−1) x + u) / L  ∈ [0, 1)^D,

so the cells [k, k+1)^D tile [0, L)^D and their images [k/L, (k+1)/L)^D tile [0, 1)^D. (The form
x + u/L is wrong for these data: with x = k/(L−1) its cells neither tile [0, 1) nor line up with
the grid.) A density p on x̃ defines the discrete model P(k) = ∫_{[0,1)^D} p_Y(k + u) du with
p_Y(y) = p(y/L) · |∂x̃/∂y| = p(x̃) · L^{−D}, and by Jensen's inequality

    −log P(k) ≤ E_u[−log p_Y(k + u)] = E_u[−log p(x̃)] + D ln L,

so bits/dim = (nll + D ln L) / (D ln 2), with nll = −log p(x̃) averaged over u, bounds the discrete
model's code length; equality holds for a density constant on each cell. Comparable with bits/dim
in the literature for L = 256 (8-bit images).
"""

from __future__ import annotations

import math

import torch

from mathml.checks import check_generator, check_int_at_least, check_positive_int, check_tensor

__all__ = ["bits_per_dim", "dequantized_bits_per_dim", "uniform_dequantize"]


def _check(nll_nats: object, num_dims: object) -> None:
    check_tensor(nll_nats, "nll_nats", shape_doc="(any shape) of NLLs in nats")
    check_positive_int(num_dims, "num_dims")


def _check_levels(num_levels: object) -> int:
    return check_int_at_least(num_levels, "num_levels", 2)


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
    """bits/dim = (nll + D ln L) / (D ln 2) for a density on uniformly dequantised L-level data
    (Theis et al. 2016, §3.1; the Jacobian term D ln L is derived in the module docstring).

    Args:
        nll_nats: −log p(x̃) in nats per datum for the density on [0, 1)^D, evaluated at
            x̃ = ((L−1) x + u)/L from :func:`uniform_dequantize` (averaged over u), any shape.
        num_dims: D, dimensions per datum.
        num_levels: L ≥ 2, quantisation levels of the raw data (256 for 8-bit, 17 for digits).

    Returns:
        Tensor of the shape of ``nll_nats``.
    """
    _check(nll_nats, num_dims)
    _check_levels(num_levels)
    return (nll_nats + num_dims * math.log(num_levels)) / (num_dims * math.log(2.0))


def uniform_dequantize(
    x: torch.Tensor, num_levels: int, *, generator: torch.Generator | None = None, atol: float = 1e-4
) -> torch.Tensor:
    """x̃ = ((L−1) x + u) / L, u ~ U[0, 1)^D: the dequantisation :func:`dequantized_bits_per_dim` assumes.

    Args:
        x: L-level data x = k/(L−1), k ∈ {0..L−1}, any shape (e.g. ``(B, *data_shape)``).
        num_levels: L ≥ 2.
        generator: randomness for u.
        atol: how far (in units of one level, k) a value may lie from the grid.

    Returns:
        Tensor of the shape and dtype of ``x``, x̃ ∈ [k/L, (k+1)/L) (the right end only by rounding).

    Raises:
        ValueError: a value of ``x`` is not on the grid {k/(L−1)}.
    """
    check_tensor(x, "x", shape_doc="(any shape) of values k/(L-1)")
    if not x.is_floating_point():
        raise TypeError(f"x must be a floating-point Tensor of values k/(L-1), got dtype {x.dtype}")
    L = _check_levels(num_levels)
    check_generator(generator)
    k = x * (L - 1)
    k_int = k.round()
    if ((k - k_int).abs() > atol).any() or (k_int < 0).any() or (k_int > L - 1).any():
        bad = x[((k - k_int).abs() > atol) | (k_int < 0) | (k_int > L - 1)].flatten()[0].item()
        raise ValueError(f"x must hold the {L}-level values k/{L - 1}, k = 0..{L - 1}; got a value {bad!r}")
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return (k_int + u) / L
