"""Callbacks that make a run survive faults: a checkpoint on a termination signal, exact mid-epoch
resume, and a policy for non-finite losses. All three are in ``conf/callbacks/default.yaml``.

What each fault costs is measured in benchmarks/fault_table.py (the fault table in RESULTS.md).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import torch
from lightning import Callback, LightningModule, Trainer
from torch.utils.data import DataLoader

from mathml.checks import check_choice

log = logging.getLogger(__name__)

_SIGNALS = ("SIGTERM", "SIGUSR1", "SIGUSR2")


class SignalReceived(Exception):
    """Training stopped on a termination signal after saving ``checkpoint``."""

    def __init__(self, signum: int, checkpoint: str | None) -> None:
        self.signum, self.checkpoint = int(signum), checkpoint
        name = signal.Signals(signum).name
        where = f"saved {checkpoint}" if checkpoint else "no checkpoint saved"
        super().__init__(f"stopped by {name} ({where}); resume with ckpt_path=last and the same run folder")


class SaveOnSignal(Callback):
    """On SIGTERM, SIGUSR1 or SIGUSR2, save ``<dirpath>/last.ckpt`` at the end of the current training
    batch, then hand the signal on.

    The handler only records the signal; the save happens between two optimiser steps, so the
    checkpoint is a consistent state that resumes exactly (``DataPosition`` restores the data order).
    After saving, the handler that was installed before this one is called: under SLURM with the
    submitit launcher that is submitit's handler for its time-limit/pre-emption signal, which requeues
    the job (the requeued job resumes from this checkpoint; ``recipes.checkpoints.resolve_ckpt_path``);
    otherwise ``SignalReceived`` is raised out of ``fit`` (``stopped_by`` holds the signal number),
    which ``mathml-train`` turns into exit status 128 + signum without running the test stage.

    Under DDP every rank must save together (a checkpoint is a collective): rank 0's flag is broadcast
    at every batch end, so all ranks act on the same batch.

    Args:
        signals: names of the signals to catch.
        dirpath: folder for the checkpoint; default: the ModelCheckpoint's folder, else
            ``<default_root_dir>/checkpoints``.
    """

    def __init__(self, signals: tuple[str, ...] | list[str] = _SIGNALS, dirpath: str | None = None) -> None:
        for s in signals:
            check_choice(s, "signals[i]", _SIGNALS)
        self.signals = [getattr(signal, s) for s in signals]
        self.dirpath = dirpath
        self.stopped_by: int | None = None
        self.checkpoint: str | None = None
        self._received: int | None = None
        self._previous: dict[int, Any] = {}

    # -- installation -------------------------------------------------------------------------------
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit" or threading.current_thread() is not threading.main_thread():
            return
        self._received, self.stopped_by, self.checkpoint = None, None, None
        for s in self.signals:
            self._previous[s] = signal.getsignal(s)
            signal.signal(s, self._record)

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        for s, handler in self._previous.items():
            if signal.getsignal(s) == self._record:
                signal.signal(s, handler if handler is not None else signal.SIG_DFL)
        self._previous = {}

    def _record(self, signum: int, frame: Any) -> None:
        if self._received is None:
            self._received = signum
            log.info("received %s: saving a checkpoint at the end of this training batch", signal.Signals(signum).name)

    # -- acting on it ---------------------------------------------------------------------------------
    def _agreed_signal(self, trainer: Trainer) -> int:
        received = self._received or 0
        if trainer.world_size > 1:
            flag = torch.tensor([received], device=trainer.strategy.root_device)
            received = int(trainer.strategy.broadcast(flag, src=0).item())
        return received

    def _path(self, trainer: Trainer) -> str:
        folder = self.dirpath
        if folder is None and trainer.checkpoint_callback is not None:
            folder = getattr(trainer.checkpoint_callback, "dirpath", None)
        folder = folder or os.path.join(trainer.default_root_dir, "checkpoints")
        return os.path.join(folder, "last.ckpt")

    def _act(self, trainer: Trainer) -> None:
        signum = self._agreed_signal(trainer)
        if not signum or self.stopped_by is not None:
            return
        self.stopped_by, self.checkpoint = signum, self._path(trainer)
        trainer.save_checkpoint(self.checkpoint)
        log.info("saved %s at step %d after %s", self.checkpoint, trainer.global_step, signal.Signals(signum).name)
        previous = self._previous.get(signum)
        if callable(previous):
            previous(signum, None)  # submitit's requeue handler exits here
        # An exception, not trainer.should_stop: stopping would end the epoch early and let the
        # end-of-epoch checkpoint record a short epoch as complete.
        raise SignalReceived(signum, self.checkpoint)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._act(trainer)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # A signal that arrived after the last training batch (during the final validation).
        self._act(trainer)

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        # SIGTERM that arrived after this callback's batch-end hook: Lightning raises SIGTERMException
        # right after the batch is complete (progress counted, all ranks agreed), a consistent state.
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException) and self.stopped_by is None:
            self.stopped_by, self.checkpoint = signal.SIGTERM, self._path(trainer)
            trainer.save_checkpoint(self.checkpoint)
            log.info("saved %s at step %d after SIGTERM", self.checkpoint, trainer.global_step)


class NonFiniteLoss(Callback):
    """What a non-finite training loss does: ``action="stop"`` (default) raises ``FloatingPointError``
    naming the step before the optimiser step, so no checkpoint holds the damaged weights and the last
    good one is kept; ``action="skip"`` drops that step on every rank (no backward; Lightning still
    calls the optimiser, which finds no gradients and leaves the weights and its state alone, and
    still counts the step in ``global_step``) and counts it in ``skipped_steps``.

    The recipes' ``training_step`` reads the policy from the module (``recipes.steps.training_loss``);
    the check costs one device synchronisation per step.

    Args:
        action: "stop" or "skip".
    """

    def __init__(self, action: str = "stop") -> None:
        self.action = check_choice(action, "action", ("stop", "skip"))

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        pl_module.nonfinite_loss = self.action
        pl_module.skipped_steps = getattr(pl_module, "skipped_steps", 0)


class DataPosition(Callback):
    """Exact resume from a checkpoint taken mid-epoch: record how many batches of the epoch were
    trained, and on resume start that epoch's sampler after them.

    Works with samplers that have ``resume_from(epoch, start)`` (``mathml.data.EpochSeededSampler``,
    the fresh-draw toy sampler), also inside Lightning's ``DistributedSamplerWrapper``; for any other
    sampler a mid-epoch resume restarts the epoch's data from its beginning, and a warning says so.
    """

    key = "mathml_data_position"

    def __init__(self) -> None:
        self._pending: dict[str, int] | None = None

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        # Lightning warns on every mid-epoch resume that the data loader has no state_dict; this
        # callback restores the position instead (and warns itself when it cannot).
        warnings.filterwarnings("ignore", message=r"You're resuming from a checkpoint that ended before the epoch ended")

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        progress = trainer.fit_loop.epoch_loop.batch_progress.current
        checkpoint[self.key] = {"epoch": int(trainer.current_epoch), "batches": int(progress.processed)}

    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        self._pending = checkpoint.get(self.key)

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Called after the checkpoint is restored and before the first batch; Lightning does not call
        # on_train_epoch_start for an epoch it resumes mid-way. The sampler applies the position at the
        # first draw, after Lightning's set_epoch.
        pending, self._pending = self._pending, None
        if not pending or pending["epoch"] != trainer.current_epoch or pending["batches"] <= 0:
            return
        samplers = list(_resumable_samplers(trainer.train_dataloader))
        if not samplers:
            log.warning("resuming mid-epoch (%d batches into epoch %d), but the training sampler has no "
                        "resume_from: this epoch's data restarts from its beginning, so the run is not an "
                        "exact continuation", pending["batches"], pending["epoch"])
        for sampler, per_batch in samplers:
            start = pending["batches"] * per_batch
            if 0 < start < len(sampler):
                sampler.resume_from(pending["epoch"], start)


def _resumable_samplers(loaders: Any) -> Iterator[tuple[Any, int]]:
    """(sampler with ``resume_from``, its indices per training batch across all ranks) of each loader."""
    if isinstance(loaders, DataLoader):
        loaders = [loaders]
    elif isinstance(loaders, dict):
        loaders = list(loaders.values())
    for dl in loaders or []:
        if not isinstance(dl, DataLoader):
            continue
        sampler, replicas = dl.sampler, 1
        inner = getattr(getattr(sampler, "dataset", None), "_sampler", None)  # DistributedSamplerWrapper
        if inner is not None:
            sampler, replicas = inner, int(getattr(dl.sampler, "num_replicas", 1))
        if callable(getattr(sampler, "resume_from", None)):
            yield sampler, (dl.batch_size or 1) * replicas
