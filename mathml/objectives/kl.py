"""KL(q ‖ p) between ``torch.distributions`` objects: closed form by type dispatch, else Monte Carlo.

Closed forms come from torch's ``kl_divergence`` registry plus the pairs registered here with
``@register_kl`` (importing this module registers them). The Monte-Carlo estimate is

    KL(q ‖ p) ≈ (1/S) Σ_s [log q(z_s) − log p(z_s)],   z_s ~ q,

with reparameterised draws where q has them, so gradients flow to q's parameters. Where q has no
reparameterisation (Bernoulli, categorical), the draws carry no gradient and the estimate is
returned as a score-function surrogate (``score_function_surrogate``; Williams 1992): same value,
and an unbiased gradient

    ∇_φ KL = E_q[(log q_φ(z) − log p(z) − b) ∇_φ log q_φ(z)] + E_q[∇_φ log q_φ(z)],

(the last term is 0 in expectation) with the leave-one-out baseline b for S ≥ 2 draws (Kool et
al. 2019). Batch shapes are broadcast (``Distribution.expand``) before dispatch, so every
registered closed form sees q and p of one batch shape.
"""

from __future__ import annotations

import torch
from torch.distributions import Distribution, Independent, MultivariateNormal, Normal, register_kl
from torch.distributions import kl_divergence as _torch_kl

from mathml.checks import check_nonnegative_int
from mathml.distributions.sampling import _describe, rsample, sample

from .reinforce import score_function_surrogate

__all__ = ["closed_form_kl", "kl_divergence", "kl_divergence_per_dim"]


def _check(q: object, p: object, samples: int) -> None:
    for name, d in (("q", q), ("p", p)):
        if not isinstance(d, Distribution):
            raise TypeError(f"{name} must be a torch.distributions.Distribution, got {type(d).__name__}")
    if q.event_shape != p.event_shape:
        raise ValueError(
            f"q and p must have the same event_shape, got {tuple(q.event_shape)} and {tuple(p.event_shape)}"
        )
    check_nonnegative_int(samples, "samples")


def _broadcast(q: Distribution, p: Distribution) -> tuple[Distribution, Distribution]:
    """q and p expanded to ``broadcast(q.batch_shape, p.batch_shape)``; ValueError if they do not broadcast."""
    try:
        shape = torch.broadcast_shapes(q.batch_shape, p.batch_shape)
    except RuntimeError:
        raise ValueError(
            f"q and p must have broadcastable batch shapes, got {tuple(q.batch_shape)} and {tuple(p.batch_shape)}"
        ) from None
    return tuple(d if d.batch_shape == shape else _expand(d, shape) for d in (q, p))


def _expand(d: Distribution, shape: torch.Size) -> Distribution:
    try:
        return d.expand(shape)
    except NotImplementedError:  # a family without expand: its own KL form must broadcast
        return d


def _monte_carlo(q: Distribution, p: Distribution, samples: int, generator: torch.Generator | None) -> torch.Tensor:
    if q.has_rsample:
        z = rsample(q, (samples,), generator=generator)
        return (q.log_prob(z) - p.log_prob(z)).mean(0)
    z = sample(q, (samples,), generator=generator)  # no pathwise gradient: score-function surrogate
    log_q = q.log_prob(z)
    return score_function_surrogate(log_q - p.log_prob(z), log_q,
                                    baseline="leave_one_out" if samples >= 2 else "none")


