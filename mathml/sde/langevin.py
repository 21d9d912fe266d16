"""Langevin samplers over a batch of chains: unadjusted (ULA), Metropolis-adjusted (MALA), annealed
(Song & Ermon 2019) and underdamped (BAOAB).

The overdamped Langevin diffusion dx = ∇log π(x) dt + √2 dw has π as its stationary law (Roberts &
Tweedie 1996, "Exponential convergence of Langevin distributions and their discrete
approximations", Bernoulli 2(4), eq. 1.2). Every sampler takes a batch of chains
``x0: (chains, ...)``, draws its noise from an injected ``torch.Generator``, and returns a
``LangevinResult`` whose ``x`` has the shape of ``x0``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from mathml.checks import (
    check_generator,
    check_nonnegative_int,
    check_positive,
    check_positive_int,
    check_tensor,
)

from .base import append_dims


@dataclass
class LangevinResult:
    """What a Langevin sampler returns.

    Attributes:
        x: (chains, ...) final states.
        chain: (chains, draws, ...) the states kept after ``burn_in`` every ``thin`` steps, or None.
        acceptance_rate: (chains,) fraction of proposals accepted after burn-in (MALA), else None.
        step_size: (chains,) the step size each chain ended with (MALA adapts it during burn-in).
        v: (chains, ...) final velocities (underdamped Langevin), else None.
    """

    x: torch.Tensor
    chain: torch.Tensor | None = None
    acceptance_rate: torch.Tensor | None = None
    step_size: torch.Tensor | None = None
    v: torch.Tensor | None = None


def _check_common(x0, step_size, n_steps, generator, burn_in, thin) -> None:
    check_tensor(x0, "x0", min_dim=1, shape_doc="(chains, ...)")
    if not x0.is_floating_point():
        raise TypeError(f"x0 must be a floating-point tensor, got {x0.dtype}")
    check_positive(step_size, "step_size")
    check_positive_int(n_steps, "n_steps")
    check_generator(generator)
    check_nonnegative_int(burn_in, "burn_in")
    if thin is not None:
        check_positive_int(thin, "thin")
    if burn_in >= n_steps and thin is not None:
        raise ValueError(f"burn_in ({burn_in}) must be < n_steps ({n_steps}) to keep any draws")


def _noise(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _keep(step: int, burn_in: int, thin: int | None) -> bool:
    """Whether the state after ``step`` (1-based) is recorded."""
    return thin is not None and step > burn_in and (step - burn_in) % thin == 0


def _stack(kept: list[torch.Tensor]) -> torch.Tensor | None:
    return torch.stack(kept, dim=1) if kept else None


def ula(
    score: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    *,
    step_size: float,
    n_steps: int,
    generator: torch.Generator | None = None,
    burn_in: int = 0,
    thin: int | None = None,
) -> LangevinResult:
    """The unadjusted Langevin algorithm (Roberts & Tweedie 1996, eq. 1.5; Durmus & Moulines 2017):

        x_{k+1} = x_k + h ∇log π(x_k) + √(2h) ξ_k,   ξ_k ~ N(0, I).

    Its stationary law is biased by O(h): on π = N(0, s²) the recursion x' = (1 − h/s²) x + √(2h) ξ
    settles at variance s² / (1 − h/(2s²)), not s².

    Args:
        score: ∇log π, ``(chains, ...) -> (chains, ...)``.
        x0: (chains, ...) initial states.
        step_size: h > 0.
        n_steps: number of steps.
        generator: source of ξ.
        burn_in: steps before any state is kept.
        thin: keep every ``thin``-th state after burn-in in ``chain`` (None: keep none).
    """
    _check_common(x0, step_size, n_steps, generator, burn_in, thin)
    x, kept, scale = x0, [], math.sqrt(2.0 * step_size)
    # Noise for up to 32 steps is drawn in one call (at most ~2^20 numbers at a time): for small
    # batches the per-call cost of the generator, not the numbers, dominates a step.
    block = max(1, min(32, (1 << 20) // max(1, x0.numel())))
    xi = torch.empty((block, *x0.shape), dtype=x0.dtype, device=x0.device)
    for k in range(1, n_steps + 1):
        j = (k - 1) % block
        if j == 0:
            torch.randn(xi.shape, generator=generator, dtype=x0.dtype, device=x0.device, out=xi)
        x = torch.add(x, score(x), alpha=step_size).add_(xi[j], alpha=scale)
        if _keep(k, burn_in, thin):
            kept.append(x)
    h = torch.full(x0.shape[:1], step_size, dtype=x0.dtype, device=x0.device)
    return LangevinResult(x=x, chain=_stack(kept), step_size=h)


def _value_and_grad(log_prob: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor):
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        lp = log_prob(x)
        if lp.shape != x.shape[:1]:
            raise ValueError(f"log_prob(x) must return (chains,) = {tuple(x.shape[:1])}, got {tuple(lp.shape)}")
        (grad,) = torch.autograd.grad(lp.sum(), x)
    return lp.detach(), grad.detach()


def mala(
    log_prob: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    *,
    step_size: float,
    n_steps: int,
    generator: torch.Generator | None = None,
    burn_in: int = 0,
    thin: int | None = None,
    adapt: bool = False,
    target_acceptance: float = 0.574,
) -> LangevinResult:
    """The Metropolis-adjusted Langevin algorithm (Roberts & Tweedie 1996, §1.4.2): propose

        y = x + h ∇log π(x) + √(2h) ξ,     q(y | x) = N(y; x + h ∇log π(x), 2h I),

    and accept with probability min(1, π(y) q(x | y) / (π(x) q(y | x))). π is then exactly stationary
    at any h. ∇log π comes from ``log_prob`` by autograd.

    With ``adapt=True`` each chain's h is tuned during burn-in only, by the Robbins–Monro recursion
    log h ← log h + k^{−0.6} (a_k − target_acceptance) (Andrieu & Thoms 2008, "A tutorial on adaptive
    MCMC", §4 and Alg. 4, with a_k the step's acceptance probability); it is frozen afterwards, so the
    kept draws come from a fixed π-invariant kernel. 0.574 is the optimal acceptance rate of Roberts &
    Rosenthal 1998.

    Args:
        log_prob: log π up to a constant, ``(chains, ...) -> (chains,)``.
        x0: (chains, ...) initial states.
        step_size: initial h > 0.
        n_steps, generator, burn_in, thin: as in ``ula``.
        adapt: tune h per chain during burn-in (needs ``burn_in > 0``).
        target_acceptance: in (0, 1).

    Returns:
        ``LangevinResult`` with ``acceptance_rate`` (chains,) over the steps after burn-in (over all
        steps when burn_in = 0) and the final per-chain ``step_size``.
    """
    _check_common(x0, step_size, n_steps, generator, burn_in, thin)
    if not 0.0 < target_acceptance < 1.0:
        raise ValueError(f"target_acceptance must be in (0, 1), got {target_acceptance!r}")
    if adapt and burn_in == 0:
        raise ValueError("adapt=True tunes the step size during burn-in only; set burn_in > 0")
    chains, nd = x0.shape[0], x0.dim()
    h = torch.full((chains,), float(step_size), dtype=x0.dtype, device=x0.device)
    x = x0.detach()
    lp_x, grad_x = _value_and_grad(log_prob, x)
    accepted = torch.zeros(chains, dtype=x0.dtype, device=x0.device)
    counted, kept = 0, []
    for k in range(1, n_steps + 1):
        hb = append_dims(h, nd)
        mean_x = x + hb * grad_x
        y = mean_x + torch.sqrt(2.0 * hb) * _noise(x, generator)
        lp_y, grad_y = _value_and_grad(log_prob, y)
        mean_y = y + hb * grad_y
        # log q(x | y) − log q(y | x) with q(b | a) = N(b; a + h∇log π(a), 2h I).
        log_q_ratio = ((y - mean_x).flatten(1).pow(2).sum(1) - (x - mean_y).flatten(1).pow(2).sum(1)) / (4.0 * h)
        log_alpha = (lp_y - lp_x + log_q_ratio).clamp(max=0.0)
        u = torch.rand(chains, generator=generator, dtype=x0.dtype, device=x0.device)
        accept = torch.log(u) < log_alpha
        a = append_dims(accept, nd)
        x = torch.where(a, y, x)
        grad_x = torch.where(a, grad_y, grad_x)
        lp_x = torch.where(accept, lp_y, lp_x)
        if k <= burn_in and adapt:
            h = h * torch.exp(k ** -0.6 * (log_alpha.exp() - target_acceptance))
        if k > burn_in:
            accepted += accept.to(x0.dtype)
            counted += 1
        if _keep(k, burn_in, thin):
            kept.append(x)
    return LangevinResult(x=x, chain=_stack(kept), acceptance_rate=accepted / max(counted, 1), step_size=h)


def annealed_langevin(
    score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    sigmas: Sequence[float] | torch.Tensor,
    *,
    step_lr: float = 2e-5,
    n_steps_each: int = 100,
    generator: torch.Generator | None = None,
    denoise: bool = False,
) -> LangevinResult:
    """Annealed Langevin dynamics (Song & Ermon 2019, "Generative Modeling by Estimating Gradients
    of the Data Distribution", Alg. 1): for noise levels σ_1 > … > σ_L, with α_i = ε σ_i² / σ_L²,
    run T steps of

        x ← x + (α_i / 2) s(x, σ_i) + √α_i z,   z ~ N(0, I),

    at each level. ``denoise=True`` ends with the Tweedie step x + σ_L² s(x, σ_L) (Efron 2011;
    Jolicoeur-Martineau et al. 2021, §2).

    Args:
        score: s(x, σ) ≈ ∇log p_σ(x), with ``x: (chains, ...)`` and ``σ: (chains,)``.
        x0: (chains, ...) initial states.
        sigmas: (L,) decreasing noise levels.
        step_lr: ε.
        n_steps_each: T, steps per level.
        generator: source of z.
    """
    check_tensor(x0, "x0", min_dim=1, shape_doc="(chains, ...)")
    sig = torch.as_tensor(sigmas, dtype=torch.float64).flatten()
    if sig.numel() < 1 or not bool((sig > 0).all()) or not bool((sig[1:] < sig[:-1]).all()):
        raise ValueError(f"sigmas must be a non-empty, positive, strictly decreasing sequence, got {sig.tolist()}")
    check_positive(step_lr, "step_lr")
    check_positive_int(n_steps_each, "n_steps_each")
    check_generator(generator)
    x, chains = x0, x0.shape[0]
    sigma_last = float(sig[-1])
    for sigma in sig.tolist():
        alpha = step_lr * sigma**2 / sigma_last**2
        s_t = torch.full((chains,), sigma, dtype=x0.dtype, device=x0.device)
        for _ in range(n_steps_each):
            x = x + 0.5 * alpha * score(x, s_t) + math.sqrt(alpha) * _noise(x, generator)
    if denoise:
        s_t = torch.full((chains,), sigma_last, dtype=x0.dtype, device=x0.device)
        x = x + sigma_last**2 * score(x, s_t)
    return LangevinResult(x=x)


def underdamped_langevin(
    score: Callable[[torch.Tensor], torch.Tensor],
    x0: torch.Tensor,
    *,
    step_size: float,
    n_steps: int,
    friction: float = 1.0,
    v0: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    burn_in: int = 0,
    thin: int | None = None,
) -> LangevinResult:
    """Underdamped (kinetic) Langevin dynamics with unit mass,

        dx = v dt,   dv = ∇log π(x) dt − γ v dt + √(2γ) dw,

    integrated by the BAOAB splitting (Leimkuhler & Matthews 2013, "Rational construction of
    stochastic numerical methods for molecular sampling", AMRX, eq. 10): B: v += (h/2) ∇log π(x);
    A: x += (h/2) v; O: v = e^{−γh} v + √(1 − e^{−2γh}) ξ; A: x += (h/2) v; B: v += (h/2) ∇log π(x).
    One score evaluation per step (the last B's gradient is reused). For Gaussian π, BAOAB's
    stationary law of x is exactly π at every stable h (Leimkuhler & Matthews 2013, §4.1).

    Args:
        score: ∇log π, ``(chains, ...) -> (chains, ...)``.
        x0: (chains, ...) initial positions; v0: initial velocities (None: drawn from N(0, I)).
        step_size: h > 0. friction: γ > 0. n_steps, generator, burn_in, thin: as in ``ula``.
    """
    _check_common(x0, step_size, n_steps, generator, burn_in, thin)
    check_positive(friction, "friction")
    h = float(step_size)
    v = _noise(x0, generator) if v0 is None else v0
    if v.shape != x0.shape:
        raise ValueError(f"v0 must have x0's shape {tuple(x0.shape)}, got {tuple(v.shape)}")
    c1 = math.exp(-friction * h)
    c2 = math.sqrt(-math.expm1(-2.0 * friction * h))
    x, grad, kept = x0, score(x0), []
    for k in range(1, n_steps + 1):
        v = v + 0.5 * h * grad
        x = x + 0.5 * h * v
        v = c1 * v + c2 * _noise(x, generator)
        x = x + 0.5 * h * v
        grad = score(x)
        v = v + 0.5 * h * grad
        if _keep(k, burn_in, thin):
            kept.append(x)
    hh = torch.full(x0.shape[:1], h, dtype=x0.dtype, device=x0.device)
    return LangevinResult(x=x, chain=_stack(kept), step_size=hh, v=v)
