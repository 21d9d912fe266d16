"""mathml-train: train and evaluate a model from a Hydra config.

    mathml-train                                   # the default experiment (vae_digits)
    mathml-train experiment=iwae_binary_digits     # another experiment
    mathml-train trainer.max_epochs=5 seed=1       # override any value
    mathml-train trainer=gpu logger=wandb          # swap a config group
    mathml-train ckpt_path=outputs/.../checkpoints/last.ckpt   # resume from a checkpoint
    mathml-train hydra.run.dir=<run folder> ckpt_path=last      # resume a run from its newest good checkpoint
    mathml-train --help                            # groups, choices and the composed config

``train(cfg)`` is a plain function; ``main`` is its ``@hydra.main`` wrapper.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

import mathml_recipes.cluster  # noqa: F401 - registers ${mathml.uid:} (run folders, conf/hydra) before Hydra composes
from mathml_recipes.errors import CheckpointError, ConfigError

_TEST_CKPT = ("best", "last", None)
# Keys that moved: a stale `+key=` override would otherwise be silently ignored.
_MOVED = {"data_shape": "data.data_shape", "num_levels": "data.num_levels"}


def _build(key: str, node: Any, **kwargs: Any) -> Any:
    """Instantiate ``node``; any failure becomes a ConfigError naming the config key."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if node is None:
        raise ConfigError(f"config key `{key}` is empty; choose one, e.g. `{key}=<name>`")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as e:
        cause = e.__cause__ or e
        raise ConfigError(f"config key `{key}`: {cause}".replace("\n", " ")) from None
    except (ValueError, TypeError) as e:
        raise ConfigError(f"config key `{key}`: {e}") from None


def _check_top_level(cfg: DictConfig) -> None:
    from mathml.checks import check_nonnegative_int  # here, so `--help` does not pay for importing torch

    try:
        check_nonnegative_int(cfg.get("seed"), "config key `seed`")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    for old, new in _MOVED.items():
        if old in cfg:
            raise ConfigError(
                f"config key `{old}` is no longer read at the top level: the data config states it once "
                f"as `{new}` (the model reads it from there); drop `{old}` and, if needed, set {new}=..."
            )
    if cfg.get("test_ckpt") not in _TEST_CKPT:
        raise ConfigError(f"config key `test_ckpt` must be one of best, last, null; got {cfg.test_ckpt!r}")


