from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

CONF = str(Path(__file__).resolve().parents[2] / "conf")


@pytest.fixture
def compose_train(tmp_path, monkeypatch):
    """Compose conf/train.yaml with overrides, outputs under tmp_path, wandb kept local."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb"))

    def _compose(*overrides: str, out: str = "run"):
        with initialize_config_dir(config_dir=CONF, version_base="1.3"):
            return compose("train", overrides=[f"paths.output_dir={tmp_path / out}", *overrides])

    return _compose
