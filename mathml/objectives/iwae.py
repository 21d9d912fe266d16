"""Importance-weighted bounds on log p(x) (Burda et al. 2016).

With z_1..z_k ~ q(z|x) and log-weights log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x),

    L_k(x) = E[log (1/k) Σ_i w_i] ≤ log p(x)       (Burda et al. 2016, eq. 8),

non-decreasing in k (their Theorem 1), L_1 is the ELBO and L_k → log p(x) as k → ∞. The same
estimator with large k (k = 5000 in Burda et al. 2016, §5; Rezende et al. 2014, App. E) is the
standard evaluation of log p(x). Log-sum-exp runs over the k axis of each data point, never across
the batch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Distribution

from mathml.distributions.sampling import rsample

from ._checks import check_inputs, decode


def _log_weights(
    x: torch.Tensor, q_z: Distribution, decoder: Callable, prior: Distribution, k: int,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """log w_i = log p(x|z_i) + log p(z_i) − log q(z_i|x), z_i ~ q(z|x): shape (k, B)."""
    z = rsample(q_z, (k,), generator=generator)  # (k, B, d)
    return decode(decoder, z, x).log_prob(x) + prior.log_prob(z) - q_z.log_prob(z)


def _check_k(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return value


class IWAE(nn.Module):
    """The k-sample importance-weighted bound, per data point.

    Args:
        k: number of importance samples k ≥ 1; k = 1 is the single-sample ELBO estimate.
    """

    def __init__(self, k: int = 5) -> None:
        super().__init__()
        self.k = _check_k("k", k)

    def extra_repr(self) -> str:
        return f"k={self.k}"

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
            q_z: q(z|x), batch_shape (B,), event_shape (d,).
            decoder: z (k, B, d) -> p(x|z) with batch_shape (k, B), event_shape x_shape.
            prior: p(z), event_shape (d,).
            generator: randomness for the draws of z.

        Returns:
            dict of (B,) tensors in nats: ``iwae`` = log (1/k) Σ_i w_i and ``loss`` = −iwae.
        """
        check_inputs(x, q_z, decoder, prior)
        log_w = _log_weights(x, q_z, decoder, prior, self.k, generator)
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
) -> torch.Tensor:
    """Estimate of log p(x) in nats: log (1/k) Σ_{i=1..k} w_i (Burda et al. 2016, eq. 8 and §5).

    The k samples are drawn ``chunk`` at a time and combined with a running log-sum-exp, so
    memory is O(chunk · B) whatever k is.

    Args:
        x: (B, *x_shape) data.
        q_z: q(z|x), batch_shape (B,), event_shape (d,).
        decoder: z (c, B, d) -> p(x|z) with batch_shape (c, B), event_shape x_shape.
        prior: p(z), event_shape (d,).
        k: total importance samples (≥ 1).
        chunk: samples per decoder call (≥ 1).
        generator: randomness for the draws of z.

    Returns:
        (B,) tensor; an estimate whose expectation is a lower bound that tightens as k grows.
    """
    check_inputs(x, q_z, decoder, prior)
    k, chunk = _check_k("k", k), _check_k("chunk", chunk)
    total = None
    for start in range(0, k, chunk):
        part = torch.logsumexp(_log_weights(x, q_z, decoder, prior, min(chunk, k - start), generator), dim=0)
        total = part if total is None else torch.logaddexp(total, part)
    return total - math.log(k)
