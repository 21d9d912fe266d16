"""Draws from ``torch.distributions`` objects with an injected ``torch.Generator``.

torch's ``Distribution.rsample`` takes no generator, so reproducible draws that do not touch the
global RNG need their own path. :func:`rsample` dispatches on the distribution's type
(``functools.singledispatch``, most specific class wins) to an exact reparameterisation

    z = μ + L ε,   ε ~ N(0, I)   (Kingma & Welling 2014, §2.4; L = σ for diagonal Gaussians),

for Gaussian families, and to inverse-CDF draws from uniforms for discrete ones.

Two entry points, so a missing gradient is never silent:

- :func:`rsample` — a reparameterised draw whose gradient reaches the parameters. It refuses
  (``TypeError`` naming the distribution) a family without a reparameterisation, e.g.
  ``Bernoulli`` or ``Categorical``: there a pathwise gradient does not exist, and objectives over
  such latents need the score-function estimator (``mathml.objectives.score_function_surrogate``).
- :func:`sample` — a draw with no gradient, for every registered family (discrete ones included).

Other families plug in with the :func:`register_sampler` decorator.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch.distributions import (
    Bernoulli,
    Categorical,
    Distribution,
    Independent,
    MultivariateNormal,
    Normal,
    OneHotCategorical,
    TransformedDistribution,
)

from mathml.checks import check_generator

__all__ = ["register_sampler", "rsample", "sample"]

_Sampler = Callable[[Distribution, torch.Size, torch.Generator], torch.Tensor]


@functools.singledispatch
def _draw(dist: Distribution, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    supported = ", ".join(sorted(t.__name__ for t in _draw.registry if t is not object))
    raise TypeError(
        f"a draw with a generator supports {supported}; got {type(dist).__name__}. "
        f"Pass generator=None to use its own rsample/sample, or register it with "
        f"mathml.distributions.sampling.register_sampler"
    )


def register_sampler(cls: type[Distribution]) -> Callable[[_Sampler], _Sampler]:
    """Decorator: ``fn(dist, sample_shape, generator) -> Tensor`` draws from instances of ``cls``."""
    return _draw.register(cls)


def _check_dist(dist: object) -> None:
    if not isinstance(dist, Distribution):
        raise TypeError(f"dist must be a torch.distributions.Distribution, got {type(dist).__name__}")


def _describe(dist: Distribution) -> str:
    """``Independent(Bernoulli, 1)``-style name of a distribution, for error messages."""
    if isinstance(dist, Independent):
        return f"Independent({_describe(dist.base_dist)}, {dist.reinterpreted_batch_ndims})"
    if isinstance(dist, TransformedDistribution):
        return f"TransformedDistribution({_describe(dist.base_dist)})"
    return type(dist).__name__


def rsample(
    dist: Distribution,
    sample_shape: torch.Size | tuple[int, ...] = torch.Size(),
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A reparameterised draw of shape ``(*sample_shape, *dist.batch_shape, *dist.event_shape)``.

    Gradients flow from the draw to the distribution's parameters (z = μ + L ε, Kingma & Welling
    2014, §2.4).

    Args:
        dist: the distribution to draw from; it must have a reparameterised sampler
            (``dist.has_rsample``).
        sample_shape: leading sample dimensions, e.g. ``(S,)``.
        generator: ``None`` uses ``dist.rsample``. Otherwise the draw uses only this generator
            (exact reparameterisation for ``Normal``, ``MultivariateNormal``, ``Independent`` and
            ``TransformedDistribution`` over them).

    Raises:
        TypeError: ``dist`` is not a Distribution; ``dist`` has no reparameterised sampler (e.g.
            ``Bernoulli``, ``Categorical``: use :func:`sample` for a draw without gradient, and the
            score-function estimator for gradients); or a generator was given for a type without a
            registered sampler (the message lists the supported types).
    """
    _check_dist(dist)
    check_generator(generator)
    if not dist.has_rsample:
        raise TypeError(
            f"rsample: {_describe(dist)} has no reparameterised sampler, so a draw from it carries no "
            f"gradient to its parameters. Use mathml.distributions.sample for a draw without gradient, "
            f"and a score-function estimator for gradients (e.g. ELBO(estimator='score_function'))"
        )
    shape = torch.Size(sample_shape)
    if generator is None:
        return dist.rsample(shape)
    return _draw(dist, shape, generator)


def sample(
    dist: Distribution,
    sample_shape: torch.Size | tuple[int, ...] = torch.Size(),
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """A draw without gradient, shape ``(*sample_shape, *dist.batch_shape, *dist.event_shape)``.

    Args:
        dist: the distribution to draw from (any family; with a generator, a registered one).
        sample_shape: leading sample dimensions, e.g. ``(S,)``.
        generator: ``None`` uses ``dist.sample``. Otherwise the draw uses only this generator:
            inverse-CDF draws from uniforms for ``Bernoulli``, ``Categorical``,
            ``OneHotCategorical`` and ``mathml.distributions.DiscretizedGaussian``; the Gaussian
            families as in :func:`rsample`, detached.

    Raises:
        TypeError: ``dist`` is not a Distribution, or a generator was given for a type without a
            registered sampler (the message lists the supported types).
    """
    _check_dist(dist)
    check_generator(generator)
    shape = torch.Size(sample_shape)
    with torch.no_grad():
        if generator is None:
            return dist.sample(shape)
        return _draw(dist, shape, generator)


def _standard_normal(shape: torch.Size, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.randn(shape, generator=generator, dtype=like.dtype, device=like.device)


def _uniform(shape: torch.Size, like: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return torch.rand(shape, generator=generator, dtype=like.dtype, device=like.device)


@_draw.register
def _(dist: Normal, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    eps = _standard_normal(dist._extended_shape(shape), dist.loc, generator)
    return dist.loc + dist.scale * eps


@_draw.register
def _(dist: MultivariateNormal, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    eps = _standard_normal(dist._extended_shape(shape), dist.loc, generator)
    return dist.loc + torch.matmul(dist._unbroadcasted_scale_tril, eps.unsqueeze(-1)).squeeze(-1)


@_draw.register
def _(dist: Independent, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    return _draw(dist.base_dist, shape, generator)


@_draw.register
def _(dist: TransformedDistribution, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    x = _draw(dist.base_dist, shape, generator)
    for transform in dist.transforms:
        x = transform(x)
    return x


@_draw.register
def _(dist: Bernoulli, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    with torch.no_grad():
        probs = dist.probs.expand(dist._extended_shape(shape))
        return (_uniform(probs.shape, probs, generator) < probs).to(probs.dtype)


def _categorical_index(probs: torch.Tensor, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    """Inverse-CDF draw of indices, shape ``(*shape, *probs.shape[:-1])``."""
    with torch.no_grad():
        cdf = probs.cumsum(-1)
        cdf = cdf / cdf[..., -1:]
        cdf = cdf.expand(*shape, *cdf.shape).contiguous()
        u = _uniform(cdf.shape[:-1] + (1,), cdf, generator)
        index = torch.searchsorted(cdf, u, right=True).squeeze(-1)
        return index.clamp_(max=probs.shape[-1] - 1)


@_draw.register
def _(dist: Categorical, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    return _categorical_index(dist.probs, shape, generator)


@_draw.register
def _(dist: OneHotCategorical, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    probs = dist.probs
    index = _categorical_index(probs, shape, generator)
    return torch.nn.functional.one_hot(index, probs.shape[-1]).to(probs.dtype)
