"""Checkpoints that survive faults (issue 10, item 5): atomic writes, ``ckpt_path=last``, a checkpoint
on SIGTERM/SIGUSR1, exact mid-epoch resume, and the non-finite-loss policy.

Every fault is injected into a real ``mathml-train`` subprocess (tests/recipes/fault_injection.py);
the run is then resumed with ``ckpt_path=last`` in the same folder and must end with exactly the
metrics and weights of an uninterrupted run (CPU, deterministic), or stop as specified.
"""

import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # --import-mode=importlib: the helper module beside this file
import fault_injection as fi  # noqa: E402
from mathml_recipes.checkpoints import atomic_save, find_last_checkpoint, resolve_ckpt_path
from mathml_recipes.errors import CheckpointError


# -- units --------------------------------------------------------------------------------------------

class _Unpicklable:
    def __reduce__(self):
        raise RuntimeError("boom while writing")


def test_atomic_save_keeps_the_previous_file_when_a_write_fails(tmp_path):
    path = tmp_path / "checkpoints" / "last.ckpt"
    atomic_save({"w": torch.arange(3)}, path)
    with pytest.raises(RuntimeError, match="boom"):
        atomic_save({"w": torch.zeros(3), "x": _Unpicklable()}, path)
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.arange(3))
    assert sorted(os.listdir(path.parent)) == ["last.ckpt"]  # no temporary file left behind


def _fake_ckpt(path, step, mtime):
    atomic_save({"state_dict": {}, "epoch": 0, "global_step": step}, path)
    os.utime(path, (mtime, mtime))


