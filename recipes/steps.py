"""Per-step plumbing shared by the recipes (VAE, diffusion, EBM): resume-exact generators and the
logging of per-sample terms."""

from __future__ import annotations

import math

import torch
from lightning import LightningModule
from lightning.pytorch.utilities import rank_zero_warn

from .term_means import TermMeans


def step_generator(module: LightningModule, seed: int, stage: int) -> torch.Generator:
    """A generator that depends only on (seed, stage, rank, step), so a resumed run draws exactly
    what an uninterrupted one would. Python ints: the key cannot overflow before the reduction."""
    key = ((seed * 1_000_003 + stage) * 65_537 + module.global_rank) * 1_000_000_007 + module.global_step
    return torch.Generator(device=module.device).manual_seed(key % (2**63 - 1))


def log_step_terms(module: LightningModule, term_means: TermMeans, means: torch.Tensor, advice: str) -> None:
    """Log one training step's term means (``means`` in ``term_means.names`` order), checked finite.

    They go straight to the loggers (``Logger.log_metrics``, rank zero only), not through
    ``self.log``, whose result collection costs about 0.7 ms a call on the CPU
    (benchmarks/vae_throughput.py --costs); the progress bar gets the loss only when one is shown.

    Raises:
        FloatingPointError: the loss is not finite; ``advice`` says what to change.
    """
    values = dict(zip(term_means.names, means.tolist()))  # one device sync
    if not math.isfinite(values["loss"]):
        raise FloatingPointError(f"non-finite training loss ({values['loss']}) at step {module.global_step}; {advice}")
    metrics = {f"train/{k}_step": v for k, v in values.items()} | {"epoch": module.current_epoch}
    for logger in module.loggers:
        logger.log_metrics(metrics, step=module.global_step)
    if module.trainer.progress_bar_callback is not None:
        module.log("loss", values["loss"], prog_bar=True, logger=False, on_step=True, on_epoch=False)


def training_loss(module: LightningModule, term_means: TermMeans, terms: dict[str, torch.Tensor],
                  advice: str) -> torch.Tensor | None:
    """A training step's bookkeeping: add the per-sample ``terms`` (each ``(B,)``, the total under
    "loss") to the epoch sums, log their step means every ``log_every_n_steps`` (``log_step_terms``),
    and return the batch-mean loss to optimise.

    With a ``NonFiniteLoss`` callback (``module.nonfinite_loss`` set; ``recipes.faults``) every step's
    loss is checked, agreed across ranks, before anything is recorded: "stop" raises
    ``FloatingPointError`` naming the step (before backward, so no weights are touched); "skip"
    returns None, which makes Lightning skip backward and the optimiser step.
    """
    loss = terms["loss"].mean()
    policy = getattr(module, "nonfinite_loss", None)
    if policy is not None:
        finite = bool(torch.isfinite(loss))  # one device sync
        if module.trainer.world_size > 1:
            finite = module.trainer.strategy.reduce_boolean_decision(finite, all=True)
        if not finite:
            where = f"step {module.global_step} (epoch {module.current_epoch})"
            if policy == "skip":
                module.skipped_steps = getattr(module, "skipped_steps", 0) + 1
                rank_zero_warn(f"non-finite training loss at {where}: step skipped "
                               f"({module.skipped_steps} so far; callbacks.nonfinite_loss.action=skip)")
                return None
            raise FloatingPointError(
                f"non-finite training loss ({loss.item()}) at {where}. Training stopped before this step's "
                f"optimiser update, so the run's checkpoints hold the last good weights (resume with "
                f"ckpt_path=last). {advice}; or skip such steps with callbacks.nonfinite_loss.action=skip."
            )
    means = term_means.update(terms)
    if module.global_step % module.trainer.log_every_n_steps == 0:
        log_step_terms(module, term_means, means, advice)
    return loss


def log_epoch_means(module: LightningModule, term_means: TermMeans, stage: str) -> None:
    """Log the epoch means of ``term_means`` (summed across processes) as ``<stage>/<term>`` and reset."""
    means = term_means.compute(lambda t: module.trainer.strategy.reduce(t, reduce_op="sum"))
    module.log_dict({f"{stage}/{k}": v for k, v in means.items()}, on_step=False, on_epoch=True)
    term_means.reset()
