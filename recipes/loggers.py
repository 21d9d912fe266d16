"""Build the experiment loggers named in ``conf/logger`` (CSV, TensorBoard, wandb); keep a wandb run
with its checkpoints; silence Lightning's tips.

A wandb run follows its checkpoint: :class:`WandbRunId` writes the run id into every checkpoint
(``checkpoint["mathml"]["wandb_run_id"]``) and into ``<run dir>/wandb_run_id.txt``; a run resumed
from a checkpoint (or requeued into its own folder) continues that wandb run (``resume="allow"``).
"""

from __future__ import annotations

import glob
import logging
import netrc
import os
import secrets
import string
from typing import Any

from hydra.utils import instantiate
from lightning import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger(__name__)

#: File in the run folder holding the wandb run id, so a job requeued before its first checkpoint keeps it.
RUN_ID_FILE = "wandb_run_id.txt"
# wandb's directories that instantiate_loggers points into the run folder (unless the user set them);
# the config dir (where `wandb login --host` keeps a server's address) only for offline runs.
_WANDB_DIRS = {"WANDB_DIR": "", "WANDB_CACHE_DIR": ".cache", "WANDB_DATA_DIR": ".data", "WANDB_CONFIG_DIR": ".config"}
_dirs_set_here: dict[str, str] = {}  # var -> the value instantiate_loggers last gave it