def test_find_last_checkpoint_skips_unreadable_newer_files_and_removes_partial_writes(tmp_path):
    folder = tmp_path / "checkpoints"
    now = time.time()
    _fake_ckpt(folder / "best-000.ckpt", 4, now - 30)
    _fake_ckpt(folder / "step.ckpt", 8, now - 20)
    _fake_ckpt(folder / "last.ckpt", 12, now - 10)
    data = (folder / "last.ckpt").read_bytes()
    (folder / "last.ckpt").write_bytes(data[: len(data) // 2])
    os.utime(folder / "last.ckpt", (now - 10, now - 10))
    (folder / ".last.ckpt.abc.partial").write_bytes(b"half")
    found, skipped = find_last_checkpoint(tmp_path)
    assert found == str(folder / "step.ckpt")
    assert [os.path.basename(p) for p, _ in skipped] == ["last.ckpt"] and "unreadable" in skipped[0][1]
    assert not (folder / ".last.ckpt.abc.partial").exists()
    assert find_last_checkpoint(tmp_path / "elsewhere") == (None, [])


def test_resolve_ckpt_path_refuses_to_overwrite_and_resumes_requeued_jobs(tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_RESTART_COUNT", raising=False)
    assert resolve_ckpt_path(None, tmp_path) is None and resolve_ckpt_path("last", tmp_path) is None
    _fake_ckpt(tmp_path / "checkpoints" / "last.ckpt", 3, time.time())
    with pytest.raises(CheckpointError, match="already holds checkpoints.*ckpt_path=last"):
        resolve_ckpt_path(None, tmp_path)
    assert resolve_ckpt_path("last", tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")
    monkeypatch.setenv("SLURM_RESTART_COUNT", "1")  # a requeued SLURM job resumes by itself
    assert resolve_ckpt_path(None, tmp_path) == str(tmp_path / "checkpoints" / "last.ckpt")


def test_epoch_seeded_sampler_resumes_mid_epoch_in_order():
    from mathml.data import EpochSeededSampler

    s = EpochSeededSampler(10, seed=3)
    s.set_epoch(2)
    full = list(s)
    s.resume_from(2, 4)
    resumed = list(s)
    assert resumed[:6] == full[4:] and sorted(resumed) == list(range(10))
    assert list(s) == full  # only the next pass is shifted
    s.resume_from(1, 4)  # a position recorded for another epoch is ignored
    assert list(s) == full
    with pytest.raises(ValueError, match="start must be < n"):
        s.resume_from(2, 10)


# -- faults injected into real runs ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    run = tmp_path_factory.mktemp("reference")
    r = fi.cli(run)
    assert r.returncode == 0, r.stderr[-3000:]
    return fi.final_state(run)


def _assert_same_end(run_dir, reference):
    metrics, weights, step = fi.final_state(run_dir)
    ref_metrics, ref_weights, ref_step = reference
    assert step == ref_step == 3 * fi.STEPS_PER_EPOCH
    assert metrics == ref_metrics
    assert weights.keys() == ref_weights.keys() and all(torch.equal(weights[k], ref_weights[k]) for k in weights)


# (fault, step at which it strikes, step the resume must start from)
CASES = [
    ("kill", 6, 4),                       # mid-epoch 1: back to the end of epoch 0
    ("kill_in_checkpoint_write", 8, 4),   # the end-of-epoch-1 save dies half-written: epoch 0's survives
    ("kill_in_validation", 8, 4),         # epoch 1's validation, before its checkpoint
    ("sigterm", 6, 6),                    # saved at the signal: nothing lost, mid-epoch resume
    ("sigusr1", 5, 5),
    ("sigterm_after_batch_end", 6, 6),    # saved when Lightning stops on it
]


@pytest.mark.slow
@pytest.mark.parametrize("kind,at_step,start_step", CASES, ids=[c[0] for c in CASES])
def test_fault_then_resume_matches_an_uninterrupted_run(kind, at_step, start_step, tmp_path, reference):
    out = fi.scenario(kind, at_step, tmp_path)
    fault, resume = out["fault"], out["resume"]
    expected = {"sigterm": 128 + signal.SIGTERM, "sigusr1": 128 + signal.SIGUSR1,
                "sigterm_after_batch_end": 128 + signal.SIGTERM}.get(kind, -signal.SIGKILL)
    assert fault.returncode == expected, fault.stderr[-3000:]
    assert resume.returncode == 0, resume.stderr[-3000:]
    assert out["start_step"] == start_step, (resume.stdout + resume.stderr)[-3000:]
    _assert_same_end(tmp_path, reference)
    # The interrupted run's CSV log is kept beside the resumed run's (Lightning's logger deletes it).
    earlier = (tmp_path / "logs" / "csv" / "metrics.1.csv").read_text()
    assert "train/loss_step" in earlier and (tmp_path / "logs" / "csv" / "metrics.csv").is_file()


@pytest.mark.slow
def test_truncated_newest_checkpoint_is_reported_and_the_previous_good_one_used(tmp_path, reference):
    out = fi.scenario("truncate", 8, tmp_path, truncate_newest=True)
    log = out["resume"].stdout + out["resume"].stderr
    assert out["resume"].returncode == 0, log[-3000:]
    assert "skipping checkpoint" in log and "last.ckpt" in log and "unreadable" in log
    assert out["resumed_from"].endswith(".ckpt") and not out["resumed_from"].endswith("last.ckpt")
    assert out["start_step"] <= 8  # best-*.ckpt: from the same epoch end when validation improved
    _assert_same_end(tmp_path, reference)


@pytest.mark.slow
def test_nan_loss_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path):
    r = fi.cli(tmp_path, "+callbacks.fault._target_=fault_injection.InjectFault", "+callbacks.fault.kind=nan_loss",
               "+callbacks.fault.at_step=6")
    assert r.returncode != 0 and "non-finite training loss" in r.stderr and "at step 6" in r.stderr, r.stderr[-3000:]
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 4  # the end of epoch 0, before the bad step
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values())
    assert not (tmp_path / "metrics.json").exists()


@pytest.mark.slow
def test_nan_loss_can_skip_the_step_instead(tmp_path, reference):
    r = fi.cli(tmp_path, "+callbacks.fault._target_=fault_injection.InjectFault", "+callbacks.fault.kind=nan_loss",
               "+callbacks.fault.at_step=6", "callbacks.nonfinite_loss.action=skip")
    assert r.returncode == 0, r.stderr[-3000:]
    assert "non-finite training loss at step 6" in r.stdout + r.stderr
    metrics, weights, step = fi.final_state(tmp_path)
    # Lightning still counts the batch (its optimiser step runs with no gradients, so Adam leaves the
    # weights alone); the run ends finite and, one update short, not equal to the uninterrupted run.
    assert step == 3 * fi.STEPS_PER_EPOCH
    assert all(torch.isfinite(v).all() for v in weights.values())
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert any(not torch.equal(weights[k], reference[1][k]) for k in weights)


def test_training_that_stops_between_checkpoints_saves_its_final_state(tmp_path, compose_train):
    # max_steps=6 with 4 batches an epoch: the last epoch-end checkpoint is at step 4; the final two
    # steps must not be lost to the test stage or to a later resume.
    from mathml_scripts.train import train

    cfg = compose_train(*fi.TINY, "trainer.max_steps=6", out="run")
    train(cfg)
    ckpt = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["global_step"] == 6
