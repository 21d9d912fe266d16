"""The evidence lower bound with β and free bits.

Kingma & Welling (2014), eq. 3 and eq. 10 (the SGVB estimator B):

    log p(x) ≥ L(x) = E_{q(z|x)}[log p(x|z)] − KL(q(z|x) ‖ p(z)),

with the expectation estimated by S reparameterised draws z_s = μ + σ ⊙ ε_s. β-VAE (Higgins et
al. 2017, eq. 4) weights the KL term by β. Free bits (Kingma et al. 2016, "Improved Variational
Inference with Inverse Autoregressive Flow", Appendix C.8) replace the KL term by

    Σ_j max(λ, E_batch[KL(q(z_j|x) ‖ p(z_j))]),

so no latent dimension is pushed below λ nats.

Gradient estimators of the reconstruction term E_q[log p(x|z)] with respect to q's parameters:

- ``"reparameterized"`` (default): the pathwise gradient through z = μ + σ ⊙ ε (Kingma & Welling
  2014, §2.4). A q without a reparameterisation (Bernoulli, categorical latents) is refused with a
  ``TypeError`` naming it, never silently trained with a zero gradient.
- ``"score_function"``: the REINFORCE estimator (Williams 1992) with the leave-one-out baseline
  over the S draws (Kool et al. 2019; see ``mathml.objectives.reinforce``), unbiased for any q
  whose ``log_prob`` is differentiable in its parameters, discrete latents included. Needs S ≥ 2.

The KL term takes its gradient from the closed form when one is registered, else from the
Monte-Carlo KL of ``kl_divergence`` (pathwise, or score-function for a q without rsample).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.distributions import Distribution

from mathml.checks import check_choice, check_nonnegative, check_positive_int
from mathml.distributions.sampling import rsample, sample

from ._checks import check_inputs, decode
from .kl import closed_form_kl, factors, kl_divergence
from .reinforce import score_function_surrogate

ESTIMATORS = ("reparameterized", "score_function")


class ELBO(nn.Module):
    """Per-sample ELBO terms; the recipe reduces them.

    Args:
        beta: weight β ≥ 0 of the KL term in the loss (β = 1: the ELBO; Higgins et al. 2017).
        free_bits: λ ≥ 0 nats per latent dimension (Kingma et al. 2016, App. C.8); 0 disables it.
            Needs a factorised q(z|x) and p(z) (``Independent(base, 1)``).
        analytic_kl: use the closed-form KL when one is registered (else Monte Carlo anyway).
        kl_samples: draws S_KL ≥ 1 for the Monte-Carlo KL.
        samples: draws S ≥ 1 of z per data point for the reconstruction term (S ≥ 2 with
            ``estimator="score_function"``).
        estimator: gradient estimator of the reconstruction term, ``"reparameterized"`` (needs
            a q with rsample) or ``"score_function"`` (REINFORCE with a leave-one-out baseline,
            for discrete latents); see the module docstring.
    """

    def __init__(
        self,
        beta: float = 1.0,
        free_bits: float = 0.0,
        analytic_kl: bool = True,
        kl_samples: int = 1,
        samples: int = 1,
        estimator: str = "reparameterized",
    ) -> None:
        super().__init__()
        self.beta = check_nonnegative(beta, "beta")
        self.free_bits = check_nonnegative(free_bits, "free_bits")
        self.analytic_kl = bool(analytic_kl)
        self.kl_samples = check_positive_int(kl_samples, "kl_samples")
        self.samples = check_positive_int(samples, "samples")
        self.estimator = check_choice(estimator, "estimator", ESTIMATORS)
        if estimator == "score_function" and samples < 2:
            raise ValueError(f"samples must be >= 2 with estimator='score_function' (the leave-one-out "
                             f"baseline uses the other draws), got {samples}")

    def extra_repr(self) -> str:
        return (f"beta={self.beta}, free_bits={self.free_bits}, analytic_kl={self.analytic_kl}, "
                f"kl_samples={self.kl_samples}, samples={self.samples}, estimator={self.estimator!r}")

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
        beta = self.beta if beta is None else check_nonnegative(beta, "beta")
        if self.estimator == "reparameterized":
            z = rsample(q_z, (self.samples,), generator=generator)  # (S, B, d)
            reconstruction = decode(decoder, z, x).log_prob(x).mean(0)
        else:
            z = sample(q_z, (self.samples,), generator=generator)  # (S, B, d), no pathwise gradient
            reconstruction = score_function_surrogate(decode(decoder, z, x).log_prob(x), q_z.log_prob(z))

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
