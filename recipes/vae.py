"""Variational auto-encoder recipe: a thin LightningModule over mathml's layers and objectives.

It receives built parts (encoder, decoder, prior, objective, optimizer factory), reduces the
objective's per-sample terms to batch means, drives the KL warm-up, and at test time reports the
importance-sampled negative log-likelihood (Burda et al. 2016, §5) in nats and bits/dim.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

import torch
from lightning import LightningModule
from torch import nn
from torchmetrics import MeanMetric, SumMetric

from mathml.checks import check_int_at_least, check_nonnegative_int, check_positive_int
from mathml.distributions import rsample
from mathml.metrics import bits_per_dim
from mathml.objectives import ELBO, importance_sampled_log_likelihood

from .steps import log_epoch_means, step_generator, training_loss
from .term_means import TermMeans

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


class VAEModule(LightningModule):
    """Train q_φ(z|x), p_θ(x|z) and p(z) with an ELBO or IWAE objective.

    Args:
        encoder: x (B, *data_shape) -> q(z|x), batch (B,), event (d,).
        decoder: z (..., d) -> p(x|z), event data_shape.
        prior: module, ``prior()`` -> p(z) with event (d,).
        objective: ``objective(x, q_z, decoder, prior) -> dict`` of per-sample (B,) terms with
            the total under ``"loss"`` (``mathml.objectives.ELBO`` or ``IWAE``).
        optimizer: factory ``params -> Optimizer`` (a Hydra ``_partial_``).
        scheduler: optional factory ``optimizer -> LRScheduler`` stepped every optimizer step.
        kl_warmup_steps: β_t = β · min(1, step / kl_warmup_steps) (Sønderby et al. 2016, §2.3;
            Bowman et al. 2016); 0 disables it. Only meaningful for the ELBO objective.
        eval_k: importance samples for the test log-likelihood (k ≥ 1000 for Burda et al.'s table).
        eval_chunk: importance samples evaluated at once (memory ~ chunk × batch).
        seed: base seed of the per-step generator that draws the objective's noise, so a resumed
            run draws exactly what an uninterrupted run would.
    """

    def __init__(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        prior: nn.Module,
        objective: nn.Module,
        optimizer: OptimizerFactory,
        scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | None = None,
        kl_warmup_steps: int = 0,
        eval_k: int = 1000,
        eval_chunk: int = 100,
        seed: int = 0,
    ) -> None:
        super().__init__()
        check_nonnegative_int(kl_warmup_steps, "kl_warmup_steps")
        if kl_warmup_steps > 0 and not isinstance(objective, ELBO):
            raise ValueError(
                f"kl_warmup_steps={kl_warmup_steps} needs the ELBO objective (it scales the KL term); "
                f"got {type(objective).__name__}. Set model.kl_warmup_steps=0."
            )
        check_int_at_least(eval_k, "eval_k (its standard error needs two importance weights)", 2)
        check_positive_int(eval_chunk, "eval_chunk")
        self.encoder, self.decoder, self.prior, self.objective = encoder, decoder, prior, objective
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        # Plain values only: checkpoints must load with torch.load(weights_only=True).
        self.save_hyperparameters(
            {"kl_warmup_steps": kl_warmup_steps, "eval_k": eval_k, "eval_chunk": eval_chunk,
             "seed": seed}
        )
        self.term_means = {"train": TermMeans(), "val": TermMeans()}
        self.test_nll = MeanMetric()
        self.test_elbo = MeanMetric()
        self.test_nll_var = SumMetric()  # Σ_i SE_i² of the per-point estimates
        self.test_count = SumMetric()

    # -- helpers ------------------------------------------------------------------------------
    def _generator(self, stage: int) -> torch.Generator:
        return step_generator(self, self.hparams.seed, stage)

    def _terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        kwargs = {}
        if self.hparams.kl_warmup_steps > 0:
            ramp = min(1.0, self.global_step / self.hparams.kl_warmup_steps)
            kwargs["beta"] = self.objective.beta * ramp
        return self.objective(x, self.encoder(x), self.decoder, self.prior(), generator=generator, **kwargs)

    def _log_epoch(self, stage: str) -> None:
        log_epoch_means(self, self.term_means[stage], stage)

    # -- Lightning hooks ----------------------------------------------------------------------
    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        terms = self._terms(batch[0], self._generator(0))
        return training_loss(self, self.term_means["train"], terms,
                             "lower the learning rate or raise the likelihood's min_scale")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self.term_means["val"].update(self._terms(batch[0], self._generator(1 + batch_idx)))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def test_step(self, batch, batch_idx: int) -> None:
        x = batch[0]
        g = self._generator(10_000 + batch_idx)
        q_z, prior = self.encoder(x), self.prior()
        log_px, log_px_se = importance_sampled_log_likelihood(
            x, q_z, self.decoder, prior, k=self.hparams.eval_k, chunk=self.hparams.eval_chunk, generator=g,
            return_stderr=True,
        )
        elbo = ELBO()(x, q_z, self.decoder, prior, generator=g)["elbo"]
        self.test_nll.update(-log_px)
        self.test_nll_var.update(log_px_se.pow(2))
        self.test_count.update(float(x.shape[0]))
        self.test_elbo.update(elbo)

    def on_test_epoch_end(self) -> None:
        nll = self.test_nll.compute()
        self.log("test/nll_nats", nll, sync_dist=False)
        # Monte-Carlo SE of the mean of N independent per-point estimates: sqrt(Σ_i SE_i²) / N.
        self.log("test/nll_nats_se", self.test_nll_var.compute().sqrt() / self.test_count.compute(), sync_dist=False)
        self.log("test/elbo", self.test_elbo.compute(), sync_dist=False)
        # bits/dim is honest only for a probability mass (Bernoulli, discretised Gaussian).
        if self.decoder.likelihood.discrete:
            self.log("test/bits_per_dim", bits_per_dim(nll, math.prod(self.decoder.data_shape)))
        self.test_nll.reset()
        self.test_nll_var.reset()
        self.test_count.reset()
        self.test_elbo.reset()

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}

    # -- sampling, used by the image callback -------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws z ~ p(z), returned as the decoder's mean E[x|z], shape (n, *data_shape)."""
        return self.decoder(rsample(self.prior(), (n,), generator=generator)).mean

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x | z = μ_φ(x)]: the decoder's mean at the encoder's mean, shape of x."""
        return self.decoder(self.encoder(x).mean).mean
