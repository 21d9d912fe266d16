"""Decoders p_θ(x | z) that return ``torch.distributions`` objects.

A decoder maps z to the parameters of a likelihood head (``mathml.layers.likelihoods``), which
turns them into a distribution over one datum; the head decides the observation model
(Bernoulli, Gaussian with fixed/learned scale, discretised Gaussian).
"""

from __future__ import annotations

import abc
import math
from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Distribution

from mathml.checks import check_positive_int

from ._shapes import as_shape
from .mlp import MLP


class _Decoder(nn.Module, abc.ABC):
    def __init__(self, latent_dim: int, data_shape: Sequence[int], likelihood: nn.Module) -> None:
        super().__init__()
        num_params = getattr(likelihood, "num_params", None)
        if not isinstance(num_params, int) or num_params < 1:
            raise TypeError(
                f"likelihood must be a likelihood head with an int `num_params` "
                f"(e.g. mathml.layers.BernoulliLikelihood), got {type(likelihood).__name__}"
            )
        self.latent_dim = check_positive_int(latent_dim, "latent_dim")
        self.data_shape = as_shape(data_shape, "data_shape")
        self.likelihood = likelihood

    @abc.abstractmethod
    def params(self, z: torch.Tensor) -> torch.Tensor:
        """z: (N, latent_dim) -> (N, num_params * C, ...) reshapeable to (N, num_params, *data_shape)."""

    def forward(self, z: torch.Tensor) -> Distribution:
        """z: (*batch, latent_dim) -> p(x|z) with batch_shape ``batch``, event_shape data_shape."""
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"{type(self).__name__} expected z of shape (..., {self.latent_dim}), got {tuple(z.shape)}")
        batch = z.shape[:-1]
        theta = self.params(z.reshape(-1, self.latent_dim))
        theta = theta.reshape(*batch, self.likelihood.num_params, *self.data_shape)
        return self.likelihood(theta, self.data_shape)


class MLPDecoder(_Decoder):
    """p_θ(x|z) from an MLP; ``hidden=[]`` makes the mean affine in z (the linear VAE / PPCA).

    Args:
        latent_dim: d, the size of z.
        data_shape: shape of one datum, e.g. ``[1, 8, 8]``.
        likelihood: head with ``num_params`` outputs per data dimension.
        hidden: hidden widths.
    """

    def __init__(
        self, latent_dim: int, data_shape: Sequence[int], likelihood: nn.Module, hidden: Sequence[int] = (256, 256)
    ) -> None:
        super().__init__(latent_dim, data_shape, likelihood)
        self.net = MLP(self.latent_dim, list(hidden), self.likelihood.num_params * self.data_shape.numel())

    def params(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ConvDecoder(_Decoder):
    """p_θ(x|z): a linear layer to a coarse grid, then stride-2 transposed convolutions that double
    H and W, cropped to ``[H, W]``.

    Args:
        latent_dim: d, the size of z.
        data_shape: ``[C, H, W]`` of one image.
        likelihood: head with ``num_params`` outputs per data dimension.
        channels: channels of each upsampling stage, coarsest first.
        hidden: width of the fully connected layer before the convolutions.
    """

    def __init__(
        self,
        latent_dim: int,
        data_shape: Sequence[int],
        likelihood: nn.Module,
        channels: Sequence[int] = (64, 32),
        hidden: int = 256,
    ) -> None:
        super().__init__(latent_dim, data_shape, likelihood)
        if len(self.data_shape) != 3:
            raise ValueError(f"ConvDecoder needs data_shape [C, H, W], got {list(self.data_shape)}")
        c_img, h, w = self.data_shape
        n = len(channels)
        self.h0, self.w0 = math.ceil(h / 2**n), math.ceil(w / 2**n)
        self.c0 = int(channels[0])
        self.fc = MLP(self.latent_dim, [int(hidden)], self.c0 * self.h0 * self.w0)
        layers: list[nn.Module] = [nn.SiLU()]
        c = self.c0
        for c_out in list(channels[1:]) + [int(channels[-1])]:
            layers += [nn.ConvTranspose2d(c, int(c_out), kernel_size=4, stride=2, padding=1), nn.SiLU()]
            c = int(c_out)
        layers.append(nn.Conv2d(c, self.likelihood.num_params * c_img, kernel_size=3, padding=1))
        self.deconv = nn.Sequential(*layers)

    def params(self, z: torch.Tensor) -> torch.Tensor:
        x = self.deconv(self.fc(z).reshape(-1, self.c0, self.h0, self.w0))
        _, h, w = self.data_shape
        return x[..., :h, :w]
