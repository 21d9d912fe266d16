"""wandb offline: the run id follows the checkpoint, a resumed run continues its history, images and
checkpoint artifacts are recorded, and the offline run says how to `wandb sync` it."""

import logging
import os
import struct
import time
from pathlib import Path

import pytest
import torch

FAST = ["logger=wandb", "callbacks.progress_bar=null", "+trainer.limit_train_batches=3",
        "+trainer.limit_val_batches=1", "+trainer.limit_test_batches=1", "model.eval_k=8", "model.eval_chunk=4"]


def _records(path: Path) -> list:
    """The protobuf records of a `.wandb` file: wandb's LevelDB-style log (a 7-byte file header
    ":W&B" + magic + version, then 32 KiB blocks of records, each with a 7-byte header
    (crc32, length, type: 1 full, 2 first, 3 middle, 4 last); a block tail under 7 bytes is padding)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B", f"{path} is not a wandb transaction log"
    pos, chunk, out = 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, n, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if kind == 0 or pos + 7 + n > len(data):  # zero padding, or a record still being written
            break
        chunk += data[pos + 7:pos + 7 + n]
        pos += 7 + n
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            out.append(record)
            chunk = b""
    return out


def _segment(run_dir: Path) -> dict:
    """The wandb run id, history rows (key -> JSON value) and record kinds of the one offline run in run_dir."""
    import json

    (folder,) = (run_dir / "logs" / "wandb").glob("offline-run-*")
    (log,) = folder.glob("run-*.wandb")
    # wandb's service writes the log in the background and may still be flushing it after
    # wandb.finish() returns: wait (bounded) for the run's closing `exit` record.
    deadline = time.monotonic() + 60
    records = _records(log)
    while not any(r.WhichOneof("record_type") == "exit" for r in records):
        assert time.monotonic() < deadline, f"{log} has no exit record after 60 s"
        time.sleep(0.2)
        records = _records(log)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    history = [{i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in r.history.item}
               for r in records if r.WhichOneof("record_type") == "history"]
    return {"id": run.run_id, "folder": folder, "history": history,
            "artifacts": [r.artifact for r in records if r.WhichOneof("record_type") == "artifact"]}


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No API key anywhere: HOME and NETRC in tmp, WANDB_API_KEY unset."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NETRC", str(tmp_path / "home" / ".netrc"))
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    yield
    import wandb

    wandb.finish()


def test_run_id_comes_from_the_checkpoint_then_the_run_folder_then_is_new(tmp_path):
    from mathml_recipes.loggers import RUN_ID_FILE, checkpoint_wandb_run_id, wandb_run_id

    fresh = wandb_run_id(run_dir=tmp_path / "a")
    assert len(fresh) == 8 and fresh.isalnum()
    assert (tmp_path / "a" / RUN_ID_FILE).read_text().strip() == fresh
    # A job requeued before its first checkpoint keeps the id written in its folder ...
    assert wandb_run_id(run_dir=tmp_path / "a") == fresh
    # ... another folder gets another id ...
    assert wandb_run_id(run_dir=tmp_path / "b") != fresh
    # ... and the id stored in the checkpoint resumed from wins, and is written to the new folder.
    ckpt = tmp_path / "x.ckpt"
    torch.save({"state_dict": {}, "epoch": 1, "global_step": 3, "mathml": {"wandb_run_id": "abcd1234"}}, ckpt)
    assert checkpoint_wandb_run_id(ckpt) == "abcd1234"
    assert wandb_run_id(ckpt_path=ckpt, run_dir=tmp_path / "a") == "abcd1234"
    assert (tmp_path / "a" / RUN_ID_FILE).read_text().strip() == "abcd1234"
    # A checkpoint written without wandb holds no id: the folder's id is kept.
    torch.save({"state_dict": {}, "epoch": 1, "global_step": 3}, ckpt)
    assert checkpoint_wandb_run_id(ckpt) is None
    assert wandb_run_id(ckpt_path=ckpt, run_dir=tmp_path / "a") == "abcd1234"


def test_api_key_is_found_in_the_environment_or_the_netrc_entry_of_the_wandb_host(monkeypatch, tmp_path):
    from mathml_recipes.loggers import wandb_has_api_key

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    netrc = tmp_path / "netrc"
    monkeypatch.setenv("NETRC", str(netrc))
    assert not wandb_has_api_key()  # no file
    netrc.write_text("machine wandb.example.org\n  login user\n  password k1\n")
    netrc.chmod(0o600)
    assert not wandb_has_api_key()  # an entry for another host
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")
    assert wandb_has_api_key()
    monkeypatch.delenv("WANDB_BASE_URL")
    monkeypatch.setenv("WANDB_API_KEY", "k2")
    assert wandb_has_api_key()


def test_wandb_folders_follow_each_run_unless_the_user_chose_them(monkeypatch, tmp_path):
    from omegaconf import OmegaConf

    from mathml_recipes.loggers import instantiate_loggers

    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "mine"))

    def build(run):
        cfg = OmegaConf.create({"wandb": {"_target_": "lightning.pytorch.loggers.WandbLogger",
                                          "save_dir": str(tmp_path / run / "logs"), "offline": True}})
        (logger,) = instantiate_loggers(cfg, run_dir=tmp_path / run)
        return logger

    first = build("a")  # no run is started until the logger is used
    assert first.version == (tmp_path / "a" / "wandb_run_id.txt").read_text().strip()
    assert os.environ["WANDB_DATA_DIR"] == str(tmp_path / "a" / "logs" / ".data")
    # The next job of a sweep in the same process moves them; the folder the user chose stays.
    second = build("b")
    assert second.version != first.version
    assert os.environ["WANDB_DATA_DIR"] == str(tmp_path / "b" / "logs" / ".data")
    assert os.environ["WANDB_CONFIG_DIR"] == str(tmp_path / "b" / "logs" / ".config")
    assert os.environ["WANDB_CACHE_DIR"] == str(tmp_path / "mine")


def test_wandb_run_callback_rejects_other_loggers(tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    from mathml_recipes.loggers import WandbRunId

    with pytest.raises(TypeError, match="logger: expected a lightning WandbLogger, got CSVLogger"):
        WandbRunId(CSVLogger(tmp_path))


@pytest.mark.slow
def test_resumed_run_keeps_its_wandb_id_and_continues_its_history(compose_train, offline, tmp_path, caplog):
    from mathml_scripts.train import train

    caplog.set_level(logging.INFO, logger="mathml_recipes.loggers")
    train(compose_train(*FAST, "trainer.max_epochs=2", out="a"))
    run_id = (tmp_path / "a" / "wandb_run_id.txt").read_text().strip()
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["mathml"]["wandb_run_id"] == run_id
    (folder,) = (tmp_path / "a" / "logs" / "wandb").glob(f"offline-run-*-{run_id}")
    # Told once how to upload the offline run, naming its folder.
    told = [r.getMessage() for r in caplog.records if "wandb sync" in r.getMessage()]
    assert len(told) == 1 and f"wandb sync {folder}" in told[0]

    # Resume into another folder, to epoch 4, with checkpoints logged as artifacts (offline too).
    # Starting it closes segment a's wandb run (one process: as in a sweep's jobs under Hydra's basic launcher).
    train(compose_train(*FAST, "trainer.max_epochs=4", f"ckpt_path={ckpt}", "logger.wandb.log_model=true", out="b"))
    import wandb

    wandb.finish()  # flush segment b's transaction log
    a, b = _segment(tmp_path / "a"), _segment(tmp_path / "b")
    assert a["id"] == b["id"] == run_id
    # The resumed run's hint names its own segment and points to the earlier ones beside the checkpoint.
    told = [r.getMessage() for r in caplog.records if "wandb sync" in r.getMessage()]
    assert len(told) == 2 and f"wandb sync {b['folder']}; it resumed from {ckpt}" in told[1]
    assert torch.load(tmp_path / "b" / "checkpoints" / "last.ckpt", weights_only=True)["mathml"]["wandb_run_id"] == run_id

    def steps(seg, key):
        return [row[key] for row in seg["history"] if key in row and "test/nll_nats" not in row]

    # The history continues: 3 steps per epoch, so segment a trained epochs 0-1 (steps up to 6) and
    # segment b epochs 2-3, its steps after a's, not from 0.
    assert sorted(set(steps(a, "epoch"))) == [0, 1] and sorted(set(steps(b, "epoch"))) == [2, 3]
    assert max(steps(a, "trainer/global_step")) <= 6 < min(steps(b, "trainer/global_step"))
    assert max(steps(b, "trainer/global_step")) == 12
    # Sample and reconstruction grids reach wandb as images; the resumed segment's checkpoints as artifacts.
    for seg in (a, b):
        for key in ("test/samples", "test/reconstructions"):
            (row,) = [row for row in seg["history"] if f"{key}/_type" in row]
            assert row[f"{key}/_type"] == "images/separated" and row["trainer/global_step"] == max(steps(seg, "trainer/global_step"))
            (name,) = row[f"{key}/filenames"]
            assert (seg["folder"] / "files" / name).read_bytes()[:4] == b"\x89PNG"
    # log_model=true: the best and the last checkpoint of segment b, as model artifacts of this run, their
    # bytes staged inside the run folder for `wandb sync`; segment a logged none.
    assert a["artifacts"] == []
    assert sorted(sorted(x.aliases) for x in b["artifacts"]) == [["best", "latest"], ["latest"]]
    for x in b["artifacts"]:
        (entry,) = x.manifest.contents
        assert (x.type, x.name, entry.path) == ("model", f"model-{run_id}", "model.ckpt")
        assert Path(entry.local_path).is_relative_to(tmp_path / "b" / "logs") and Path(entry.local_path).stat().st_size == entry.size
