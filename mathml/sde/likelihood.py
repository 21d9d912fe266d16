"""Exact log-likelihoods of a diffusion model through its probability-flow ODE.

The probability-flow ODE dx/dt = v(x, t) = f(t) x − ½ g(t)² s(x, t) (Song et al. 2021, eq. 13)
is a continuous normalising flow, so by the instantaneous change of variables (Chen et al. 2018,
"Neural Ordinary Differential Equations", Thm. 1) d log p_t(x(t))/dt = −∇·v(x(t), t), and

    log p_{t_min}(x) = log p_T(x(T)) + ∫_{t_min}^{T} ∇·v(x(t), t) dt                  (Song et al. 2021, App. D.2, eq. 39–40)

with x(t_min) = x. The divergence is exact (D autograd passes: low dimension) or Hutchinson's
estimate ∇·v ≈ εᵀ (∂v/∂x) ε (Hutchinson 1989; Grathwohl et al. 2019, "FFJORD", eq. 7) with probes
ε drawn once and held fixed along the trajectory, so the integral is of one smooth function.

**Error control per sample.** torchdiffeq's default error norm is an RMS over the whole batch, so
one hard trajectory among many is under-resolved (on the 10-D benchmark, ``benchmarks/likelihood.py``,
the worst of 256 points was off by 0.03 nats at rtol = atol = 1e-5 while the mean error was 6e-4).
By default the step is accepted only when every sample's own error (RMS over its coordinates,
and its log-density) is within tolerance, which bounds the worst point instead of the average
(same benchmark, VP, rtol = atol = 1e-5: worst point 1.2e-3 nats with 164 evaluations instead of
0.03 with 110). For errors below ~1e-5 nats the 8th-order ``method="dopri8"`` needs fewer
evaluations than dopri5 (VP: 5e-6 worst-point error in 288 evaluations at 1e-5; dopri5 needs
350 at 1e-7 for 2.5e-6).

The ODE is integrated from t_min to T with torchdiffeq (``options["step_t"]`` holds the end point so the
adaptive solver never evaluates the score beyond T: ENV.md gotcha 13).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from mathml.checks import check_generator, check_positive, check_positive_int, check_tensor
from mathml.metrics.nll import dequantized_bits_per_dim, uniform_dequantize  # re-exported: one implementation

from .base import LinearSDE

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["LikelihoodResult", "log_likelihood", "log_prob_to_bits_per_dim", "uniform_dequantize"]

_ADAPTIVE = ("dopri5", "dopri8", "bosh3", "fehlberg2", "adaptive_heun", "tsit5")


@dataclass
class LikelihoodResult:
    """What ``log_likelihood`` returns.

    Attributes:
        log_prob: (B,) log p_{t_min}(x) in nats.
        prior_log_prob: (B,) log p_T(x(T)) in nats.
        delta_log_prob: (B,) ∫_{t_min}^T ∇·v dt = log_prob − prior_log_prob.
        latent: (B, ...) x(T), the data mapped to noise.
        nfe: score evaluations made (one per ODE right-hand-side call).
    """

    log_prob: torch.Tensor
    prior_log_prob: torch.Tensor
    delta_log_prob: torch.Tensor
    latent: torch.Tensor
    nfe: int


class _Dynamics(torch.nn.Module):
    """The augmented right-hand side (dx/dt, ∇·v) on flat states x: (B, D), in t."""

    def __init__(self, sde, score, shape, probes):
        super().__init__()
        self.sde, self.score, self.shape, self.probes = sde, score, shape, probes
        self.nfe = 0

    def score_and_trace(self, x: torch.Tensor, t_b: torch.Tensor):
        """(s (B, D), tr ∇ₓ s (B,)): exact (D reverse passes) or Hutchinson with the fixed probes."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            s = self.score(x.reshape(self.shape), t_b).reshape(x.shape)
            if self.probes is None:
                cols = [torch.autograd.grad(s[:, i].sum(), x, retain_graph=i < x.shape[1] - 1)[0][:, i]
                        for i in range(x.shape[1])]
                tr = torch.stack(cols, 1).sum(1)
            else:  # mean over probes ε of εᵀ (∂s/∂x) ε
                n = self.probes.shape[0]
                tr = sum((torch.autograd.grad(s, x, grad_outputs=e, retain_graph=k < n - 1)[0] * e).sum(1)
                         for k, e in enumerate(self.probes)) / n
        return s.detach(), tr.detach()

    def forward(self, t: torch.Tensor, state):
        x = state[0]
        self.nfe += 1
        s, tr = self.score_and_trace(x, t.expand(x.shape[0]))
        f, g2 = self.sde.drift_coefficient(t), self.sde.diffusion_squared(t)
        # v = f x − ½ g² s (Song et al. 2021, eq. 13); ∇·v = D f − ½ g² tr ∇ₓ s.
        return f * x - 0.5 * g2 * s, x.shape[1] * f - 0.5 * g2 * tr


