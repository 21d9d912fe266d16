"""mathml-eval: samples go back onto the data grid exactly, bad arguments give one-line errors with
exit code 2, and the CLI runs on the checkpoint of a tiny diffusion_digits run and writes every field."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mathml.sde import uniform_dequantize
from mathml_scripts.evaluate import main, to_data_grid

ROOT = Path(__file__).resolve().parents[2]


def test_samples_return_to_the_data_grid_by_inverting_uniform_dequantisation():
    g = torch.Generator().manual_seed(0)
    for levels in (2, 17, 256):
        x = torch.randint(0, levels, (64, 1, 8, 8), generator=g).float() / (levels - 1)
        y = uniform_dequantize(x, levels, generator=g)
        assert torch.equal(to_data_grid(y, levels), x)
    # values outside [0, 1) land on the end levels; continuous data are only clamped
    assert to_data_grid(torch.tensor([-0.3, 1.0, 1.7]), 17).tolist() == [0.0, 1.0, 1.0]
    assert to_data_grid(torch.tensor([-0.3, 0.25, 1.7]), None).tolist() == [0.0, 0.25, 1.0]


def test_bad_arguments_give_one_line_errors_and_exit_code_2(tmp_path, capsys):
    ckpt = tmp_path / "run" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    (tmp_path / "run" / ".hydra").mkdir()
    (tmp_path / "run" / ".hydra" / "config.yaml").write_text("{}\n")
    c = str(ckpt)
    cases = [([str(tmp_path / "missing.ckpt")], "does not exist"),
             ([c, "--sampler", "nope"], "unknown sampler 'nope'"),
             ([c, "--steps", "0"], "--steps must be >= 1"),
             ([c, "--n-samples", "1"], "--n-samples must be >= 2"),
             ([c, "--n-probes", "0"], "--n-probes must be >= 1"),
             ([c, "--floor-splits", "0"], "--floor-splits must be >= 1"),
             ([c, "--max-test-points", "-1"], "--max-test-points must be >= 1"),
             ([c, "--seed", "-2"], "--seed must be >= 0"),
             ([c, "--rtol", "0"], "--rtol must be a finite number > 0"),
             ([c, "--guidance-scale", "-1"], "--guidance-scale must be a finite number >= 0"),
             ([c, "--features", "vgg"], "unknown --features 'vgg'"),
             ([c, "--features", "inception"], "needs --inception-weights"),
             ([c, "--inception-weights", str(tmp_path / "w.pth")], "does not exist"),
             ([c, "--config", str(tmp_path / "none.yaml")], "config"),
             ([c, "--steps", "two"], "invalid int value"),
             ([c], "has no model/data nodes"),
             ([c, "--config", str(tmp_path / "run.yaml")], "could not be read as a Lightning checkpoint")]
    (tmp_path / "run.yaml").write_text("model: {}\ndata: {}\n")
    for args, msg in cases:
        with pytest.raises(SystemExit) as e:
            main([*args, "--no-progress"])
        err = capsys.readouterr().err
        assert e.value.code == 2 and msg in err and len(err.strip().splitlines()) == 1, (args, err)


def _run(args, timeout=900):
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_mathml_eval_runs_on_a_tiny_diffusion_digits_checkpoint(tmp_path):
    run = tmp_path / "run"
    r = _run(["-m", "mathml_scripts.train", "experiment=diffusion_digits", f"hydra.run.dir={run}", "trainer.max_steps=12",
              "trainer.max_epochs=2", "model.network.width=32", "model.network.num_blocks=1", "test_ckpt=null",
              "callbacks.diffusion_samples=null", "callbacks.progress_bar=null"])
    assert r.returncode == 0, r.stderr[-3000:]
    out = tmp_path / "eval.json"
    cache = tmp_path / "feature_nets"
    args = ["-m", "mathml_scripts.evaluate", str(run / "checkpoints" / "last.ckpt"), "--sampler", "ddim", "--steps", "4",
            "--max-test-points", "6", "--nll-batch-size", "3", "--rtol", "1e-3", "--atol", "1e-3",
            "--classifier-epochs", "1", "--feature-cache", str(cache), "--out", str(out), "--no-progress"]
    r = _run(args)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "FID" in r.stdout and "bits/dim" in r.stdout
    res = json.loads(out.read_text())
    fid_id = res["feature_network"]
    assert fid_id.startswith("digits_cnn_v2:") and fid_id == res["fid"]["feature_network"] == \
        res["fid_data_floor"]["feature_network"] == res["classifier"]["id"] == res["inception_score"]["classifier"]
    assert Path(res["feature_network_file"]).parent == cache
    # test split of the digits: 359 images, halves of 179; samples default to the half size
    assert res["data"]["half_size"] == 179 and res["fid"]["n_real"] == res["fid"]["n_fake"] == 179
    assert res["fid_data_floor"]["n_real"] == res["fid_data_floor"]["n_fake"] == 179 and res["fid_floor_same_sizes"]
    assert res["sampling"] == {"sampler": "ddim", "steps": 4, "seed": 0, "n_samples": 179, "nfe_per_batch": 4}
    # 12 training steps give noise-like samples: much farther from the data than the two data halves are
    assert res["fid"]["fid"] > res["fid_data_floor"]["fid"] > 0
    fl = res["fid_data_floor_resplits"]
    assert fl["splits"] == 5 and len(fl["values"]) == 5 and min(fl["values"]) > 0 and fl["std"] > 0
    for key in ("inception_score", "inception_score_data"):
        assert 1.0 <= res[key]["value"] <= 10.0  # 1 ≤ IS ≤ K for K = 10 classes
    bpd = res["bits_per_dim"]
    assert bpd["n_points"] == 6 and bpd["n_probes"] == 1 and len(bpd["nfe_per_solve"]) == 2
    # a density on dequantised 17-level data: bits/dim of a near-prior model lies far above 0 and the SE is positive
    assert math.isfinite(bpd["mean"]) and bpd["mean"] > 0 and 0 < bpd["se"] < bpd["mean"]
    assert 0.0 <= res["classifier"]["held_out_accuracy"] <= 1.0
