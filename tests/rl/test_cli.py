"""mathml-plan: runs from a subprocess, writes its files, rejects typos; every config composes;
its --help lists the planning groups and mathml-train's --help none of them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONF = ROOT / "conf_plan"  # planning groups; logger, paths and hydra link to conf/
TRAIN_CONF = ROOT / "conf"


def _run(tmp_path, *overrides, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, "-m", "mathml_scripts.plan", f"hydra.run.dir={tmp_path}", *overrides]
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
def test_every_mdp_config_builds_a_valid_mdp_that_value_iteration_certifies(name):
    import torch
    from hydra.utils import instantiate

    from mathml.rl import TabularMDP, value_iteration

    cfg = _compose([f"mdp={name}", *SMALL.get(name, [])])
    mdp = instantiate(cfg.mdp)
    assert isinstance(mdp, TabularMDP) and mdp.num_states >= 2 and mdp.num_actions >= 2
    # Stochastic rows (to the dtype's tolerance) and finite rewards, as the certificate assumes.
    P = mdp.P.to_dense() if mdp.is_sparse else mdp.P
    rows = P.to(torch.float64).sum(-1)
    assert torch.allclose(rows, torch.ones_like(rows), atol=1e-5) and bool(torch.isfinite(mdp.R).all())
    if bool((mdp.gamma < 1).all()):
        result = value_iteration(mdp, tol=1e-3)
        assert result.converged and float(result.error_bound.max()) <= 1e-3


@pytest.mark.parametrize("name", sorted(p.stem for p in (CONF / "algorithm").glob("*.yaml")))
def test_every_algorithm_config_solves(name):
    from hydra.utils import instantiate

    from mathml.rl import sutton_barto_5x5

    cfg = _compose([f"algorithm={name}"])
    res = instantiate(cfg.algorithm)(sutton_barto_5x5())
    assert res.V.shape == (25,)


def _help_groups(module):
    """The config groups that ``python -m <module> --help`` lists, as {group: [options]}."""
    p = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    # The help template (conf/hydra/default.yaml) puts the groups between these two headers.
    section = p.stdout.split("== Config groups", 1)[1].split("== Composed config", 1)[0]
    lines = [line for line in section.splitlines()[1:] if ": " in line]
    return {name: opts.split(", ") for name, opts in (line.split(": ", 1) for line in lines)}


def _group_dirs(root):
    return {p.name for p in root.iterdir() if p.is_dir() and p.name != "hydra"}


@pytest.mark.slow  # two interpreter start-ups, ~3 s each on a loaded 2-core machine
def test_each_help_lists_only_its_own_groups():
    plan, train = _help_groups("mathml_scripts.plan"), _help_groups("mathml_scripts.train")
    planning_only = {p.name for p in CONF.iterdir() if p.is_dir() and not p.is_symlink()}
    assert planning_only == {"mdp", "algorithm"}
    assert set(plan) == _group_dirs(CONF) == planning_only | {"logger", "paths"}
    assert set(train) == _group_dirs(TRAIN_CONF)
    assert not planning_only & set(train), sorted(train)
    assert {"data", "model", "objective", "trainer", "experiment"} <= set(train)
    # The shared groups are one copy: both apps offer the same options.
    assert plan["logger"] == train["logger"] == sorted(p.stem for p in (TRAIN_CONF / "logger").glob("*.yaml"))
    assert plan["mdp"] == sorted(p.stem for p in (CONF / "mdp").glob("*.yaml"))
    assert "frozenlake8x8" in plan["mdp"] and "value_iteration" in plan["algorithm"]


@pytest.mark.slow
def test_console_script_help_is_the_planning_help(tmp_path):
    exe = Path(sys.executable).with_name("mathml-plan")
    if not exe.exists():
        pytest.skip("mathml-plan is not installed in this environment")
    p = subprocess.run([str(exe), "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.startswith("mathml-plan:")
    assert "algorithm:" in p.stdout and "mdp:" in p.stdout and "\ndata:" not in p.stdout