def _per_sample_norm(state) -> torch.Tensor:
    """The error norm for the augmented state: the largest over samples of max(RMS over the
    sample's own coordinates, |error of its log-density|)."""
    y, delta = state
    return torch.maximum(y.pow(2).mean(1).sqrt(), delta.abs()).max()


def log_likelihood(sde: LinearSDE, score: Score, x: torch.Tensor, *, exact_trace: bool = False, n_probes: int = 1,
                   probe=None, rtol: float = 1e-5, atol: float = 1e-5,
                   generator: torch.Generator | None = None, t_min: float | None = None,
                   prior_log_prob: Callable[[torch.Tensor], torch.Tensor] | None = None, method: str = "dopri5",
                   options: dict | None = None, per_sample_error: bool = True) -> LikelihoodResult:
    """log p_{t_min}(x) in nats by the instantaneous change of variables along the probability-flow
    ODE (module docstring). Evaluation only: no gradient flows to the score's parameters; works
    inside ``torch.inference_mode()`` too.

    Args:
        sde: the forward LinearSDE.
        score: ``score(x (B, ...), t (B,)) -> (B, ...)``.
        x: (B, ...) data, taken as the state at t_min.
        exact_trace: the exact divergence (D backward passes per evaluation) instead of Hutchinson.
        n_probes: Hutchinson probes per sample (their estimates are averaged; variance ∝ 1/n_probes).
        probe: the probe distribution, ``RademacherProjection()`` (default) or ``GaussianProjection()``.
        rtol, atol: the solver's tolerances (on the state and on the log-density alike).
        generator: draws the probes.
        t_min: where the data sit (None: ``sde.t_min``; Song et al. 2021 use 1e-5 for VP likelihoods).
        prior_log_prob: ``x_T (B, ...) -> (B,)`` log-density at T (None: ``sde.prior_log_prob``).
        method: a torchdiffeq method (adaptive ones get ``step_t`` at the end point).
        options: extra torchdiffeq options (e.g. ``step_size`` for fixed-step methods).
        per_sample_error: accept a step only when every sample's error is within tolerance
            (module docstring); False: torchdiffeq's default norm (RMS over the batch).

    Returns:
        ``LikelihoodResult`` with ``log_prob`` (B,), ``prior_log_prob``, ``delta_log_prob``,
        ``latent`` x(T) and ``nfe``.
    """
    import torchdiffeq

    from mathml.objectives.sliced import Projection, RademacherProjection  # here: mathml.objectives imports mathml.sde

    if not isinstance(sde, LinearSDE):
        raise TypeError(f"sde must be a mathml.sde LinearSDE, got {type(sde).__name__}")
    if not callable(score):
        raise TypeError(f"score must be a callable score(x, t), got {type(score).__name__}")
    check_tensor(x, "x", min_dim=2, shape_doc="(B, ...)")
    if not x.is_floating_point():
        raise TypeError(f"x must be floating point, got {x.dtype}")
    check_positive_int(n_probes, "n_probes")
    check_positive(rtol, "rtol")
    check_positive(atol, "atol")
    check_generator(generator)
    probe = RademacherProjection() if probe is None else probe
    if not isinstance(probe, Projection):
        raise TypeError(f"probe must be a Projection (RademacherProjection(), GaussianProjection()), got {type(probe).__name__}")
    if t_min is None:
        t_min = float(sde.t_min)
    elif isinstance(t_min, bool) or not isinstance(t_min, (int, float)) or not 0 < t_min < sde.T:
        raise ValueError(f"t_min must be a number in (0, T) = (0, {sde.T}) or None, got {t_min!r}")
    prior_log_prob = sde.prior_log_prob if prior_log_prob is None else prior_log_prob
    if not callable(prior_log_prob):
        raise TypeError(f"prior_log_prob must be a callable x_T -> (B,), got {type(prior_log_prob).__name__}")

    b, d = x.shape[0], x[0].numel()
    y0 = x.detach().reshape(b, d)
    probes = None
    if not exact_trace:
        probes = probe.sample((n_probes, b, d), generator=generator, dtype=x.dtype, device=x.device)
    dyn = _Dynamics(sde, score, x.shape, probes)
    grid = torch.tensor([t_min, sde.T], dtype=x.dtype, device=x.device)
    opts = dict(options or {})
    if method in _ADAPTIVE:
        opts.setdefault("step_t", grid[1:])
        if per_sample_error:
            opts.setdefault("norm", _per_sample_norm)
    # The divergence needs autograd even under torch.inference_mode() (e.g. Lightning's test loop):
    # leave inference mode and work on an ordinary copy of x.
    with torch.inference_mode(False), torch.no_grad():
        y0 = y0.clone()
        xs, deltas = torchdiffeq.odeint(dyn, (y0, torch.zeros(b, dtype=x.dtype, device=x.device)), grid,
                                        rtol=rtol, atol=atol, method=method, options=opts)
    latent = xs[-1].reshape(x.shape)
    prior = prior_log_prob(latent)
    return LikelihoodResult(log_prob=prior + deltas[-1], prior_log_prob=prior, delta_log_prob=deltas[-1],
                            latent=latent, nfe=dyn.nfe)