def _summary(metrics: dict[str, float], paths: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="final metrics", show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k in sorted(metrics):
        table.add_row(k, f"{metrics[k]:.4f}")
    files = Table(title="written", show_header=False)
    for k, v in paths.items():
        files.add_row(k, v)
    console = Console()
    console.print(table)
    console.print(files)


def train(cfg: DictConfig) -> dict[str, float]:
    """Build every part from ``cfg``, fit, test, write ``metrics.json``; return the metrics."""
    import lightning as L

    from mathml_recipes.callbacks import ImageGrids
    from mathml_recipes.diffusion_callbacks import DiffusionSamples
    from mathml_recipes.checkpoints import AtomicCheckpointIO, keep_csv_history, resolve_ckpt_path
    from mathml_recipes.faults import SaveOnSignal, SignalReceived
    from mathml_recipes.loggers import instantiate_loggers, logger_callbacks, silence_lightning_tips

    _check_top_level(cfg)
    mathml_recipes.cluster.check_slurm_layout(cfg.trainer.get("devices", 1), cfg.trainer.get("num_nodes", 1))
    silence_lightning_tips()
    out_dir = cfg.paths.output_dir
    L.seed_everything(cfg.seed, workers=True, verbose=False)

    # Everything that can be wrong is built and checked before the first step. The data module
    # checks the data_shape and num_levels its config states (and the model reads) against the data.
    datamodule = _build("data", cfg.data)
    datamodule.prepare_data()
    datamodule.setup("fit")
    model = _build("model", cfg.model)
    # `callbacks.<name>=null` switches one callback off.
    callbacks = [_build(f"callbacks.{k}", v) for k, v in (cfg.get("callbacks") or {}).items() if v is not None]
    ckpt_path = resolve_ckpt_path(cfg.ckpt_path, out_dir)
    try:
        loggers = instantiate_loggers(cfg.get("logger"), ckpt_path=ckpt_path, run_dir=out_dir)
    except Exception as e:  # noqa: BLE001 - any logger failure is a config problem to report
        raise ConfigError(f"config key `logger`: {e}") from None
    callbacks += logger_callbacks(loggers)  # wandb: the run id goes into every checkpoint
    if ckpt_path is not None:
        keep_csv_history(loggers)
    # Every checkpoint is written atomically (a crash mid-write keeps the previous file), unless the
    # trainer config brings its own plugins.
    plugins = {} if cfg.trainer.get("plugins") else {"plugins": [AtomicCheckpointIO()]}
    trainer = _build("trainer", cfg.trainer, callbacks=callbacks, logger=loggers or False, **plugins)

    resolved = OmegaConf.to_container(cfg, resolve=True)
    for lg in loggers:
        lg.log_hyperparams(resolved)

    from lightning.pytorch.utilities.exceptions import SIGTERMException

    on_signal = next((cb for cb in callbacks if isinstance(cb, SaveOnSignal)), None)
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=ckpt_path)
    except SIGTERMException:  # Lightning's own stop on SIGTERM; SaveOnSignal has saved in on_exception
        raise SignalReceived(15, on_signal.checkpoint if on_signal else None) from None

    checkpoint_cb = trainer.checkpoint_callback
    # Training that stopped between two checkpoints (trainer.max_time, max_steps mid-epoch, an early
    # stop): save its final state as last.ckpt, so neither the test below nor a later resume falls
    # back to an older checkpoint. (ModelCheckpoint records the step it saved last.)
    last_saved = getattr(checkpoint_cb, "_last_global_step_saved", None)
    if checkpoint_cb is not None and checkpoint_cb.dirpath and last_saved is not None and trainer.global_step > last_saved:
        final = os.path.join(checkpoint_cb.dirpath, "last.ckpt")
        trainer.save_checkpoint(final)
        checkpoint_cb.last_model_path = final
    if cfg.test_ckpt is not None:
        test_ckpt = cfg.test_ckpt if checkpoint_cb is not None else None
        if test_ckpt == "best" and checkpoint_cb is not None and not checkpoint_cb.best_model_path:
            test_ckpt = "last"
        trainer.test(model, datamodule=datamodule, ckpt_path=test_ckpt, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}

    paths = {"run dir": str(out_dir)}
    if checkpoint_cb is not None:
        if checkpoint_cb.best_model_path:
            paths["best checkpoint"] = checkpoint_cb.best_model_path
        if checkpoint_cb.last_model_path:
            paths["last checkpoint"] = checkpoint_cb.last_model_path
    for cb in callbacks:
        if isinstance(cb, (ImageGrids, DiffusionSamples)):
            paths.update({os.path.basename(p): p for p in cb.paths})
    for lg in loggers:
        if lg.log_dir:
            paths[f"{type(lg).__name__} logs"] = str(lg.log_dir)
    if trainer.is_global_zero:
        os.makedirs(out_dir, exist_ok=True)
        paths["metrics.json"] = os.path.join(out_dir, "metrics.json")
        with open(paths["metrics.json"], "w") as f:
            json.dump({"metrics": metrics, "paths": paths, "seed": cfg.seed}, f, indent=2, sort_keys=True)
        _summary(metrics, paths)
    return metrics


# Absolute: a relative path would be resolved against the console script, not this file's package.
_CONF = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(version_base="1.3", config_path=_CONF, config_name="train")
def main(cfg: DictConfig) -> None:
    import logging
    import warnings

    import lightning  # noqa: F401 - installs its console handler, removed next

    from mathml.data import DatasetNotFoundError
    from mathml_recipes.faults import SignalReceived

    # Hydra already logs to the console and to the run's log file; Lightning's own console handler
    # would print every message twice.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    # Lightning 2.6.6 warns about its own pytree use on every fit (ENV.md gotcha 3): not actionable.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)", category=FutureWarning)
    # Lightning suggests `srun python ...` whenever srun is on PATH; SLURM jobs go through
    # hydra/launcher=slurm (which runs the tasks under srun), so the hint only misleads.
    warnings.filterwarnings("ignore", message=r"The `srun` command is available on your system but is not used")
    # Lightning's epoch-level "use sync_dist=True" advice: our epoch means are already reduced over
    # ranks (recipes.steps.log_epoch_means, recipes.ddp.gather_rows, torchmetrics).
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\(")
    from mathml_recipes.ddp import pin_ddp_relaunch

    pin_ddp_relaunch(__file__)  # a -m sweep's DDP ranks re-launch this job, not the whole sweep
    try:
        train(cfg)
    except (ConfigError, CheckpointError, DatasetNotFoundError) as e:
        print(f"mathml-train: error: {e}", file=sys.stderr)
        sys.exit(2)
    except SignalReceived as e:
        print(f"mathml-train: {e}", file=sys.stderr)
        sys.exit(128 + e.signum)
    except FloatingPointError as e:  # a non-finite loss (NonFiniteLoss, action=stop): the message says what to do
        print(f"mathml-train: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
