"""Importance-weighted bounds on log p(x) (Burda et al. 2016).

With z_1..z_k ~ q(z|x) and log-weights log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x),

    L_k(x) = E[log (1/k) Σ_i w_i] ≤ log p(x)       (Burda et al. 2016, eq. 8),

non-decreasing in k (their Theorem 1), L_1 is the ELBO and L_k → log p(x) as k → ∞. The same
estimator with large k (k = 5000 in Burda et al. 2016, §5; Rezende et al. 2014, App. E) is the
standard evaluation of log p(x). Log-sum-exp runs over the k axis of each data point, never across
the batch.

Gradient of the inference network. The standard reparameterised gradient of L_k with respect to
q's parameters φ loses signal as k grows: its signal-to-noise ratio falls like O(1/√k) (Rainforth
et al. 2018, "Tighter variational bounds are not necessarily better", Theorem 1). The doubly
reparameterised estimator (DReG; Tucker, Lawson, Gu & Maddison 2019, eq. 5 and eq. 8) removes the
score-function term of that gradient with a second reparameterisation:

    ∇_φ L_k = E_ε[ Σ_i  w̃_i² · ∂ log w_i / ∂z_i · ∂z_i / ∂φ ],   w̃_i = w_i / Σ_j w_j,

where log w_i = log p(x, z_i) − log q_φ(z_i|x) is differentiated through z_i = z(ε_i, φ) only (φ
held fixed inside log q_φ). Its SNR grows with k. The decoder (and prior) gradient is unchanged,
the standard Σ_i w̃_i ∇_θ log w_i (Burda et al. 2016, §3).

Standard error of the log-likelihood estimate. For log p̂(x) = log ŵ̄, ŵ̄ = (1/k) Σ_i w_i, the
first-order delta method (Casella & Berger 2002, Theorem 5.5.24) with Var(ŵ̄) ≈ s_w²/k gives

    SE[log p̂(x)] ≈ s_w / (√k · ŵ̄) = √[(k Σ_i w_i² / (Σ_i w_i)² − 1) / (k − 1)],

s_w² the unbiased sample variance of the weights. The ratio (Σ w)² / Σ w² is Kish's effective sample
size, so the SE is √[(k/ESS − 1)/(k − 1)]; both sums run as log-sum-exps, chunk by chunk.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Distribution

from mathml.checks import check_choice, check_positive_int
from mathml.distributions.sampling import rsample, sample

from ._checks import check_inputs, decode


def _log_weights(
    x: torch.Tensor, q_z: Distribution, decoder: Callable, prior: Distribution, z: torch.Tensor
) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x) for ``z: (k, B, d)``: shape (k, B)."""
    return decode(decoder, z, x).log_prob(x) + prior.log_prob(z) - q_z.log_prob(z)


def _dreg_log_weights(
    x: torch.Tensor, q_z: Distribution, decoder: Callable, prior: Distribution, z: torch.Tensor
) -> torch.Tensor:
    """log w_i with DReG's gradient routing (Tucker et al. 2019, eq. 8); shape (k, B).

    Values equal :func:`_log_weights`. Gradients of logsumexp(log w):
    - into θ (decoder, prior): Σ_i w̃_i ∇_θ log w_i, the standard IWAE gradient;
    - into z_i, hence φ: w̃_i² ∂ log w_i/∂z_i (a hook multiplies the incoming w̃_i by w̃_i);
    - into φ directly through log q_φ(z_i): none. log q_φ(z) − [log q_φ(z̄) − stop(log q_φ(z̄))]
      with z̄ = stop(z) keeps the value and the path through z, and cancels the direct term.
    """
    if not z.requires_grad:  # nothing reaches φ through z (e.g. under no_grad): plain weights
        return _log_weights(x, q_z, decoder, prior, z)
    log_q_bar = q_z.log_prob(z.detach())
    weights: dict[str, torch.Tensor] = {}
    z = z.clone()  # a node of its own, so the hook sees only the gradient of this objective
    z.register_hook(lambda grad: grad * weights["w"].unsqueeze(-1))
    log_q = q_z.log_prob(z) - (log_q_bar - log_q_bar.detach())
    log_w = decode(decoder, z, x).log_prob(x) + prior.log_prob(z) - log_q
    weights["w"] = torch.softmax(log_w.detach(), dim=0)  # w̃_i, read by the hook during backward
    return log_w


ESTIMATORS = ("standard", "dreg")


