"""mathml-plan: runs from a subprocess, writes its files, rejects typos; every config composes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf"


def _run(tmp_path, *overrides, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "scripts.plan", f"hydra.run.dir={tmp_path}", *overrides]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides",
    [("mdp=frozenlake4x4",), ("mdp=slippery_gridworld", "mdp.L=12", "algorithm=modified_policy_iteration")],
)
def test_cli_writes_plots_and_metrics(tmp_path, overrides):
    p = _run(tmp_path, *overrides)
    assert p.returncode == 0, p.stderr[-2000:]
    for name in ("metrics.json", "convergence.png", "values.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["converged"] and metrics["error_bound"] <= 1e-6
    assert (tmp_path / "logs" / "csv" / "metrics.csv").exists()
    assert "error_bound" in p.stdout


@pytest.mark.slow
def test_cli_typo_exits_nonzero_naming_the_key(tmp_path):
    p = _run(tmp_path, "algorithm.tolerance=1e-3", timeout=60)
    assert p.returncode != 0
    assert "tolerance" in p.stderr


def _compose(overrides):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(version_base="1.3", config_dir=str(CONF)):
        return compose(config_name="plan", overrides=overrides, return_hydra_config=False)


SMALL = {"random_sparse": ["mdp.num_states=50"], "slippery_gridworld": ["mdp.L=4"]}


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "mdp").glob("*.yaml")))
def test_every_mdp_config_instantiates(name):
    from hydra.utils import instantiate

    from mathml.rl import TabularMDP

    cfg = _compose([f"mdp={name}", *SMALL.get(name, [])])
    assert isinstance(instantiate(cfg.mdp), TabularMDP)


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "algorithm").glob("*.yaml")))
def test_every_algorithm_config_solves(name):
    from hydra.utils import instantiate

    from mathml.rl import sutton_barto_5x5

    cfg = _compose([f"algorithm={name}"])
    res = instantiate(cfg.algorithm)(sutton_barto_5x5())
    assert res.V.shape == (25,)


@pytest.mark.slow
def test_console_script_help_lists_the_groups(tmp_path):
    exe = Path(sys.executable).with_name("mathml-plan")
    if not exe.exists():
        pytest.skip("mathml-plan is not installed in this environment")
    p = subprocess.run([str(exe), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert "algorithm:" in p.stdout and "mdp:" in p.stdout
