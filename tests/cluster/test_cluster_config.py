"""Launcher configs, run-folder suffixes and the SLURM layout check (no controller needed)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from mathml_recipes.cluster import check_slurm_layout, run_uid, tasks_per_node
from mathml_recipes.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONF = str(ROOT / "conf")


def _launcher(*overrides):
    """The resolved hydra.launcher node for `overrides` (as the launching process instantiates it)."""
    with initialize_config_dir(config_dir=CONF, version_base="1.3"):
        cfg = compose("train", overrides=list(overrides), return_hydra_config=True)
    return OmegaConf.to_container(cfg.hydra.launcher, resolve=True), cfg


def test_slurm_launcher_follows_the_trainer():
    launcher, _ = _launcher("hydra/launcher=slurm")
    assert (launcher["tasks_per_node"], launcher["nodes"], launcher["gpus_per_node"]) == (1, 1, None)
    assert launcher["_target_"].endswith("SlurmLauncher") and launcher["max_num_timeout"] >= 1
    # The 4 x 8 GPU example: one task per GPU on each of 4 nodes.
    launcher, _ = _launcher("hydra/launcher=slurm", "trainer=ddp", "trainer.devices=8", "trainer.num_nodes=4",
                            "hydra.launcher.gpus_per_node=8", "hydra.launcher.nodes=4")
    assert (launcher["tasks_per_node"], launcher["nodes"], launcher["gpus_per_node"]) == (8, 4, 8)
    # devices=auto (trainer=ddp) takes its tasks from gpus_per_node; nodes follow trainer.num_nodes.
    launcher, _ = _launcher("hydra/launcher=slurm", "trainer=ddp", "hydra.launcher.gpus_per_node=4",
                            "trainer.num_nodes=2")
    assert (launcher["tasks_per_node"], launcher["nodes"]) == (4, 2)


def test_submitit_folders_live_in_the_sweep_folder():
    for name in ("slurm", "local"):
        launcher, cfg = _launcher(f"hydra/launcher={name}")
        sweep_dir = OmegaConf.select(cfg, "hydra.sweep.dir")
        assert launcher["submitit_folder"] == f"{sweep_dir}/.submitit/%j"


def test_run_and_sweep_folders_end_in_one_uid_per_config():
    _, cfg = _launcher()
    run_dir, sweep_dir = cfg.hydra.run.dir, cfg.hydra.sweep.dir
    pattern = r"\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d_([0-9a-f]{6})"
    run_uid_, sweep_uid = re.fullmatch("outputs/" + pattern, run_dir)[1], re.fullmatch("multirun/" + pattern, sweep_dir)[1]
    # use_cache=True: one draw per composed config, so every reference (and every re-read) agrees.
    assert run_uid_ == sweep_uid and cfg.hydra.run.dir == run_dir
    _, other = _launcher()
    # A second composition draws again (6 random hex digits: equal with probability 16**-6 ≈ 6e-8).
    assert other.hydra.run.dir != run_dir
    assert re.fullmatch(r"[0-9a-f]{6}", run_uid())


def test_tasks_per_node_rule():
    assert tasks_per_node(8) == 8 and tasks_per_node("2") == 2 and tasks_per_node([0, 3]) == 2
    assert tasks_per_node("auto", 4) == 4 and tasks_per_node("auto", None) == 1 and tasks_per_node(-1, 2) == 2
    for bad in (0, True, [], "two"):
        with pytest.raises(ConfigError, match="trainer.devices"):
            tasks_per_node(bad)
    with pytest.raises(ConfigError, match="gpus_per_node"):
        tasks_per_node("auto", 0)


SLURM_2x4 = {"SLURM_JOB_ID": "7", "SLURM_JOB_NAME": "train", "SLURM_NTASKS": "8", "SLURM_NNODES": "4",
             "SLURM_NTASKS_PER_NODE": "2(x4)"}


def test_layout_check_passes_when_trainer_and_job_agree():
    check_slurm_layout(2, 4, SLURM_2x4)
    check_slurm_layout([0, 1], "4", SLURM_2x4)
    check_slurm_layout("auto", 4, SLURM_2x4)  # Lightning counts visible devices itself
    # Not under SLURM, or in an interactive allocation Lightning ignores: nothing to check.
    check_slurm_layout(8, 1, {})
    check_slurm_layout(8, 1, {**SLURM_2x4, "SLURM_JOB_NAME": "bash"})


def test_layout_check_names_the_keys_to_change():
    with pytest.raises(ConfigError, match=r"4 node\(s\) but trainer.num_nodes=1.*trainer.num_nodes=4"):
        check_slurm_layout(2, 1, SLURM_2x4)
    with pytest.raises(ConfigError, match=r"2 task\(s\) per node but trainer.devices=8.*tasks_per_node=8"):
        check_slurm_layout(8, 4, SLURM_2x4)
    # Without SLURM_NTASKS_PER_NODE the per-node count is SLURM_NTASKS / SLURM_NNODES.
    env = {k: v for k, v in SLURM_2x4.items() if k != "SLURM_NTASKS_PER_NODE"}
    with pytest.raises(ConfigError, match="tasks_per_node=3"):
        check_slurm_layout(3, 4, env)
    with pytest.raises(ConfigError, match="trainer.num_nodes"):
        check_slurm_layout(2, 0, SLURM_2x4)


APP = """
import sys, hydra
import mathml_recipes.cluster  # what scripts/train.py imports first
from hydra.core.hydra_config import HydraConfig