def wandb_has_api_key() -> bool:
    """True when wandb could authenticate: ``WANDB_API_KEY``, or a netrc entry for the wandb host
    (``api.wandb.ai``, or the host of ``WANDB_BASE_URL``)."""
    from urllib.parse import urlparse

    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname or "api.wandb.ai"
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def checkpoint_wandb_run_id(ckpt_path: str | os.PathLike) -> str | None:
    """The wandb run id stored in a checkpoint by :class:`WandbRunId`, or None if it holds none."""
    import torch

    try:  # memory-mapped: a large checkpoint is not read whole just for its id
        ckpt = torch.load(os.fspath(ckpt_path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # a file in torch's legacy (non-zip) format cannot be memory-mapped
        ckpt = torch.load(os.fspath(ckpt_path), map_location="cpu", weights_only=True)
    run_id = (ckpt.get("mathml") or {}).get("wandb_run_id") if isinstance(ckpt, dict) else None
    return str(run_id) if run_id else None


def wandb_run_id(*, ckpt_path: str | os.PathLike | None = None, run_dir: str | os.PathLike | None = None) -> str:
    """The wandb run id a run uses, in this order: the id stored in the checkpoint it resumes from
    (``ckpt_path``), the id in ``<run_dir>/wandb_run_id.txt`` (a job requeued before its first
    checkpoint), else a new id. On rank 0 the id is (re)written to ``<run_dir>/wandb_run_id.txt``.
    """
    run_id = checkpoint_wandb_run_id(ckpt_path) if ckpt_path else None
    id_file = os.path.join(os.fspath(run_dir), RUN_ID_FILE) if run_dir else None
    if run_id is None and id_file and os.path.isfile(id_file):
        run_id = open(id_file).read().strip() or None
    if run_id is None:
        # wandb's own form: 8 base-36 characters (its generator is private since wandb 0.19). `secrets`,
        # not `random`: seed_everything has fixed the global generators, so equal seeds would collide.
        run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
    if id_file and rank_zero_only.rank == 0:
        os.makedirs(os.path.dirname(id_file), exist_ok=True)
        tmp = f"{id_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(run_id + "\n")
        os.replace(tmp, id_file)
    return run_id


def _finish_open_wandb_run() -> None:
    """Close a wandb run left open by an earlier job in this process (Hydra's basic launcher runs a
    sweep's jobs one after another in one process; Lightning would otherwise reuse that run)."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.run.finish()


def instantiate_loggers(
    logger_cfg: DictConfig | None,
    *,
    ckpt_path: str | os.PathLike | None = None,
    run_dir: str | os.PathLike | None = None,
) -> list[Logger]:
    """Instantiate every logger under ``logger_cfg`` (a mapping of name -> ``_target_`` node).

    A wandb logger whose ``offline`` is ``null`` runs offline when no API key exists, so a run
    never stalls on a login prompt; ``wandb sync`` uploads the offline run later (checkpoint
    artifacts of ``log_model`` included). Unless its config names an ``id``, the wandb run id is
    :func:`wandb_run_id` of ``ckpt_path`` (the checkpoint the run resumes from, or None) and
    ``run_dir`` (the run folder), and the run is resumed when that id exists (``resume="allow"``).
    """
    if not logger_cfg:
        return []
    loggers: list[Logger] = []
    for name, node in logger_cfg.items():
        if not isinstance(node, DictConfig) or "_target_" not in node:
            raise ValueError(
                f"logger.{name}: expected a config node with a `_target_` (e.g. "
                f"lightning.pytorch.loggers.CSVLogger), got {OmegaConf.to_yaml(node)!r}"
            )
        kwargs: dict[str, Any] = {}
        if node._target_.endswith("WandbLogger"):
            offline = node.get("offline")
            if offline is None:
                offline = not wandb_has_api_key()
            # Lightning refuses offline=True with log_model (it cannot upload); wandb's own offline
            # mode records the checkpoint artifacts and `wandb sync` uploads them with the run.
            kwargs["offline"] = False
            if offline:
                kwargs["mode"] = "offline"
            if not node.get("id") and not node.get("version"):
                kwargs["id"] = wandb_run_id(ckpt_path=ckpt_path, run_dir=run_dir)
            if "resume" not in node:
                kwargs["resume"] = "allow"  # continue the run of that id if it exists, else start it
            save_dir = str(node.get("save_dir", "."))
            os.makedirs(save_dir, exist_ok=True)
            # wandb writes to the user cache/config/data dirs even with WANDB_DIR set; keep the run
            # (and its staged artifact copies, which `wandb sync` uploads) self-contained unless the
            # user chose otherwise.
            for var, sub in _WANDB_DIRS.items():
                if var == "WANDB_CONFIG_DIR" and not offline:
                    continue
                # Unset, or still the value an earlier run of this process gave it (a sweep's next job).
                if os.environ.get(var, _dirs_set_here.get(var)) == _dirs_set_here.get(var):
                    os.environ[var] = _dirs_set_here[var] = os.path.join(save_dir, sub) if sub else save_dir
            _finish_open_wandb_run()
        loggers.append(instantiate(node, **kwargs))
    return loggers


class WandbRunId(Callback):
    """Keep a wandb run with its checkpoints: store the run id of ``logger`` in every checkpoint as
    ``checkpoint["mathml"]["wandb_run_id"]`` (read back by :func:`wandb_run_id` on resume), and
    when the run is offline say once, at the start of training, how to upload it (``wandb sync``).

    Args:
        logger: the run's wandb logger.
    """

    def __init__(self, logger: WandbLogger) -> None:
        if not isinstance(logger, WandbLogger):
            raise TypeError(f"logger: expected a lightning WandbLogger, got {type(logger).__name__}")
        self.logger = logger
        self._told = False

    def on_save_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint.setdefault("mathml", {})["wandb_run_id"] = self.logger.version

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self._told or not trainer.is_global_zero:
            return
        self._told = True
        run = self.logger.experiment
        if not getattr(run, "offline", False):
            return
        # Every segment of this run in this folder (a run resumed in place writes one offline-run-*
        # folder per start, all with the same id); wandb sync uploads them in order of start time.
        here = os.path.dirname(run.dir.rstrip(os.sep))
        segments = sorted(glob.glob(os.path.join(os.path.dirname(here), f"offline-run-*-{run.id}"))) or [here]
        elsewhere = ""
        if trainer.ckpt_path and len(segments) == 1:
            elsewhere = (f"; it resumed from {trainer.ckpt_path}: sync the offline-run-*-{run.id} folders "
                         f"of that run too, in the same command")
        log.info("wandb is offline (no API key, or offline=true); upload this run later with:  wandb sync %s%s",
                 " ".join(segments), elsewhere)


def logger_callbacks(loggers: list[Logger]) -> list[Callback]:
    """The callbacks ``loggers`` need: a :class:`WandbRunId` for each wandb logger."""
    return [WandbRunId(lg) for lg in loggers if isinstance(lg, WandbLogger)]


def log_images(trainer: Trainer, key: str, paths: list[str]) -> None:
    """Log the image files ``paths`` under ``key`` at the current global step to every wandb logger
    of ``trainer`` (rank 0 only; nothing without a wandb logger)."""
    if not paths or not trainer.is_global_zero:
        return
    for lg in trainer.loggers:
        if isinstance(lg, WandbLogger):
            lg.log_image(key=key, images=list(paths), step=trainer.global_step)


# Lightning (2.6) advertises its cloud products on every fit ("💡 Tip: ... litlogger ...",
# "💡 Tip: ... litmodels ...") through rank_zero_info; there is no setting to turn it off. These
# are the loggers rank_zero_info may write to (lightning_utilities' module logger, which each
# lightning package replaces with its own on import).
_TIP_LOGGERS = (
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
    "lightning_utilities.core.rank_zero",
)


class _DropLightningTips(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("💡 Tip:")


_TIP_FILTER = _DropLightningTips()


def silence_lightning_tips() -> None:
    """Drop Lightning's advertising tips (and nothing else) from its logs; safe to call repeatedly."""
    for name in _TIP_LOGGERS:
        logger = logging.getLogger(name)
        if _TIP_FILTER not in logger.filters:
            logger.addFilter(_TIP_FILTER)
