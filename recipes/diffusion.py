"""Score-based diffusion recipe: a thin LightningModule over mathml's SDEs, networks, objectives,
samplers and likelihoods.

It receives built parts (the SDE, the network, the parametrisation adapter, the score-matching
objective and the sampler as Hydra partials, an optimizer factory), keeps an exponential moving
average (EMA) of the score model's weights with ``torch.optim.swa_utils.AveragedModel``, reduces
the objective's per-sample terms to epoch means (``TermMeans``), and uses the EMA weights for
validation, sampling and testing. Test reports:

- ``test/nll_nats``: −log p(x) in nats per datum through the probability-flow ODE
  (``mathml.sde.log_likelihood``, Song et al. 2021, App. D.2), in the data's own units (the
  data-scaling Jacobian D ln(scale) removed); for quantised data (``num_levels`` set) the uniform-
  dequantisation bound on the discrete NLL (Theis et al. 2016, §3.1) and ``test/bits_per_dim``.
- when the test batches carry the exact log-density (``(x, log p(x))``, e.g. the 2-D Gaussian
  mixture): ``test/nll_exact_nats`` and ``test/nll_gap_nats`` = mean_i [log p(x_i) − log p_θ(x_i)],
  a paired difference on the same points whose expectation is KL(p ‖ p_θ), with its standard error
  ``test/nll_gap_se``.
- with ``sample_metrics``: the sliced Wasserstein distance SW₂ (Bonneel et al. 2015) and the
  unbiased MMD² (Gretton et al. 2012) between as many model samples as test points and the test set.

Class-conditional models (``num_classes`` set; batches ``(x, y)``): labels are dropped to the null
label with probability ``p_uncond`` in training (Ho & Salimans 2022, Alg. 1), test likelihoods use
the unconditional score s(x, t, ∅), and samples use classifier-free guidance
(``mathml.sde.ClassifierFreeGuidance``, scale ``guidance_scale``) over labels 0, 1, ..., K − 1, 0, ...
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from lightning import LightningModule
from lightning.pytorch.utilities import rank_zero_info
from torch import nn
from torch.optim.swa_utils import AveragedModel

from mathml.checks import check_int_at_least, check_positive, check_positive_int
from mathml.metrics import mmd_squared, sliced_wasserstein
from mathml.sde import ClassifierFreeGuidance, LinearSDE, drop_labels
from mathml.sde.likelihood import log_likelihood, log_prob_to_bits_per_dim, uniform_dequantize

from .ddp import gather_rows
from .ema import ema_multi_avg_fn
from .steps import log_epoch_means, step_generator, training_loss
from .term_means import TermMeans

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]
Sampler = Callable[..., torch.Tensor]

_LOGGED_TERMS = ("loss", "epsilon_error")


class DiffusionModule(LightningModule):
    """Train a score model s_θ(x, t) = adapter(network, sde) by denoising score matching.

    Args:
        sde: the forward ``LinearSDE`` (VP, sub-VP, VE, EDM).
        network: F_θ(x (B, ...), t (B,)) -> (B, ...), e.g. ``mathml.layers.ScoreMLP``.
        parametrization: factory ``(net, sde) -> score model`` (a Hydra ``_partial_`` of
            ``mathml.objectives.EpsilonPrediction``, ``DataPrediction``, ``VelocityPrediction`` or
            ``EDMPreconditioning``).
        objective: factory ``sde -> objective`` (a partial of ``DenoisingScoreMatching``); the
            objective maps ``(score_model, x0 (B, ...), generator=)`` to per-sample (B,) terms.
        sampler: ``sampler(sde, score, x_T, generator=) -> x`` (a partial of a ``mathml.sde``
            sampler with ``steps`` bound).
        optimizer: factory ``params -> Optimizer``.
        scheduler: optional factory ``optimizer -> LRScheduler`` stepped every optimizer step.
        ema_decay: EMA decay β ∈ [0, 1): θ̄ ← β θ̄ + (1 − β) θ after every optimizer step.
        ema_warmup: use β_n = min(β, (1 + n)/(10 + n)) after n updates (``mathml_recipes.ema``), for
            short runs.
        data_scale, data_shift: the model sees x' = scale · x + shift (images in [0, 1] → [−1, 1]
            with 2, −1; 2-D data with 1, 0).
        num_levels: for quantised data (x on the grid k/(L − 1)), L; training and test data are
            uniformly dequantised (Theis et al. 2016, §3.1) and bits/dim is reported. None:
            continuous data.
        nll_exact_trace: exact divergence in the test likelihood (low dimension) or Hutchinson's.
        nll_probes: Hutchinson probes per point when not exact.
        nll_rtol, nll_atol: the likelihood ODE's tolerances.
        sample_metrics: report sliced Wasserstein and MMD² against the test set.
        sw_projections: directions for the sliced Wasserstein distance.
        seed: base seed of the per-step generators (training noise, dequantisation, evaluation).
        data_shape: shape of one datum (``${data.data_shape}``), for sampling.
        num_classes: K for a class-conditional network ``net(x, t, y)`` (labels from the batches'
            second entry; K is the null label ∅), or None.
        p_uncond: probability of dropping a training label to ∅ (Ho & Salimans 2022, §3.2).
        guidance_scale: γ of classifier-free guidance for samples (0: unconditional, 1: conditional).
    """

    def __init__(
        self,
        sde: LinearSDE,
        network: nn.Module,
        parametrization: Callable[[nn.Module, LinearSDE], nn.Module],
        objective: Callable[[LinearSDE], nn.Module],
        sampler: Sampler,
        optimizer: OptimizerFactory,
        scheduler: Callable[[torch.optim.Optimizer], torch.optim.lr_scheduler.LRScheduler] | None = None,
        ema_decay: float = 0.999,
        ema_warmup: bool = False,
        data_scale: float = 1.0,
        data_shift: float = 0.0,
        num_levels: int | None = None,
        nll_exact_trace: bool = True,
        nll_probes: int = 1,
        nll_rtol: float = 1e-5,
        nll_atol: float = 1e-5,
        sample_metrics: bool = False,
        sw_projections: int = 1000,
        seed: int = 0,
        data_shape: Sequence[int] = (2,),
        num_classes: int | None = None,
        p_uncond: float = 0.1,
        guidance_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if not isinstance(sde, LinearSDE):
            raise TypeError(f"sde must be a mathml.sde LinearSDE, got {type(sde).__name__}")
        for name, f in (("parametrization", parametrization), ("objective", objective), ("sampler", sampler),
                        ("optimizer", optimizer)):
            if not callable(f):
                raise TypeError(f"{name} must be callable (a Hydra _partial_), got {type(f).__name__}")
        if not 0.0 <= ema_decay < 1.0:
            raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay}")
        check_positive(data_scale, "data_scale")
        if num_levels is not None:
            check_int_at_least(num_levels, "num_levels (None for continuous data)", 2)
        if num_classes is not None:
            check_positive_int(num_classes, "num_classes (None for an unconditional model)")
        if not 0.0 <= p_uncond <= 1.0 or not guidance_scale >= 0.0:
            raise ValueError(f"p_uncond must lie in [0, 1] and guidance_scale be >= 0, got {p_uncond}, {guidance_scale}")
        self.sde = sde
        self.data_shape = tuple(int(s) for s in data_shape)
        self.score_model = parametrization(net=network, sde=sde)
        self.objective = objective(sde)
        self.sampler = sampler
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        # The EMA copy lives in the module: saved in every checkpoint and restored on resume.
        self.ema = AveragedModel(self.score_model, multi_avg_fn=ema_multi_avg_fn(ema_decay, ema_warmup),
                                 use_buffers=True)
        self.ema.requires_grad_(False)
        # Plain values only: checkpoints must load with torch.load(weights_only=True).
        self.save_hyperparameters({
            "ema_decay": ema_decay, "ema_warmup": bool(ema_warmup), "data_scale": float(data_scale), "data_shift": float(data_shift),
            "num_levels": num_levels, "nll_exact_trace": bool(nll_exact_trace), "nll_probes": int(nll_probes),
            "nll_rtol": float(nll_rtol), "nll_atol": float(nll_atol), "sample_metrics": bool(sample_metrics),
            "sw_projections": int(sw_projections), "seed": int(seed), "num_classes": num_classes,
            "p_uncond": float(p_uncond), "guidance_scale": float(guidance_scale),
        })
        self.term_means = {"train": TermMeans(), "val": TermMeans()}
        self._test: dict[str, list[torch.Tensor]] = {}

    # -- helpers ------------------------------------------------------------------------------
    def _generator(self, stage: int) -> torch.Generator:
        return step_generator(self, self.hparams.seed, stage)

    @property
    def ema_score(self) -> nn.Module:
        """The EMA score model s_θ̄(x, t), used for validation, sampling and testing."""
        return self.ema.module

    def to_model_space(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """x' = scale · x̃ + shift, with x̃ = x, or x dequantised when ``num_levels`` is set."""
        if self.hparams.num_levels is not None:
            x = uniform_dequantize(x, self.hparams.num_levels, generator=generator)
        return self.hparams.data_scale * x + self.hparams.data_shift

    def _terms(self, score_model: nn.Module, x: torch.Tensor, generator: torch.Generator,
               y: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        if self.hparams.num_classes is not None and y is not None:  # label dropout (Ho & Salimans 2022, Alg. 1)
            y = drop_labels(y, self.hparams.p_uncond, self.hparams.num_classes, generator=generator)
            score_model = ClassifierFreeGuidance(score_model, y, 1.0, self.hparams.num_classes)
        terms = self.objective(score_model, self.to_model_space(x, generator), generator=generator)
        return {k: terms[k] for k in _LOGGED_TERMS if k in terms}

    def _log_epoch(self, stage: str) -> None:
        log_epoch_means(self, self.term_means[stage], stage)

    # -- Lightning hooks ----------------------------------------------------------------------
    def _labels(self, batch) -> torch.Tensor | None:
        return batch[1] if self.hparams.num_classes is not None else None

    def on_fit_start(self) -> None:
        n = sum(p.numel() for p in self.score_model.parameters() if p.requires_grad)
        rank_zero_info(f"score model: {n:,} trainable parameters")

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        terms = self._terms(self.score_model, batch[0], self._generator(0), self._labels(batch))
        return training_loss(self, self.term_means["train"], terms, "lower the learning rate")

    def on_train_batch_end(self, outputs, batch, batch_idx: int) -> None:
        self.ema.update_parameters(self.score_model)

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self.term_means["val"].update(self._terms(self.ema_score, batch[0], self._generator(1 + batch_idx),
                                                  self._labels(batch)))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_start(self) -> None:
        self._test = {"x": [], "nll": [], "gap": [], "exact": []}

    def test_step(self, batch, batch_idx: int) -> None:
        # The divergence needs autograd, which Lightning's test-time inference mode forbids: leave it
        # and work on ordinary copies of the batch; the likelihood ODE runs in full precision (no bf16 autocast).
        with torch.inference_mode(False), torch.autocast(self.device.type, enabled=False):
            self._test_batch([b.clone() for b in batch], batch_idx)

    def _test_batch(self, batch, batch_idx: int) -> None:
        x = batch[0]
        g = self._generator(10_000 + batch_idx)
        x_model = self.to_model_space(x, g)
        res = log_likelihood(self.sde, self.ema_score, x_model, exact_trace=self.hparams.nll_exact_trace,
                             n_probes=self.hparams.nll_probes, rtol=self.hparams.nll_rtol,
                             atol=self.hparams.nll_atol, generator=g)
        d = x[0].numel()
        if self.hparams.num_levels is not None:
            bpd = log_prob_to_bits_per_dim(res.log_prob, num_dims=d, num_levels=self.hparams.num_levels,
                                           scale=self.hparams.data_scale)
            nll = bpd * d * math.log(2.0)
        else:
            nll = -res.log_prob - d * math.log(self.hparams.data_scale)
        self._test["nll"].append(nll.detach())
        if len(batch) > 1 and batch[1].is_floating_point():  # exact log-density of the data at these points
            log_p = batch[1].to(nll.dtype)
            self._test["exact"].append(-log_p)
            self._test["gap"].append(nll.detach() - (-log_p))
        if self.hparams.sample_metrics:
            self._test["x"].append(x.detach())

    def on_test_epoch_end(self) -> None:
        # Under DDP each rank saw a disjoint part of the test set (mathml_recipes.ddp.eval_sampler):
        # gather the per-sample values, so every rank computes the metrics of the whole set.
        nll = gather_rows(self, torch.cat(self._test["nll"]))
        d = math.prod(self.data_shape)
        metrics = {"test/nll_nats": nll.mean()}
        if self.hparams.num_levels is not None:
            metrics["test/bits_per_dim"] = nll.mean() / (d * math.log(2.0))
        if self._test["gap"]:
            gap = gather_rows(self, torch.cat(self._test["gap"]))
            metrics["test/nll_exact_nats"] = gather_rows(self, torch.cat(self._test["exact"])).mean()
            metrics["test/nll_gap_nats"] = gap.mean()
            metrics["test/nll_gap_se"] = gap.std() / math.sqrt(gap.numel())
        self.log_dict({k: v.float() for k, v in metrics.items()}, sync_dist=False)
        if self.hparams.sample_metrics:
            x = gather_rows(self, torch.cat(self._test["x"]))
            if self.trainer.is_global_zero:  # one set of samples, drawn as a single process would
                samples = self.sample(x.shape[0], generator=self._generator(20_000)).to(x.dtype)
                g = torch.Generator(device=self.device).manual_seed(self.hparams.seed)
                sample_metrics = {
                    "test/sliced_wasserstein": sliced_wasserstein(samples, x, n_projections=self.hparams.sw_projections,
                                                                  generator=g),
                    "test/mmd2": mmd_squared(samples, x),
                }
                self.log_dict({k: v.float() for k, v in sample_metrics.items()}, rank_zero_only=True)
        self._test = {}

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.score_model.parameters())
        if self.scheduler_factory is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": self.scheduler_factory(optimizer), "interval": "step"}}

    # -- sampling -----------------------------------------------------------------------------
    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, *, sampler: Sampler | None = None,
               ema: bool = True, shape: tuple[int, ...] | None = None, labels: torch.Tensor | None = None,
               guidance_scale: float | None = None) -> torch.Tensor:
        """n draws from the model, in data space ((x' − shift)/scale), shape (n, *data_shape).

        Args:
            n: number of samples.
            generator: draws x_T and the sampler's noise.
            sampler: ``sampler(sde, score, x_T, generator=)`` (default: the module's).
            ema: use the EMA weights (default) or the raw ones.
            shape: one datum's shape (default: ``data_shape``).
            labels: (n,) class labels of a conditional model (default: 0, 1, ..., K − 1, 0, ...).
            guidance_scale: γ of classifier-free guidance (default: the module's ``guidance_scale``).
        """
        score = self.ema_score if ema else self.score_model
        if self.hparams.num_classes is not None:
            K = self.hparams.num_classes
            y = torch.arange(n, device=self.device) % K if labels is None else labels.to(self.device)
            gamma = self.hparams.guidance_scale if guidance_scale is None else guidance_scale
            score = ClassifierFreeGuidance(score, y, gamma, K)
        shape = tuple(shape) if shape is not None else self.data_shape
        x_T = self.sde.prior_sample((n, *shape), generator=generator, dtype=self.dtype, device=self.device)
        x = (sampler or self.sampler)(self.sde, score, x_T, generator=generator)
        return (x - self.hparams.data_shift) / self.hparams.data_scale