def log_prob_to_bits_per_dim(log_prob: torch.Tensor, *, num_dims: int, num_levels: int,
                             scale: float = 2.0) -> torch.Tensor:
    """Bits per dimension of L-level data from a density's log-probability on rescaled data.

    The chain, with every Jacobian written out (Theis et al. 2016, §3.1; Song et al. 2021, App. D.2):

    1. raw values k ∈ {0, …, L − 1}^D are dequantised to y = (k + u)/L ∈ [0, 1)^D, u ~ U[0, 1)^D
       (``uniform_dequantize``); each k owns a cell of volume L^{−D}, so by Jensen's inequality the
       model's probability of k obeys log P(k) ≥ E_u[log p_Y(y)] − D ln L;
    2. the model sees x = scale · y + shift (scale = 2, shift = −1 maps to [−1, 1)); the shift has
       no Jacobian and p_Y(y) = scale^D p_X(x), so log p_Y = log p_X + D ln scale;
    3. hence −log P(k) ≤ −log p_X(x) − D ln scale + D ln L, and bits/dim is that over D ln 2:

           bpd = (−log p_X(x) − D ln scale + D ln L) / (D ln 2).

    For scale = 2, L = 256 that is −log p_X/(D ln 2) − 1 + 8 (score_sde's "+ 7" offset). Steps 1 and
    3 are ``mathml.metrics.dequantized_bits_per_dim`` applied to the NLL on [0, 1), −log p_X − D ln scale.

    Args:
        log_prob: log p_X(x) in nats per datum (e.g. ``log_likelihood(...).log_prob``), any shape.
        num_dims: D, dimensions per datum.
        num_levels: L ≥ 2.
        scale: the data-scaling factor (x = scale · y + shift), > 0.

    Returns:
        bits/dim, the shape of ``log_prob``.
    """
    scale = check_positive(scale, "scale")
    check_positive_int(num_dims, "num_dims")
    return dequantized_bits_per_dim(-log_prob - num_dims * math.log(scale), num_dims, num_levels)
