"""Compose conf/train.yaml outside a Hydra app (benchmarks run experiments in-process)."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

CONF = str(Path(__file__).resolve().parents[1] / "conf")


def compose_train(out_dir: str | Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        return compose("train", overrides=[f"paths.output_dir={out_dir}", *overrides])
