"""Every experiment and every config group option composes and instantiates."""

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from recipes.loggers import instantiate_loggers

CONF = Path(__file__).resolve().parents[2] / "conf"
EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))

GROUP_OPTIONS = {
    g: sorted(p.stem for p in (CONF / g).glob("*.yaml"))
    for g in ("data", "model", "likelihood", "objective", "trainer", "logger", "callbacks")
}


def test_required_experiments_exist():
    assert {"vae_digits", "vae_binary_digits", "iwae_binary_digits", "vae_mnist", "linear_vae_digits"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_instantiates(experiment, compose_train):
    cfg = compose_train(f"experiment={experiment}")
    OmegaConf.resolve(cfg)
    dm = instantiate(cfg.data)
    assert list(dm.data_shape) == list(cfg.data_shape)
    model = instantiate(cfg.model)
    assert model.encoder.data_shape == tuple(cfg.data_shape)
    callbacks = [instantiate(c) for c in cfg.callbacks.values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=instantiate_loggers(cfg.logger))
    assert trainer.max_epochs == cfg.trainer.max_epochs


def _param(group, option):
    # The gpu trainer can only be instantiated where a GPU exists (scripts/gpu_check.sh runs it).
    marks = [pytest.mark.cuda] if (group, option) == ("trainer", "gpu") else []
    return pytest.param(group, option, marks=marks, id=f"{group}-{option}")


@pytest.mark.parametrize("group,option", [_param(g, o) for g, opts in GROUP_OPTIONS.items() for o in opts])
def test_group_option_instantiates(group, option, compose_train):
    overrides = [f"{group}={option}"]
    if group == "data":
        # A data option with another shape needs its matching data_shape and a matching model.
        dm = instantiate(compose_train(*overrides).data)
        overrides.append(f"data_shape=[{','.join(map(str, dm.data_shape))}]")
        if len(dm.data_shape) != 3:
            return  # 2-D toy data: no image model config applies; built above
    cfg = compose_train(*overrides)
    OmegaConf.resolve(cfg)
    node = cfg[group]
    if group == "logger":
        assert len(instantiate_loggers(node)) == len(node)
    elif group == "callbacks":
        assert all(instantiate(c) is not None for c in (node or {}).values())
    else:
        assert instantiate(node) is not None
