"""Amortised Gaussian encoders q_φ(z | x) that return ``torch.distributions`` objects.

Both encoders parameterise the diagonal Gaussian of Kingma & Welling (2014), §3 / Appendix C.2:

    q_φ(z | x) = N(z; μ_φ(x), diag σ_φ(x)²),   σ_φ(x) = softplus(s_φ(x)) + σ_min,

with the floor σ_min keeping log σ² finite. With ``amortize_scale=False`` the scale is a free
parameter shared by every x (σ_φ independent of x), as in the linear VAE of Lucas et al. (2019,
"Don't Blame the ELBO!", §4), whose optimum coincides with probabilistic PCA.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Independent, Normal

from mathml.checks import check_positive, check_positive_int, inverse_softplus

from ._shapes import as_shape, check_data
from .mlp import MLP


class _GaussianEncoder(nn.Module, abc.ABC):
    """Turns the features of a network into N(μ, diag σ²); subclasses build ``self.net``."""

    def __init__(self, data_shape: Sequence[int], latent_dim: int, amortize_scale: bool, min_scale: float) -> None:
        super().__init__()
        self.data_shape = as_shape(data_shape, "data_shape")
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.amortize_scale = bool(amortize_scale)
        self.min_scale = check_positive(min_scale, "min_scale")
        if not self.amortize_scale:
            # Start at σ = 1 (the prior's scale).
            self.raw_scale = nn.Parameter(torch.full((self.latent_dim,), inverse_softplus(1.0 - self.min_scale)))

    @property
    def num_outputs(self) -> int:
        return 2 * self.latent_dim if self.amortize_scale else self.latent_dim

    @abc.abstractmethod
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, *data_shape) -> (B, num_outputs)."""

    def forward(self, x: torch.Tensor) -> Independent:
        """x: (B, *data_shape) -> q(z|x) with batch_shape (B,), event_shape (latent_dim,)."""
        check_data(x, self.data_shape, type(self).__name__)
        h = self.features(x)
        if self.amortize_scale:
            mu, raw = h.split(self.latent_dim, dim=-1)
        else:
            mu, raw = h, self.raw_scale.expand_as(h)
        sigma = nn.functional.softplus(raw) + self.min_scale
        return Independent(Normal(mu, sigma), 1)


class MLPEncoder(_GaussianEncoder):
    """q_φ(z|x) from an MLP on the flattened input.

    Args:
        data_shape: shape of one datum, e.g. ``[1, 8, 8]``; inputs are ``(B, *data_shape)``.
        latent_dim: d, the size of z.
        hidden: hidden widths; ``[]`` makes μ_φ affine in x (the linear VAE).
        amortize_scale: σ depends on x (True) or is one learned vector (False).
        min_scale: floor σ_min added after the softplus.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        latent_dim: int,
        hidden: Sequence[int] = (256, 256),
        amortize_scale: bool = True,
        min_scale: float = 1e-4,
    ) -> None:
        super().__init__(data_shape, latent_dim, amortize_scale, min_scale)
        self.net = MLP(self.data_shape.numel(), list(hidden), self.num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class ConvEncoder(_GaussianEncoder):
    """q_φ(z|x) from stride-2 convolutions (each halves H and W, rounding up) and a linear head.

    Args:
        data_shape: ``[C, H, W]`` of one image.
        latent_dim: d, the size of z.
        channels: output channels of each stride-2 stage.
        hidden: width of the fully connected layer after the convolutions.
        amortize_scale, min_scale: as in :class:`MLPEncoder`.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        latent_dim: int,
        channels: Sequence[int] = (32, 64),
        hidden: int = 256,
        amortize_scale: bool = True,
        min_scale: float = 1e-4,
    ) -> None:
        super().__init__(data_shape, latent_dim, amortize_scale, min_scale)
        if len(self.data_shape) != 3:
            raise ValueError(f"ConvEncoder needs data_shape [C, H, W], got {list(self.data_shape)}")
        c, h, w = self.data_shape
        layers: list[nn.Module] = []
        for c_out in channels:
            layers += [nn.Conv2d(c, int(c_out), kernel_size=3, stride=2, padding=1), nn.SiLU()]
            c, h, w = int(c_out), math.ceil(h / 2), math.ceil(w / 2)
        self.conv = nn.Sequential(*layers)
        self.head = MLP(c * h * w, [int(hidden)], self.num_outputs)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.conv(x).flatten(1))
