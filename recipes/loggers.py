"""Build the experiment loggers named in ``conf/logger`` (CSV, TensorBoard, wandb); silence Lightning's tips."""

from __future__ import annotations

import logging
import netrc
import os
from typing import Any

from hydra.utils import instantiate
from lightning.pytorch.loggers import Logger
from omegaconf import DictConfig, OmegaConf


def wandb_has_api_key() -> bool:
    """True when wandb could authenticate: ``WANDB_API_KEY`` or an ``api.wandb.ai`` netrc entry."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (FileNotFoundError, netrc.NetrcParseError):
        return False


def instantiate_loggers(logger_cfg: DictConfig | None) -> list[Logger]:
    """Instantiate every logger under ``logger_cfg`` (a mapping of name -> ``_target_`` node).

    A wandb logger whose ``offline`` is ``null`` runs offline when no API key exists, so a run
    never stalls on a login prompt; ``wandb sync`` uploads the offline run later.
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
            if node.get("offline") is None:
                kwargs["offline"] = not wandb_has_api_key()
            save_dir = str(node.get("save_dir", "."))
            os.makedirs(save_dir, exist_ok=True)
            # wandb writes to the user cache/config dirs even with WANDB_DIR set; keep the run
            # self-contained unless the user chose otherwise.
            os.environ.setdefault("WANDB_DIR", save_dir)
            os.environ.setdefault("WANDB_CACHE_DIR", os.path.join(save_dir, ".cache"))
            os.environ.setdefault("WANDB_CONFIG_DIR", os.path.join(save_dir, ".config"))
        loggers.append(instantiate(node, **kwargs))
    return loggers


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
