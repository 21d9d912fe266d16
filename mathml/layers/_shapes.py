"""Shape helpers shared by the encoders and decoders."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def as_shape(shape: Sequence[int], name: str) -> torch.Size:
    """Validate a data shape given in a config (a list of positive ints)."""
    try:
        out = torch.Size(int(s) for s in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of positive ints, got {shape!r}") from None
    if len(out) == 0 or any(s < 1 for s in out):
        raise ValueError(f"{name} must be a non-empty sequence of positive ints, got {list(out)}")
    return out


def check_data(x: torch.Tensor, shape: torch.Size, name: str) -> None:
    """Raise a clear error unless ``x`` has shape ``(B, *shape)``."""
    if x.dim() != len(shape) + 1 or x.shape[1:] != shape:
        raise ValueError(f"{name} expected x of shape (B, {', '.join(map(str, shape))}), got {tuple(x.shape)}")
