"""mathml-report: mean ± sd over seeds of a sweep's metrics, failed runs listed, clear errors."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

# 3 seeds x 2 settings of objective.beta, hand-picked values: test/nll_nats and test/bits_per_dim.
VALUES = {"1": [(101.5, 2.31), (99.25, 2.27), (103.0, 2.35)], "4": [(110.0, 2.5), (112.5, 2.61), (108.75, 2.44)]}
COMMON = ["trainer.max_epochs=3"]


def _fake_sweep(root: Path, *, failed: bool = True) -> Path:
    """A Hydra-multirun-shaped folder: <root>/<job>/{metrics.json, .hydra/overrides.yaml, .hydra/config.yaml}."""
    job = 0
    for beta, rows in VALUES.items():
        for seed, (nll, bpd) in enumerate(rows):
            d = root / str(job)
            (d / ".hydra").mkdir(parents=True)
            (d / ".hydra" / "overrides.yaml").write_text(
                "".join(f"- {o}\n" for o in [f"seed={seed}", f"objective.beta={beta}", *COMMON]))
            (d / ".hydra" / "config.yaml").write_text(f"seed: {seed}\nobjective:\n  beta: {beta}\n  k: 1\n")
            (d / "metrics.json").write_text(json.dumps(
                {"metrics": {"test/nll_nats": nll, "test/bits_per_dim": bpd}, "seed": seed}))
            job += 1
    if failed:  # a job that crashed before writing metrics.json
        d = root / str(job)
        (d / ".hydra").mkdir(parents=True)
        (d / ".hydra" / "overrides.yaml").write_text(f"- seed=3\n- objective.beta=4\n- {COMMON[0]}\n")
    return root


def _table_cells(md: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split(" | ") for line in md.splitlines() if line.startswith("| ")]
    return {r[0].strip(): [c.strip() for c in r[1:]] for r in rows[1:]}


def test_mean_and_sd_over_seeds_match_numpy(tmp_path, capsys):
    from mathml_scripts.report import report

    sweep = _fake_sweep(tmp_path / "sweep")
    paths = report([str(sweep), "--out", str(tmp_path / "out")])
    rows = {r["setting"]: r for r in csv.DictReader(open(paths["csv"]))}
    assert set(rows) == {"objective.beta=1", "objective.beta=4"}  # grouped by overrides minus seed; common ones dropped
    for beta, values in VALUES.items():
        row = rows[f"objective.beta={beta}"]
        for j, metric in enumerate(("test/nll_nats", "test/bits_per_dim")):
            x = np.array([v[j] for v in values])
            assert int(row[f"{metric}_n"]) == 3
            assert float(row[f"{metric}_mean"]) == pytest.approx(x.mean(), rel=1e-12)
            assert float(row[f"{metric}_sd"]) == pytest.approx(x.std(ddof=1), rel=1e-12)
    # The failed job counts as a run of its setting, is listed by folder, and adds no value.
    assert (rows["objective.beta=4"]["runs"], rows["objective.beta=4"]["failed"]) == ("4", "1")
    md = Path(paths["markdown"]).read_text()
    assert "without metrics.json" in md and f"`{sweep / '6'}`" in md
    cells = _table_cells(md)
    x = np.array([v[0] for v in VALUES["1"]])
    assert cells["objective.beta=1"][2] == f"{x.mean():.6g} ± {x.std(ddof=1):.6g} (n=3)"
    assert cells["objective.beta=4"][0] == "4"
    assert Path(paths["plot"]).stat().st_size > 1000 and Path(paths["plot"]).read_bytes()[:4] == b"\x89PNG"
    assert "objective.beta=1" in capsys.readouterr().out


def test_group_by_a_config_key_and_single_runs_have_no_sd(tmp_path):
    from mathml_scripts.report import report

    sweep = _fake_sweep(tmp_path / "sweep", failed=False)
    # Grouping by seed: each group holds one run per beta (two values), so sd is defined ...
    paths = report([str(sweep), "--group-by", "seed", "--metrics", "test/nll_nats"])
    rows = {r["setting"]: r for r in csv.DictReader(open(paths["csv"]))}
    assert list(rows) == ["seed=0", "seed=1", "seed=2"]
    x = np.array([VALUES["1"][1][0], VALUES["4"][1][0]])
    assert float(rows["seed=1"]["test/nll_nats_sd"]) == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert "test/bits_per_dim_mean" not in rows["seed=1"]
    # ... grouping by seed and a key read from .hydra/config.yaml (not in the overrides) leaves single runs.
    paths = report([str(sweep), "--group-by", "seed,objective.beta", "--out", str(tmp_path / "single")])
    rows = {r["setting"]: r for r in csv.DictReader(open(paths["csv"]))}
    assert len(rows) == 6 and all(r["test/nll_nats_n"] == "1" and r["test/nll_nats_sd"] == "" for r in rows.values())
    cells = _table_cells(Path(paths["markdown"]).read_text())
    assert cells["seed=0 objective.beta=4"][2] == f"{VALUES['4'][0][0]:.6g} ± – (n=1)"


@pytest.mark.parametrize("args,message", [
    (["{tmp}/nowhere"], "does not exist"),
    (["{tmp}/empty"], "no runs under"),
    (["{sweep}", "--metrics", "test/fid"], "--metrics: test/fid not reported by any run; available: test/bits_per_dim, test/nll_nats"),
    (["{sweep}", "--group-by", "model.width"], "--group-by: no run sets the config key 'model.width'"),
])
def test_errors_are_one_line_with_exit_code_2(tmp_path, capsys, args, message):
    from mathml_scripts.report import main

    (tmp_path / "empty").mkdir()
    sweep = _fake_sweep(tmp_path / "sweep")
    with pytest.raises(SystemExit) as info:
        main([a.format(tmp=tmp_path, sweep=sweep) for a in args])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("mathml-report: error: ") and message in err and err.count("\n") == 1


def test_a_sweep_where_no_run_finished_is_an_error(tmp_path, capsys):
    from mathml_scripts.report import main

    (tmp_path / "0" / ".hydra").mkdir(parents=True)
    (tmp_path / "0" / ".hydra" / "overrides.yaml").write_text("- seed=0\n")
    with pytest.raises(SystemExit):
        main([str(tmp_path)])
    assert "none wrote metrics.json" in capsys.readouterr().err


@pytest.mark.slow
def test_report_of_a_real_two_seed_sweep(tmp_path):
    """`mathml-train -m seed=0,1` (two tiny trainings logged to offline wandb), then the `mathml-report`
    console script on its folder."""
    fast = ["trainer.max_epochs=1", "+trainer.limit_train_batches=3", "+trainer.limit_val_batches=1",
            "+trainer.limit_test_batches=1", "model.eval_k=8", "model.eval_chunk=4", "callbacks.progress_bar=null",
            "logger=wandb"]
    env = {**os.environ, "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1", "HOME": str(tmp_path / "home"),
           "NETRC": str(tmp_path / "home" / ".netrc")}
    env.pop("WANDB_API_KEY", None)
    sweep = tmp_path / "sweep"
    r = subprocess.run([sys.executable, "-m", "mathml_scripts.train", "-m", "seed=0,1", f"hydra.sweep.dir={sweep}", *fast],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    r = subprocess.run([str(Path(sys.executable).parent / "mathml-report"), str(sweep), "--metrics", "test/nll_nats"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    x = np.array([json.loads((sweep / str(job) / "metrics.json").read_text())["metrics"]["test/nll_nats"] for job in (0, 1)])
    assert x[0] != x[1]  # two seeds, two different models
    # The jobs ran one after another in one process: each got its own wandb run, in its own folder.
    ids = [(sweep / str(job) / "wandb_run_id.txt").read_text().strip() for job in (0, 1)]
    assert ids[0] != ids[1]
    for job, run_id in enumerate(ids):
        assert len(list((sweep / str(job) / "logs" / "wandb").glob(f"offline-run-*-{run_id}"))) == 1
    (row,) = csv.DictReader(open(sweep / "report.csv"))
    assert (row["setting"], row["runs"], row["failed"], row["test/nll_nats_n"]) == ("all runs", "2", "0", "2")
    assert float(row["test/nll_nats_mean"]) == pytest.approx(x.mean(), rel=1e-12)
    assert float(row["test/nll_nats_sd"]) == pytest.approx(x.std(ddof=1), rel=1e-12)
    assert (sweep / "report.png").is_file() and "| all runs | 2 |" in (sweep / "report.md").read_text()
