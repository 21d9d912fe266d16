"""The evidence lower bound with β and free bits.

Kingma & Welling (2014), eq. 3 and eq. 10 (the SGVB estimator B):

    log p(x) ≥ L(x) = E_{q(z|x)}[log p(x|z)] − KL(q(z|x) ‖ p(z)),

with the expectation estimated by S reparameterised draws z_s = μ + σ ⊙ ε_s. β-VAE (Higgins et
al. 2017, eq. 4) weights the KL term by β. Free bits (Kingma et al. 2016, "Improved Variational
Inference with Inverse Autoregressive Flow", Appendix C.8) replace the KL term by

    Σ_j max(λ, E_batch[KL(q(z_j|x) ‖ p(z_j))]),

so no latent dimension is pushed below λ nats.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Distribution

from mathml.distributions.sampling import rsample

from ._checks import check_inputs, decode
from .kl import closed_form_kl, factors, kl_divergence


def _check_beta(beta: object) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
        raise ValueError(f"beta must be a number >= 0, got {beta!r}")
    return float(beta)


class ELBO(nn.Module):
    """Per-sample ELBO terms; the recipe reduces them.

    Args:
        beta: weight β ≥ 0 of the KL term in the loss (β = 1: the ELBO; Higgins et al. 2017).
        free_bits: λ ≥ 0 nats per latent dimension (Kingma et al. 2016, App. C.8); 0 disables it.
            Needs a factorised q(z|x) and p(z) (``Independent(base, 1)``).
        analytic_kl: use the closed-form KL when one is registered (else Monte Carlo anyway).
        kl_samples: draws S_KL ≥ 1 for the Monte-Carlo KL.
        samples: draws S ≥ 1 of z per data point for the reconstruction term.
    """

    def __init__(
        self,
        beta: float = 1.0,
        free_bits: float = 0.0,
        analytic_kl: bool = True,
        kl_samples: int = 1,
        samples: int = 1,
    ) -> None:
        super().__init__()
        self.beta = _check_beta(beta)
        if isinstance(free_bits, bool) or not isinstance(free_bits, (int, float)) or not free_bits >= 0:
            raise ValueError(f"free_bits must be a number >= 0 (nats per latent dimension), got {free_bits!r}")
        for name, value in (("kl_samples", kl_samples), ("samples", samples)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.free_bits = float(free_bits)
        self.analytic_kl = bool(analytic_kl)
        self.kl_samples = kl_samples
        self.samples = samples

    def extra_repr(self) -> str:
        return (f"beta={self.beta}, free_bits={self.free_bits}, analytic_kl={self.analytic_kl}, "
                f"kl_samples={self.kl_samples}, samples={self.samples}")

    def _kl(self, q: Distribution, p: Distribution, generator: torch.Generator | None) -> torch.Tensor:
        """Closed form when registered and wanted, else the Monte-Carlo estimate."""
        kl = closed_form_kl(q, p) if self.analytic_kl else None
        if kl is None:
            kl = kl_divergence(q, p, samples=self.kl_samples, generator=generator)
        return kl

    def forward(
        self,
        x: torch.Tensor,
        q_z: Distribution,
        decoder: Callable[[torch.Tensor], Distribution],
        prior: Distribution,
        *,
        beta: float | None = None,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Terms of the ELBO for each data point.

        Args:
            x: (B, *x_shape) data.
            q_z: q(z|x), batch_shape (B,), event_shape (d,).
            decoder: z (S, B, d) -> p(x|z) with batch_shape (S, B), event_shape x_shape.
            prior: p(z), event_shape (d,); batch_shape () or (B,).
            beta: overrides ``self.beta`` for this call (KL warm-up).
            generator: randomness for the draws of z.

        Returns:
            dict of (B,) tensors in nats: ``reconstruction`` = (1/S) Σ_s log p(x|z_s);
            ``kl`` = KL(q(z|x) ‖ p(z)); ``elbo`` = reconstruction − kl (the bound, β = 1, no free
            bits); ``loss`` = −(reconstruction − β · kl_term), kl_term with free bits applied.
        """
        check_inputs(x, q_z, decoder, prior)
        beta = self.beta if beta is None else _check_beta(beta)
        z = rsample(q_z, (self.samples,), generator=generator)  # (S, B, d)
        reconstruction = decode(decoder, z, x).log_prob(x).mean(0)

        if self.free_bits > 0:
            try:
                q_j, p_j = factors(q_z, prior)
            except ValueError as err:
                raise ValueError(f"free_bits={self.free_bits} > 0: {err}") from None
            kl_ij = self._kl(q_j, p_j, generator)  # (B, d)
            kl_ij = kl_ij.expand(x.shape[:1] + kl_ij.shape[-1:])
            kl = kl_ij.sum(-1)
            # Per-sample form whose batch mean is Σ_j max(λ, m_j), with the same gradient.
            m_j = kl_ij.detach().mean(0)
            kl_term = torch.where(m_j >= self.free_bits, kl_ij, torch.full_like(kl_ij, self.free_bits)).sum(-1)
        else:
            kl = self._kl(q_z, prior, generator).expand(x.shape[:1])
            kl_term = kl

        return {
            "loss": -(reconstruction - beta * kl_term),
            "elbo": reconstruction - kl,
            "reconstruction": reconstruction,
            "kl": kl,
        }
