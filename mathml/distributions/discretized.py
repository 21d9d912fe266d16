"""A Gaussian discretised to L evenly spaced levels in [0, 1], for honest bits/dim on quantised data.

Ho et al. (2020), eq. 13, and Salimans et al. (2017), §2.1 (edge bins): data take the values
x_k = k / (L − 1), k = 0..L−1, with bin half-width δ = 1 / (2(L − 1)), and

    P(x_k) = Φ((x_k + δ − μ)/s) − Φ((x_k − δ − μ)/s),   0 < k < L − 1,
    P(x_0) = Φ((x_0 + δ − μ)/s),   P(x_{L−1}) = 1 − Φ((x_{L−1} − δ − μ)/s),

so the L probabilities sum to one. Log-probabilities use log Φ (``torch.special.log_ndtr``, asymptotic in the far tail) and a stable
log-difference; when a bin is narrow relative to s (width/s below ε^{1/3}, where round-off in the
difference would exceed the midpoint rule's error) the midpoint rule log φ(c) + log(width/s) is used.
"""

from __future__ import annotations

import math

import torch
from torch.distributions import Distribution, constraints
from torch.distributions.utils import broadcast_all

from .sampling import register_sampler

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


class _Lattice(constraints.Constraint):
    """Values k / (L − 1), k = 0..L−1."""

    is_discrete = True
    event_dim = 0

    def __init__(self, num_levels: int) -> None:
        super().__init__()
        self.num_levels = num_levels

    def check(self, value: torch.Tensor) -> torch.Tensor:
        k = value * (self.num_levels - 1)
        return (value >= 0) & (value <= 1) & ((k - k.round()).abs() < 1e-3)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_levels={self.num_levels})"


_TAIL = -20.0


def _log_ndtr(x: torch.Tensor) -> torch.Tensor:
    """log Φ(x) with finite, accurate gradients everywhere.

    ``torch.special.log_ndtr`` is used for x ≥ −20; below, its float32 gradient is wrong (and NaN
    for |x| ≳ 1e5), so the asymptotic series is used instead (Abramowitz & Stegun 26.2.12):

        log Φ(x) = −x²/2 − log(−x) − ½ log 2π + log(1 − 1/x² + 3/x⁴ − 15/x⁶ + …),

    whose truncation after the (2n−1)!!/x^{2n} term with n = 7 errs by < 1e-14 at x = −20.
    """
    tail = x < _TAIL
    x_in = torch.where(tail, torch.full_like(x, _TAIL), x)
    x_tail = torch.where(tail, x, torch.full_like(x, _TAIL))
    r = x_tail.square().reciprocal()
    series, term = torch.ones_like(r), torch.ones_like(r)
    for n in range(1, 8):
        term = -term * (2 * n - 1) * r
        series = series + term
    asymptotic = -0.5 * x_tail.square() - torch.log(-x_tail) - _HALF_LOG_2PI + torch.log(series)
    return torch.where(tail, asymptotic, torch.special.log_ndtr(x_in))


def _log1mexp(a: torch.Tensor) -> torch.Tensor:
    """log(1 − e^a) for a < 0 (Mächler 2012, "Accurately computing log(1 − exp(−|a|))", eq. 7)."""
    near_zero = a > -math.log(2.0)
    # Each branch sees only inputs it is accurate and finite for, so unused branches pass no NaN
    # gradients through torch.where.
    a_near = torch.where(near_zero, a, torch.full_like(a, -1.0))
    a_far = torch.where(near_zero, torch.full_like(a, -1.0), a)
    return torch.where(near_zero, torch.log(-torch.expm1(a_near)), torch.log1p(-torch.exp(a_far)))