@hydra.main(version_base="1.3", config_path={conf!r}, config_name="train")
def main(cfg):
    open(HydraConfig.get().runtime.output_dir + "/job.txt", "w").write(str(cfg.seed))

main()
"""


RUN_APP = """
import hydra
import mathml_recipes.cluster  # what scripts/train.py imports first
from hydra.core.hydra_config import HydraConfig

@hydra.main(version_base="1.3", config_path={conf!r}, config_name="train")
def main(cfg):
    print("OUTPUT_DIR", HydraConfig.get().runtime.output_dir)
    print("RUN_DIR", HydraConfig.get().run.dir)

main()
"""


@pytest.mark.slow  # two subprocesses that start Hydra: several seconds
def test_two_sweeps_started_in_the_same_second_get_different_folders(tmp_path):
    # Two real Hydra multiruns of the project's config (hydra/default.yaml) with a task that only writes
    # a file, started together. The date/time part is pinned to one value, which is the case of two
    # sweeps started in the same second; only the ${mathml.uid:} suffix can keep them apart.
    app = tmp_path / "app.py"
    app.write_text(APP.format(conf=CONF))
    sweep_dir = "hydra.sweep.dir=multirun/2026-01-01/12-00-00_${mathml.uid:}"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, str(app), "-m", "seed=1,2", sweep_dir], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out[-2000:]
    sweeps = sorted((tmp_path / "multirun" / "2026-01-01").iterdir())
    assert len(sweeps) == 2 and all(re.fullmatch(r"12-00-00_[0-9a-f]{6}", s.name) for s in sweeps)
    for s in sweeps:  # each sweep resolved its suffix once: both of its jobs are inside it
        assert sorted((s / str(i) / "job.txt").read_text() for i in (0, 1)) == ["1", "2"]



def test_ddp_relaunch_hands_the_resolved_run_folder_to_the_other_ranks(tmp_path):
    # Lightning's subprocess launcher starts rank r > 0 with the parent's argv plus
    # hydra.run.dir=<HydraConfig.get().run.dir> (lightning/fabric/strategies/launchers/subprocess_script.py,
    # _hydra_subprocess_cmd). In the parent that value must already be the resolved folder the parent
    # writes to (same <uid>), so the child does not draw a fresh ${mathml.uid:}.
    app = tmp_path / "app.py"
    app.write_text(RUN_APP.format(conf=CONF))
    r = subprocess.run([sys.executable, str(app)], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in r.stdout.splitlines() if line.startswith(("OUTPUT_DIR", "RUN_DIR")))
    assert re.fullmatch(r"outputs/\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d_[0-9a-f]{6}", lines["RUN_DIR"])
    assert Path(lines["OUTPUT_DIR"]) == (tmp_path / lines["RUN_DIR"]).resolve()
    assert [p.relative_to(tmp_path).as_posix() for p in (tmp_path / "outputs").glob("*/*")] == [lines["RUN_DIR"]]
