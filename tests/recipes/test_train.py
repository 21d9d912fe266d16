"""End-to-end: the training entry point from the command line and in-process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
FAST = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1",
        "+trainer.limit_test_batches=1", "model.eval_k=8", "model.eval_chunk=4"]


def _cli(tmp_path, *args, timeout=240):
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mathml_scripts.train", f"hydra.run.dir={tmp_path}", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
    )


@pytest.mark.slow
def test_default_experiment_trains_from_the_command_line(tmp_path):
    r = _cli(tmp_path, *FAST)
    assert r.returncode == 0, r.stderr[-3000:]
    summary = json.loads((tmp_path / "metrics.json").read_text())
    nll = summary["metrics"]["test/nll_nats"]
    assert 0 < nll < 1e4 and summary["metrics"]["test/bits_per_dim"] > 0
    for name in ("samples.png", "reconstructions.png", "checkpoints/last.ckpt", ".hydra/config.yaml"):
        assert (tmp_path / name).is_file(), name
    assert list((tmp_path / "logs" / "csv").glob("metrics.csv"))
    # Checkpoints load under torch's safe default (ENV.md gotcha 1).
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert "state_dict" in ckpt
    assert "final metrics" in r.stdout and "test/nll_nats" in r.stdout
    # Lightning's advertising tips are silenced (mathml_recipes.loggers.silence_lightning_tips).
    assert "Tip:" not in r.stdout + r.stderr and "litlogger" not in r.stdout + r.stderr


def test_large_seeds_train(compose_train):
    from mathml_scripts.train import train

    cfg = compose_train("seed=123456789", *FAST)
    m = train(cfg)
    assert torch.isfinite(torch.tensor(m["test/nll_nats"]))
    # Step values (written straight to the loggers) and epoch means both reach the CSV log.
    import csv

    rows = list(csv.DictReader(open(Path(cfg.paths.output_dir) / "logs" / "csv" / "metrics.csv")))
    step_rows = [r for r in rows if r.get("train/loss_step")]
    assert [r["step"] for r in step_rows] == ["0"] and step_rows[0]["epoch"] == "0"  # log_every_n_steps=10, 3 steps
    assert float(step_rows[0]["train/loss_step"]) > 0
    assert [r for r in rows if r.get("train/loss")] and [r for r in rows if r.get("val/loss")]


def test_config_typo_exits_nonzero_naming_the_key(tmp_path):
    r = _cli(tmp_path, "trainer.max_epochz=1", timeout=120)
    assert r.returncode != 0
    assert "max_epochz" in r.stderr


@pytest.mark.parametrize("override,key", [("objective.beta=-1", "beta"), ("experiment=iwae_binary_digits", None)])
def test_invalid_values_fail_before_training(override, key, compose_train):
    from mathml_recipes.errors import ConfigError
    from mathml_scripts.train import train

    if key is None:  # k < 1 for IWAE
        cfg = compose_train(override, "objective.k=0", *FAST)
        key = "k"
    else:
        cfg = compose_train(override, *FAST)
    with pytest.raises(ConfigError, match=key):
        train(cfg)
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


def test_unknown_key_in_a_config_node_names_it(compose_train):
    from mathml_recipes.errors import ConfigError
    from mathml_scripts.train import train

    cfg = compose_train("+objective.betta=2", *FAST)
    with pytest.raises(ConfigError, match="betta"):
        train(cfg)


def test_stale_top_level_data_shape_fails_clearly(compose_train):
    from hydra.errors import ConfigCompositionException

    from mathml_recipes.errors import ConfigError
    from mathml_scripts.train import train

    # data_shape moved to data.data_shape: a plain override names the key (Hydra's struct mode) ...
    with pytest.raises(ConfigCompositionException, match="data_shape"):
        compose_train("data_shape=[1,28,28]", *FAST)
    # ... and an appended one is refused before anything is built, pointing to the new key.
    for key in ("data_shape=[1,28,28]", "num_levels=256"):
        with pytest.raises(ConfigError, match=r"data\.(data_shape|num_levels)"):
            train(compose_train(f"+{key}", *FAST))


@pytest.mark.parametrize(
    "override,expected",
    [("data.data_shape=[1,28,28]", "set data.data_shape=[1,8,8]"), ("data.num_levels=256", "set data.num_levels=17")],
)
def test_wrong_data_metadata_is_a_one_line_error_naming_the_right_value(override, expected, compose_train):
    from mathml_recipes.errors import ConfigError
    from mathml_scripts.train import train

    cfg = compose_train(override, *FAST)
    with pytest.raises(ConfigError) as info:
        train(cfg)
    message = str(info.value)
    assert "\n" not in message and message.endswith(expected), message
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()


@pytest.mark.slow
def test_lightning_tips_are_silenced_and_other_messages_kept(compose_train):
    import logging

    from mathml_scripts.train import train

    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    # rank_zero_info writes to this logger; a handler on it sees what survives its filters.
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        train(compose_train(*FAST))
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    assert any(m.startswith("GPU available") for m in records), records  # Lightning's info still arrives
    assert not [m for m in records if "Tip" in m or "litlogger" in m or "litmodels" in m]


def test_corrupted_checkpoint_gives_a_clear_error(tmp_path, compose_train):
    from mathml_recipes.errors import CheckpointError
    from mathml_scripts.train import train

    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    with pytest.raises(CheckpointError, match="could not be read"):
        train(compose_train(f"ckpt_path={bad}", *FAST))
    with pytest.raises(CheckpointError, match="does not exist"):
        train(compose_train(f"ckpt_path={tmp_path / 'missing.ckpt'}", *FAST))


@pytest.mark.slow
def test_resume_matches_an_uninterrupted_run(tmp_path, compose_train):
    from mathml_scripts.train import train

    common = ["+trainer.limit_train_batches=4", "+trainer.limit_val_batches=2", "+trainer.limit_test_batches=2",
              "model.eval_k=16", "model.eval_chunk=8", "test_ckpt=last", "trainer.log_every_n_steps=1"]
    full = train(compose_train("trainer.max_epochs=4", *common, out="full"))
    train(compose_train("trainer.max_epochs=2", *common, out="part"))
    last = tmp_path / "part" / "checkpoints" / "last.ckpt"
    resumed = train(compose_train("trainer.max_epochs=4", f"ckpt_path={last}", *common, out="resumed"))
    for k in ("test/nll_nats", "test/elbo"):
        assert resumed[k] == full[k], (k, resumed[k], full[k])
    # The weights, too, are bit-for-bit those of the uninterrupted run.
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "resumed" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.cuda
@pytest.mark.parametrize("experiment", ["vae_digits", "iwae_binary_digits", "vae_mnist"])
def test_recipe_trains_and_tests_on_cuda(experiment, compose_train):
    from mathml_scripts.train import train

    m = train(compose_train(f"experiment={experiment}", "trainer=gpu", *FAST))
    assert torch.isfinite(torch.tensor(m["test/nll_nats"]))


def test_help_lists_experiments_and_groups():
    exe = Path(sys.executable).parent / "mathml-train"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "mathml_scripts.train"]
    r = subprocess.run([*cmd, "--help"], cwd="/", capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    for name in ("experiment:", "vae_digits", "iwae_binary_digits", "logger:", "wandb", "ckpt_path"):
        assert name in r.stdout, name


@pytest.mark.slow
@pytest.mark.parametrize("logger,pattern", [("tensorboard", "tensorboard/events.out.tfevents.*"),
                                            ("wandb", "wandb/offline-run-*")])
def test_real_loggers_write_their_files(logger, pattern, tmp_path, compose_train, monkeypatch):
    from mathml_scripts.train import train

    # No API key anywhere: the wandb logger must go offline by itself, not prompt or fail.
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("NETRC", str(tmp_path / "none"))
    cfg = compose_train(f"logger={logger}", *FAST)
    train(cfg)
    assert list((Path(cfg.paths.output_dir) / "logs").glob(pattern)), sorted((Path(cfg.paths.output_dir) / "logs").rglob("*"))[:20]
    best = list((Path(cfg.paths.output_dir) / "checkpoints").glob("best-*.ckpt"))
    assert best and "state_dict" in torch.load(best[0], weights_only=True)


@pytest.mark.slow
def test_ddp_on_two_cpu_processes(tmp_path):
    # Lightning's DDP re-launches the command for rank 1, so it runs as a subprocess (ENV.md gotcha 2).
    r = _cli(tmp_path, "trainer=ddp", "trainer.accelerator=cpu", "trainer.devices=2", "callbacks.progress_bar=null",
             *FAST, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert metrics["test/nll_nats"] > 0 and (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_missing_dataset_fails_before_training_and_leaves_no_folders(tmp_path, compose_train):
    from mathml.data import DatasetNotFoundError
    from mathml_scripts.train import train

    root = tmp_path / "datasets"
    cfg = compose_train("data=mnist", f"paths.data_dir={root}", *FAST)
    with pytest.raises(DatasetNotFoundError, match=str(root)):
        train(cfg)
    assert not root.exists() or not any(root.rglob("*"))
    assert not (Path(cfg.paths.output_dir) / "checkpoints").exists()
