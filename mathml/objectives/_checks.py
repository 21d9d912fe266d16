"""Input checks shared by the variational objectives (ELBO, IWAE)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.distributions import Distribution

from mathml.checks import check_tensor


def check_inputs(x: object, q_z: object, decoder: object, prior: object) -> None:
    """Validate ``x: (B, *x_shape)``, ``q_z`` with batch (B,) and event (d,), a callable decoder and
    a prior with event (d,)."""
    check_tensor(x, "x", min_dim=1, shape_doc="(B, *x_shape)")
    if not isinstance(q_z, Distribution):
        raise TypeError(f"q_z must be a torch.distributions.Distribution, got {type(q_z).__name__}")
    if q_z.batch_shape != x.shape[:1] or len(q_z.event_shape) != 1:
        raise ValueError(
            f"q_z must have batch_shape (B,) = ({x.shape[0]},) and event_shape (d,), got batch_shape "
            f"{tuple(q_z.batch_shape)} and event_shape {tuple(q_z.event_shape)}"
        )
    if not callable(decoder):
        raise TypeError(f"decoder must be callable z -> Distribution over x, got {type(decoder).__name__}")
    if not isinstance(prior, Distribution):
        raise TypeError(f"prior must be a torch.distributions.Distribution, got {type(prior).__name__}")
    if prior.event_shape != q_z.event_shape:
        raise ValueError(
            f"prior must have event_shape {tuple(q_z.event_shape)} like q_z, got {tuple(prior.event_shape)}"
        )


def decode(decoder: Callable[[torch.Tensor], Distribution], z: torch.Tensor, x: torch.Tensor) -> Distribution:
    """p(x|z) for ``z: (S, B, d)``; checks batch_shape (S, B) and event_shape ``x.shape[1:]``."""
    p_x = decoder(z)
    if not isinstance(p_x, Distribution):
        raise TypeError(f"decoder must return a torch.distributions.Distribution, got {type(p_x).__name__}")
    if p_x.batch_shape != z.shape[:-1] or p_x.event_shape != x.shape[1:]:
        raise ValueError(
            f"decoder(z) for z of shape {tuple(z.shape)} must have batch_shape {tuple(z.shape[:-1])} and "
            f"event_shape {tuple(x.shape[1:])}, got batch_shape {tuple(p_x.batch_shape)} and event_shape "
            f"{tuple(p_x.event_shape)} (wrap the likelihood in Independent over the data dims)"
        )
    return p_x
