"""Likelihood heads: turn a decoder's raw outputs into p(x | z) as a ``torch.distributions`` object.

Contract shared by every head: ``num_params`` raw values per data dimension;
``forward(params: (*batch, num_params, *event_shape), event_shape) -> Distribution`` with
``batch_shape == batch`` and ``event_shape == event_shape`` (an ``Independent`` over the data dims).

Every learned scale is σ = softplus(raw) + σ_min, so log σ² is bounded below by 2 log σ_min and
cannot collapse (or overflow through exp) silently.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from mathml.checks import check_int_at_least, check_positive, inverse_softplus
from mathml.distributions.discretized import DiscretizedGaussian


class _LikelihoodHead(nn.Module):
    num_params: int
    #: True when p(x|z) is a probability mass (so −log p(x) / (D ln 2) is an honest bits/dim),
    #: False for densities.
    discrete: bool

    def _split(self, params: torch.Tensor, event_shape: Sequence[int]) -> tuple[torch.Tensor, ...]:
        """Check ``params: (*batch, num_params, *event_shape)``; return the num_params slices."""
        if not isinstance(params, torch.Tensor):
            raise TypeError(f"params must be a Tensor, got {type(params).__name__}")
        event_shape = torch.Size(event_shape)
        axis = params.dim() - len(event_shape) - 1
        if axis < 0 or params.shape[axis] != self.num_params or params.shape[axis + 1:] != event_shape:
            raise ValueError(
                f"{type(self).__name__} expected params of shape (*batch, {self.num_params}, "
                f"{', '.join(map(str, event_shape))}), got {tuple(params.shape)}"
            )
        return params.unbind(axis)

    @staticmethod
    def _wrap(base: Distribution, event_shape: Sequence[int]) -> Distribution:
        return Independent(base, len(event_shape))


class BernoulliLikelihood(_LikelihoodHead):
    """p(x|z) = Π_i Bernoulli(x_i; sigmoid(ℓ_i)), ℓ the logits (Kingma & Welling 2014, App. C.1).

    ``num_params = 1``: params ``(*batch, 1, *event_shape)`` are the logits. Data must be in {0, 1}.
    """

    num_params = 1
    discrete = True

    def forward(self, params: torch.Tensor, event_shape: Sequence[int]) -> Distribution:
        (logits,) = self._split(params, event_shape)
        return self._wrap(Bernoulli(logits=logits), event_shape)


class GaussianLikelihood(_LikelihoodHead):
    """p(x|z) = Π_i N(x_i; m_i, σ_i²) (Kingma & Welling 2014, App. C.2).

    Args:
        scale: the fixed σ, or the initial value of the learned one (> 0).
        learn_scale: learn one σ shared by every dimension and data point (ignored when
            ``per_dimension``). With an affine decoder this is probabilistic PCA's σ²I
            (Tipping & Bishop 1999, eq. 3).
        per_dimension: the network also outputs σ_i per dimension: ``num_params = 2``
            (mean, raw scale); otherwise ``num_params = 1`` (mean).
        min_scale: σ_min > 0 added after the softplus of every learned scale.
    """

    discrete = False

    def __init__(
        self, scale: float = 1.0, learn_scale: bool = False, per_dimension: bool = False, min_scale: float = 1e-3
    ) -> None:
        super().__init__()
        self.min_scale = check_positive(min_scale, "min_scale")
        scale = check_positive(scale, "scale")
        self.per_dimension = bool(per_dimension)
        self.learn_scale = bool(learn_scale) and not self.per_dimension
        self.num_params = 2 if self.per_dimension else 1
        if self.learn_scale:
            if not scale > self.min_scale:
                raise ValueError(f"scale must exceed min_scale={self.min_scale} when learn_scale=True, got {scale}")
            self.raw_scale = nn.Parameter(torch.tensor(inverse_softplus(scale - self.min_scale)))
        else:
            self.register_buffer("fixed_scale", torch.tensor(scale), persistent=False)

    @property
    def sigma(self) -> torch.Tensor | None:
        """The shared σ as a 0-d tensor (learned or fixed); ``None`` when ``per_dimension``."""
        if self.per_dimension:
            return None
        if self.learn_scale:
            return nn.functional.softplus(self.raw_scale) + self.min_scale
        return self.fixed_scale

    def forward(self, params: torch.Tensor, event_shape: Sequence[int]) -> Distribution:
        parts = self._split(params, event_shape)
        mean = parts[0]
        if self.per_dimension:
            scale = nn.functional.softplus(parts[1]) + self.min_scale
        else:
            scale = self.sigma.to(mean).expand_as(mean)
        return self._wrap(Normal(mean, scale), event_shape)

    def extra_repr(self) -> str:
        return f"per_dimension={self.per_dimension}, learn_scale={self.learn_scale}, min_scale={self.min_scale}"


class DiscretizedGaussianLikelihood(_LikelihoodHead):
    """p(x|z) = Π_i DiscretizedGaussian(x_i; m_i, σ_i, L) over levels k/(L−1) of [0, 1]
    (Ho et al. 2020, eq. 13), σ_i = softplus(raw_i) + σ_min.

    Args:
        num_levels: L ≥ 2 (256 for 8-bit images, 17 for scikit-learn's digits).
        min_scale: σ_min > 0.

    ``num_params = 2``: params ``(*batch, 2, *event_shape)`` are (mean, raw scale).
    """

    num_params = 2
    discrete = True

    def __init__(self, num_levels: int = 256, min_scale: float = 1e-3) -> None:
        super().__init__()
        self.num_levels = check_int_at_least(num_levels, "num_levels", 2)
        self.min_scale = check_positive(min_scale, "min_scale")

    def forward(self, params: torch.Tensor, event_shape: Sequence[int]) -> Distribution:
        mean, raw = self._split(params, event_shape)
        scale = nn.functional.softplus(raw) + self.min_scale
        return self._wrap(DiscretizedGaussian(mean, scale, self.num_levels), event_shape)

    def extra_repr(self) -> str:
        return f"num_levels={self.num_levels}, min_scale={self.min_scale}"