def kl_divergence(
    q: Distribution, p: Distribution, *, samples: int = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """KL(q ‖ p) = E_q[log q(z) − log p(z)] in nats, per batch element, summed over event dims.

    Args:
        q, p: distributions with equal ``event_shape``; batch shapes broadcast.
        samples: 0 → the closed form (torch's registry plus mathml's registrations); S > 0 → the
            Monte-Carlo mean over S draws z_s ~ q: reparameterised when q supports it, else with
            the score-function gradient (leave-one-out baseline when S ≥ 2; see the module
            docstring).
        generator: randomness for the Monte-Carlo draws (see ``mathml.distributions.sampling``).

    Returns:
        Tensor of shape ``broadcast(q.batch_shape, p.batch_shape)``.

    Raises:
        ValueError: no closed form is registered for (type(q), type(p)) and ``samples == 0``; or
            the batch shapes do not broadcast.
    """
    _check(q, p, samples)
    q, p = _broadcast(q, p)
    if samples > 0:
        return _monte_carlo(q, p, samples, generator)
    kl = closed_form_kl(q, p)
    if kl is None:
        raise ValueError(
            f"no closed-form KL is registered for q={_describe(q)} and p={_describe(p)}; pass samples>0 "
            f"for a Monte-Carlo estimate, or register the pair with torch.distributions.register_kl"
        )
    return kl


def closed_form_kl(q: Distribution, p: Distribution) -> torch.Tensor | None:
    """The registered closed form of KL(q ‖ p) (shape: broadcast batch shape), or ``None`` if none applies.

    q and p are expanded to their broadcast batch shape before dispatch (some of torch's registered
    forms, e.g. Bernoulli–Bernoulli, index with masks of one operand's shape and fail otherwise).
    """
    q, p = _broadcast(q, p)
    try:
        return _torch_kl(q, p)
    except NotImplementedError:
        return None


def kl_divergence_per_dim(
    q: Distribution, p: Distribution, *, samples: int = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """KL(q_j ‖ p_j) for each latent dimension j of factorised q and p (used by free bits).

    For q(z) = Π_j q_j(z_j) and p(z) = Π_j p_j(z_j), KL(q ‖ p) = Σ_j KL(q_j ‖ p_j); this returns
    the terms of that sum. With ``samples`` S > 0 each term is the Monte-Carlo mean
    (1/S) Σ_s [log q_j(z_sj) − log p_j(z_sj)], z_s ~ q.

    Args:
        q, p: ``Independent`` distributions with ``reinterpreted_batch_ndims == 1`` and equal
            event_shape ``(d,)``, e.g. ``Independent(Normal(mu, sigma), 1)``.
        samples, generator: as in :func:`kl_divergence`.

    Returns:
        Tensor of shape ``(*broadcast batch shape, d)``.
    """
    _check(q, p, samples)
    q_j, p_j = factors(q, p)
    return kl_divergence(q_j, p_j, samples=samples, generator=generator)


def factors(q: Distribution, p: Distribution) -> tuple[Distribution, Distribution]:
    """The per-dimension factors (base distributions) of factorised q and p; ValueError otherwise."""
    for name, d in (("q", q), ("p", p)):
        if not (isinstance(d, Independent) and d.reinterpreted_batch_ndims == 1):
            raise ValueError(
                f"a per-dimension KL needs factorised {name}: Independent(base, 1) with event_shape (d,), "
                f"got {_describe(d)}"
            )
    return q.base_dist, p.base_dist


# -- closed forms registered with torch's dispatch ------------------------------------------------


def _diagonal_normal(d: Independent) -> Normal:
    if not (isinstance(d.base_dist, Normal) and d.reinterpreted_batch_ndims == 1):
        raise NotImplementedError  # protocol: torch's KL dispatch reads this as "no closed form"
    return d.base_dist


def _gaussian_kl(
    mu_0: torch.Tensor, mu_1: torch.Tensor, trace: torch.Tensor, L_1: torch.Tensor | None,
    sigma_1: torch.Tensor | None, logdet_0: torch.Tensor, logdet_1: torch.Tensor,
) -> torch.Tensor:
    """½ [tr(Σ₁⁻¹Σ₀) + (μ₁−μ₀)ᵀ Σ₁⁻¹ (μ₁−μ₀) − d + ln|Σ₁| − ln|Σ₀|]  (Matrix Cookbook eq. 380)."""
    diff = mu_1 - mu_0
    if L_1 is not None:
        L_1 = L_1.expand(diff.shape + diff.shape[-1:])
        white = torch.linalg.solve_triangular(L_1, diff.unsqueeze(-1), upper=False).squeeze(-1)
    else:
        white = diff / sigma_1
    d = mu_0.shape[-1]
    return 0.5 * (trace + white.pow(2).sum(-1) - d + logdet_1 - logdet_0)


@register_kl(Independent, MultivariateNormal)
def _kl_diagonal_normal_mvn(q: Independent, p: MultivariateNormal) -> torch.Tensor:
    """q = N(μ₀, diag σ₀²), p = N(μ₁, L₁L₁ᵀ): tr(Σ₁⁻¹Σ₀) = ‖L₁⁻¹ diag σ₀‖_F² (Matrix Cookbook eq. 380)."""
    base = _diagonal_normal(q)
    mu_0, sigma_0 = torch.broadcast_tensors(base.loc, base.scale)
    mu_0, loc_1 = torch.broadcast_tensors(mu_0, p.loc)
    sigma_0 = sigma_0.expand_as(mu_0)
    L_1 = p._unbroadcasted_scale_tril.expand(mu_0.shape + mu_0.shape[-1:])
    trace = torch.linalg.solve_triangular(L_1, torch.diag_embed(sigma_0), upper=False).pow(2).sum((-2, -1))
    logdet_0 = 2.0 * sigma_0.log().sum(-1)
    logdet_1 = 2.0 * L_1.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    return _gaussian_kl(mu_0, loc_1, trace, L_1, None, logdet_0, logdet_1)


@register_kl(MultivariateNormal, Independent)
def _kl_mvn_diagonal_normal(q: MultivariateNormal, p: Independent) -> torch.Tensor:
    """q = N(μ₀, L₀L₀ᵀ), p = N(μ₁, diag σ₁²): tr(Σ₁⁻¹Σ₀) = ‖diag(σ₁)⁻¹ L₀‖_F² (Matrix Cookbook eq. 380)."""
    base = _diagonal_normal(p)
    mu_0, mu_1, sigma_1 = torch.broadcast_tensors(q.loc, base.loc, base.scale)
    L_0 = q._unbroadcasted_scale_tril.expand(mu_0.shape + mu_0.shape[-1:])
    trace = (L_0 / sigma_1.unsqueeze(-1)).pow(2).sum((-2, -1))
    logdet_0 = 2.0 * L_0.diagonal(dim1=-2, dim2=-1).log().sum(-1)
    logdet_1 = 2.0 * sigma_1.log().sum(-1)
    return _gaussian_kl(mu_0, mu_1, trace, None, sigma_1, logdet_0, logdet_1)