class IWAE(nn.Module):
    """The k-sample importance-weighted bound, per data point.

    Args:
        k: number of importance samples k ≥ 1; k = 1 is the single-sample ELBO estimate.
        estimator: gradient of the inference network. ``"standard"``: the reparameterised
            gradient of L_k (Burda et al. 2016, §3). ``"dreg"``: the doubly reparameterised
            gradient (Tucker et al. 2019, eq. 8), unbiased for the same ∇_φ L_k and with an SNR that
            grows with k (see the module docstring). The value of the bound and the decoder's
            gradient are the same for both.
    """

    def __init__(self, k: int = 5, estimator: str = "standard") -> None:
        super().__init__()
        self.k = check_positive_int(k, "k")
        self.estimator = check_choice(estimator, "estimator", ESTIMATORS)

    def extra_repr(self) -> str:
        return f"k={self.k}, estimator={self.estimator!r}"

    def forward(
        self,
        x: torch.Tensor,
        q_z: Distribution,
        decoder: Callable[[torch.Tensor], Distribution],
        prior: Distribution,
        *,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """L_k for each data point.

        Args:
            x: (B, *x_shape) data.
            q_z: q(z|x), batch_shape (B,), event_shape (d,); it must have a reparameterised
                sampler (a ``TypeError`` names it otherwise).
            decoder: z (k, B, d) -> p(x|z) with batch_shape (k, B), event_shape x_shape.
            prior: p(z), event_shape (d,).
            generator: randomness for the draws of z.

        Returns:
            dict of (B,) tensors in nats: ``iwae`` = log (1/k) Σ_i w_i and ``loss`` = −iwae.
        """
        check_inputs(x, q_z, decoder, prior)
        z = rsample(q_z, (self.k,), generator=generator)  # (k, B, d)
        weigh = _dreg_log_weights if self.estimator == "dreg" else _log_weights
        log_w = weigh(x, q_z, decoder, prior, z)
        iwae = torch.logsumexp(log_w, dim=0) - math.log(self.k)
        return {"loss": -iwae, "iwae": iwae}


@torch.no_grad()
def importance_sampled_log_likelihood(
    x: torch.Tensor,
    q_z: Distribution,
    decoder: Callable[[torch.Tensor], Distribution],
    prior: Distribution,
    *,
    k: int = 1000,
    chunk: int = 100,
    generator: torch.Generator | None = None,
    return_stderr: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Estimate of log p(x) in nats: log (1/k) Σ_{i=1..k} w_i (Burda et al. 2016, eq. 8 and §5).

    The k samples are drawn ``chunk`` at a time and combined with a running log-sum-exp, so
    memory is O(chunk · B) whatever k is. Draws need no reparameterisation (discrete latents work).

    Args:
        x: (B, *x_shape) data.
        q_z: q(z|x), batch_shape (B,), event_shape (d,).
        decoder: z (c, B, d) -> p(x|z) with batch_shape (c, B), event_shape x_shape.
        prior: p(z), event_shape (d,).
        k: total importance samples (≥ 1; ≥ 2 with ``return_stderr``).
        chunk: samples per decoder call (≥ 1).
        generator: randomness for the draws of z.
        return_stderr: also return the delta-method standard error of each estimate,
            √[(k Σ w² / (Σ w)² − 1)/(k − 1)] nats (module docstring; Casella & Berger 2002,
            Theorem 5.5.24). It measures the Monte-Carlo noise of the estimate, not the bias of
            the bound; a weight distribution with a heavy tail can make it optimistic.

    Returns:
        (B,) tensor, an estimate whose expectation is a lower bound that tightens as k grows; with
        ``return_stderr``, the pair ``(log_px, stderr)`` of (B,) tensors.
    """
    check_inputs(x, q_z, decoder, prior)
    k, chunk = check_positive_int(k, "k"), check_positive_int(chunk, "chunk")
    if return_stderr and k < 2:
        raise ValueError(f"k must be >= 2 for a standard error (return_stderr=True), got {k}")
    log_sum_w = log_sum_w2 = None  # log Σ w_i and log Σ w_i², accumulated over chunks
    for start in range(0, k, chunk):
        z = sample(q_z, (min(chunk, k - start),), generator=generator)
        log_w = _log_weights(x, q_z, decoder, prior, z)
        part, part2 = torch.logsumexp(log_w, dim=0), torch.logsumexp(2 * log_w, dim=0)
        log_sum_w = part if log_sum_w is None else torch.logaddexp(log_sum_w, part)
        log_sum_w2 = part2 if log_sum_w2 is None else torch.logaddexp(log_sum_w2, part2)
    log_px = log_sum_w - math.log(k)
    if not return_stderr:
        return log_px
    k_over_ess = k * torch.exp(log_sum_w2 - 2 * log_sum_w)  # k Σ w² / (Σ w)² ∈ [1, k]
    stderr = ((k_over_ess - 1).clamp_min(0) / (k - 1)).sqrt()
    return log_px, stderr
