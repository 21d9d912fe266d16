"""Energy-based model recipe: a thin LightningModule that trains an energy network E_θ by contrastive
divergence with short-run Langevin and a replay buffer (Du & Mordatch 2019) or by score matching of
−∇E_θ (Song et al. 2019), and samples it by Langevin dynamics (``mathml.sde.ula``).

The replay buffer is a module buffer of the objective, so it is saved in every checkpoint; all noise
comes from generators keyed by (seed, stage, rank, step): a resumed run is exactly an uninterrupted
one. Test reports, against the held-out set, the sliced Wasserstein distance SW₂ (Bonneel et al.
2015) and MMD² (Gretton et al. 2012) of model samples, and when the data module knows the data's
exact score (``mixture``), the kernel Stein discrepancy of the samples from the data distribution
(Gorham & Mackey 2017).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import torch
from lightning import LightningModule
from torch import nn

from mathml.checks import check_positive, check_positive_int
from mathml.metrics import kernel_stein_discrepancy, mmd_squared, sliced_wasserstein
from mathml.sde import ula

from .ddp import gather_rows
from .diffusion_data import FreshToy2DDataModule
from .steps import log_epoch_means, step_generator, training_loss
from .term_means import TermMeans

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]

_LOGGED = ("loss", "cd", "energy_pos", "energy_neg", "jacobian", "norm")


class EBMModule(LightningModule):
    """Train an energy E_θ(x) (p_θ ∝ e^{−E_θ}).

    Args:
        energy: E_θ, ``(B, *data_shape) -> (B,)`` with ``score(x)`` = −∇E (``mathml.layers.EnergyMLP``).
        objective: ``objective(energy, x (B, ...), generator=) -> dict`` of per-sample (B,) terms with
            "loss": ``mathml.objectives.ContrastiveDivergence`` or ``EnergyScoreMatching``.
        optimizer: factory ``params -> Optimizer`` (a Hydra ``_partial_``).
        sample_steps, sample_step_size: Langevin steps and step size of the sampler used for pictures
            and test metrics (ULA from uniform noise on [init_low, init_high]).
        init_low, init_high: the box of the samplers' starting noise (in model space).
        data_scale, data_shift: the model sees x' = scale · x + shift.
        sample_metrics: report SW₂, MMD² and (when the data's score is known) KSD at test time.
        sw_projections: directions of the sliced Wasserstein distance.
        seed: base seed of the per-step generators.
        data_shape: one datum's shape (``${data.data_shape}``).
    """

    def __init__(
        self,
        energy: nn.Module,
        objective: nn.Module,
        optimizer: OptimizerFactory,
        sample_steps: int = 500,
        sample_step_size: float = 0.01,
        init_low: float = -1.0,
        init_high: float = 1.0,
        data_scale: float = 1.0,
        data_shift: float = 0.0,
        sample_metrics: bool = False,
        sw_projections: int = 1000,
        seed: int = 0,
        data_shape: Sequence[int] = (2,),
    ) -> None:
        super().__init__()
        if not callable(optimizer):
            raise TypeError(f"optimizer must be callable (a Hydra _partial_), got {type(optimizer).__name__}")
        check_positive_int(sample_steps, "sample_steps")
        check_positive(sample_step_size, "sample_step_size")
        check_positive(data_scale, "data_scale")
        if not init_high > init_low:
            raise ValueError(f"init_high must exceed init_low, got [{init_low}, {init_high}]")
        self.energy, self.objective, self.optimizer_factory = energy, objective, optimizer
        self.data_shape = tuple(int(s) for s in data_shape)
        # Plain values only: checkpoints must load with torch.load(weights_only=True).
        self.save_hyperparameters({
            "sample_steps": int(sample_steps), "sample_step_size": float(sample_step_size),
            "init_low": float(init_low), "init_high": float(init_high), "data_scale": float(data_scale),
            "data_shift": float(data_shift), "sample_metrics": bool(sample_metrics),
            "sw_projections": int(sw_projections), "seed": int(seed),
        })
        self.term_means = {"train": TermMeans(), "val": TermMeans()}
        self._test_x: list[torch.Tensor] = []

    def _generator(self, stage: int) -> torch.Generator:
        return step_generator(self, self.hparams.seed, stage)

    def _model_space(self, x: torch.Tensor) -> torch.Tensor:
        return self.hparams.data_scale * x + self.hparams.data_shift

    def _terms(self, x: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        terms = self.objective(self.energy, self._model_space(x), generator=generator)
        return {k: terms[k] for k in _LOGGED if k in terms}

    def _log_epoch(self, stage: str) -> None:
        log_epoch_means(self, self.term_means[stage], stage)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        terms = self._terms(batch[0], self._generator(0))
        return training_loss(self, self.term_means["train"], terms,
                             "lower the learning rate or raise the objective's alpha")

    def on_train_epoch_end(self) -> None:
        self._log_epoch("train")

    def validation_step(self, batch, batch_idx: int) -> None:
        # CD's negatives and score matching's Jacobian need autograd through the energy.
        with torch.enable_grad(), torch.inference_mode(False):
            x = batch[0].clone()
            # Validation must not advance the replay buffer that training continues from.
            state = {k: v.clone() for k, v in self.objective.state_dict().items()}
            self.term_means["val"].update({k: v.detach() for k, v in self._terms(x, self._generator(1 + batch_idx)).items()})
            self.objective.load_state_dict(state)

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_start(self) -> None:
        self._test_x = []

    def test_step(self, batch, batch_idx: int) -> None:
        self._test_x.append(batch[0].detach())

    def on_test_epoch_end(self) -> None:
        if not self.hparams.sample_metrics:
            return
        # Under DDP each rank saw a disjoint part of the test set (mathml_recipes.ddp.eval_sampler):
        # rank 0 compares one set of samples (drawn as a single process would) with all of it.
        x = gather_rows(self, torch.cat(self._test_x))
        if not self.trainer.is_global_zero:
            return
        with torch.inference_mode(False):
            samples = self.sample(x.shape[0], generator=self._generator(20_000)).to(x.dtype)
        g = torch.Generator(device=self.device).manual_seed(self.hparams.seed)
        metrics = {
            "test/sliced_wasserstein": sliced_wasserstein(samples, x, n_projections=self.hparams.sw_projections,
                                                          generator=g),
            "test/mmd2": mmd_squared(samples, x),
        }
        dm = self.trainer.datamodule
        mixture = dm.mixture if isinstance(dm, FreshToy2DDataModule) else None
        if mixture is not None:
            s64 = samples.to(torch.float64)
            metrics["test/ksd"] = kernel_stein_discrepancy(s64, mixture.score(s64))
        self.log_dict({k: v.float() for k, v in metrics.items()}, rank_zero_only=True)

    def configure_optimizers(self):
        return self.optimizer_factory(self.energy.parameters())

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n draws by ULA on p_θ from uniform noise, in data space, ``(n, *data_shape)``."""
        lo, hi = self.hparams.init_low, self.hparams.init_high
        dev = generator.device if generator is not None else self.device
        with torch.inference_mode(False):
            x0 = lo + (hi - lo) * torch.rand((n, *self.data_shape), generator=generator, device=dev)
            x = ula(self.energy.score, x0, step_size=self.hparams.sample_step_size,
                    n_steps=self.hparams.sample_steps, generator=generator).x
        return (x.detach() - self.hparams.data_shift) / self.hparams.data_scale