def log_normal_cdf_diff(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """log(Φ(upper) − Φ(lower)) for lower < upper (standardised), finite and stable everywhere.

    Both ends are reflected into the lower tail (Φ(u) − Φ(l) = Φ(−l) − Φ(−u) when l > 0), where
    ``log_ndtr`` is accurate; then log(Φ(u) − Φ(l)) = log Φ(u) + log(1 − exp(log Φ(l) − log Φ(u))).
    """
    flip = lower > 0
    lo = torch.where(flip, -upper, lower)
    hi = torch.where(flip, -lower, upper)
    log_hi = _log_ndtr(hi)
    a = _log_ndtr(lo) - log_hi
    width = hi - lo
    narrow = width < torch.finfo(width.dtype).eps ** (1.0 / 3.0)
    # A wide bin has a <= -0.8·width (φ/Φ >= 0.8 in the lower tail); the clamp only guards
    # elements that the callers discard (edge bins, far outside the data range).
    a_safe = torch.where(narrow, torch.full_like(a, -1.0), a.clamp(max=-torch.finfo(a.dtype).eps))
    exact = log_hi + _log1mexp(a_safe)
    mid = 0.5 * (lo + hi)
    midpoint = -0.5 * mid.square() - _HALF_LOG_2PI + torch.log(torch.where(narrow, width, torch.ones_like(width)))
    return torch.where(narrow, midpoint, exact)


class DiscretizedGaussian(Distribution):
    """N(loc, scale²) discretised to the L levels k/(L−1) of [0, 1], edge bins extended to ±∞.

    Args:
        loc: μ, any shape (broadcast with ``scale``); in data units ([0, 1]).
        scale: s > 0, broadcastable with ``loc``.
        num_levels: L ≥ 2 (256 for 8-bit images, 17 for scikit-learn's digits).

    ``batch_shape`` is the broadcast shape of loc and scale; ``event_shape`` is ``()`` (wrap in
    ``Independent`` over the data dims).
    """

    arg_constraints = {"loc": constraints.real, "scale": constraints.positive}
    has_enumerate_support = True

    def __init__(self, loc, scale, num_levels: int, validate_args: bool | None = None) -> None:
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 2:
            raise ValueError(f"num_levels must be an int >= 2, got {num_levels!r}")
        self.loc, self.scale = broadcast_all(loc, scale)
        self.num_levels = num_levels
        super().__init__(self.loc.shape, validate_args=validate_args)

    @property
    def support(self) -> constraints.Constraint:
        return _Lattice(self.num_levels)

    @property
    def half_width(self) -> float:
        """δ = 1 / (2(L − 1)), half the spacing between levels."""
        return 0.5 / (self.num_levels - 1)

    def expand(self, batch_shape, _instance=None):
        new = self._get_checked_instance(DiscretizedGaussian, _instance)
        batch_shape = torch.Size(batch_shape)
        new.loc = self.loc.expand(batch_shape)
        new.scale = self.scale.expand(batch_shape)
        new.num_levels = self.num_levels
        super(DiscretizedGaussian, new).__init__(batch_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """log P(x) in nats; values are snapped to the nearest level k/(L−1) (shape: broadcast)."""
        if self._validate_args:
            self._validate_sample(value)
        L = self.num_levels
        k = (value * (L - 1)).round().clamp(0, L - 1)
        centre = k / (L - 1)
        lower = (centre - self.half_width - self.loc) / self.scale
        upper = (centre + self.half_width - self.loc) / self.scale
        inner = log_normal_cdf_diff(lower, upper)
        first = _log_ndtr(upper)  # P(x_0) = Φ(u)
        last = _log_ndtr(-lower)  # P(x_{L-1}) = 1 − Φ(l) = Φ(−l)
        return torch.where(k == 0, first, torch.where(k == L - 1, last, inner))

    def enumerate_support(self, expand: bool = True) -> torch.Tensor:
        """The L levels, shape (L, *batch_shape) (or (L, 1, ..., 1) with ``expand=False``)."""
        levels = torch.linspace(0.0, 1.0, self.num_levels, dtype=self.loc.dtype, device=self.loc.device)
        levels = levels.reshape((-1,) + (1,) * len(self.batch_shape))
        return levels.expand((-1,) + self.batch_shape) if expand else levels

    def quantize(self, y: torch.Tensor) -> torch.Tensor:
        """Map continuous y to its bin's level: clamp(round(y(L−1)), 0, L−1)/(L−1)."""
        L = self.num_levels
        return (y * (L - 1)).round().clamp(0, L - 1) / (L - 1)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        """x = quantize(μ + s ε): exactly the bin probabilities above (shape sample + batch)."""
        with torch.no_grad():
            y = torch.normal(self.loc.expand(self._extended_shape(sample_shape)),
                             self.scale.expand(self._extended_shape(sample_shape)))
            return self.quantize(y)

    @property
    def mean(self) -> torch.Tensor:
        """E[x] = Σ_{k=1}^{L−1} (1/(L−1)) P(x ≥ x_k) = (1/(L−1)) Σ_k Φ((μ − x_k + δ)/s)."""
        thresholds = self.enumerate_support(expand=False)[1:] - self.half_width
        return torch.special.ndtr((self.loc - thresholds) / self.scale).sum(0) / (self.num_levels - 1)


@register_sampler(DiscretizedGaussian)
def _(dist: DiscretizedGaussian, shape: torch.Size, generator: torch.Generator) -> torch.Tensor:
    with torch.no_grad():
        eps = torch.randn(dist._extended_shape(shape), generator=generator, dtype=dist.loc.dtype,
                          device=dist.loc.device)
        return dist.quantize(dist.loc + dist.scale * eps)
