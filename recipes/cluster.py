"""Cluster launching: run-folder names that never collide, and a SLURM layout check.

Importing this module registers two OmegaConf resolvers (it is imported at the top of the entry
points, before Hydra composes the config, and imports neither torch nor lightning):

* ``${mathml.uid:}`` - a short random suffix for run and sweep folders
  (``conf/hydra/default.yaml``), so two runs or sweeps started in the same second get different
  folders. It is registered with ``use_cache=True``: it is drawn once per composed config, by the
  process that launches; Hydra copies that cache into every job's config of a sweep
  (``ConfigLoader.load_sweep_config``), the submitit launcher pickles it with the job (so a requeued
  job finds the same folder), and Lightning's DDP re-launch passes the resolved ``hydra.run.dir`` to
  its child processes.
* ``${mathml.tasks_per_node:<devices>,<gpus_per_node>}`` - the SLURM launcher's tasks per node
  (``conf/hydra/launcher/slurm.yaml``): one task per training process, i.e. ``trainer.devices``
  when it is a number (or a list of device ids), else ``gpus_per_node``, else 1.

``check_slurm_layout`` compares, inside a SLURM job, the trainer's devices and nodes with the tasks
and nodes that SLURM actually gave the job, and names the keys to change when they disagree.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from omegaconf import OmegaConf

from mathml_recipes.errors import ConfigError

UID_HEX_CHARS = 6  # 16**6 ≈ 1.7e7 suffixes: two runs started in the same second collide with p ≈ 6e-8


def run_uid() -> str:
    """A fresh random suffix of ``UID_HEX_CHARS`` hex digits (from ``secrets``, not the seeded RNGs)."""
    return secrets.token_hex(UID_HEX_CHARS // 2)


def tasks_per_node(devices: Any, gpus_per_node: Any = None) -> int:
    """SLURM tasks per node for a trainer with ``devices`` (Lightning's ``Trainer(devices=...)``).

    Lightning's SLURM environment runs one training process per SLURM task, so the launcher needs
    one task per device: ``devices`` if it is a positive int (or a digit string), ``len(devices)`` for
    a list of device ids; for ``"auto"`` / ``-1`` (every visible device) ``gpus_per_node`` if set,
    else 1.
    """
    if isinstance(devices, bool):
        raise ConfigError(f"config key `trainer.devices` must be an int, a list of ids or 'auto', got {devices!r}")
    if isinstance(devices, str) and devices.strip().isdigit():
        devices = int(devices)
    if isinstance(devices, int) and devices >= 1:
        return devices
    if isinstance(devices, Sequence) and not isinstance(devices, str):
        if len(devices) == 0:
            raise ConfigError("config key `trainer.devices` is an empty list; give at least one device id")
        return len(devices)
    if devices in ("auto", -1, "-1"):
        if gpus_per_node is None:
            return 1
        if isinstance(gpus_per_node, bool) or not isinstance(gpus_per_node, int) or gpus_per_node < 1:
            raise ConfigError(f"config key `hydra.launcher.gpus_per_node` must be an int >= 1 or null, got {gpus_per_node!r}")
        return gpus_per_node
    raise ConfigError(f"config key `trainer.devices` must be an int >= 1, a list of ids or 'auto', got {devices!r}")


def _lightning_uses_slurm(environ: Mapping[str, str]) -> bool:
    # Lightning's SLURMEnvironment.detect(): SLURM_NTASKS is set and the job is not an interactive
    # shell (job name "bash" or "interactive" opts out of SLURM detection).
    return "SLURM_NTASKS" in environ and environ.get("SLURM_JOB_NAME") not in ("bash", "interactive")


def check_slurm_layout(devices: Any, num_nodes: Any = 1, environ: Mapping[str, str] | None = None) -> None:
    """Inside a SLURM job, check that the trainer's processes match the job's tasks; else do nothing.

    Under SLURM, Lightning runs one training process per SLURM task (``SLURMEnvironment``), so
    ``trainer.devices`` must equal the tasks per node (``hydra.launcher.tasks_per_node``,
    ``SLURM_NTASKS_PER_NODE``) and ``trainer.num_nodes`` the job's nodes (``hydra.launcher.nodes``,
    ``SLURM_NNODES``). Lightning finds a mismatch only once the model is built and the strategy set
    up; this check runs first thing in ``train()`` and names the keys to change.

    Args:
        devices: ``trainer.devices`` - an int, a list of device ids, or ``"auto"`` (not checked per
            node: Lightning counts the visible devices itself).
        num_nodes: ``trainer.num_nodes`` (an int; Lightning's default is 1).
        environ: the environment to read (default ``os.environ``).

    Raises:
        ConfigError: the trainer asks for other devices or nodes than the SLURM job has.
    """
    env = os.environ if environ is None else environ
    if not _lightning_uses_slurm(env):
        return
    from mathml.checks import check_positive_int  # here: importing this module must not import torch

    try:
        num_nodes = check_positive_int(int(num_nodes) if isinstance(num_nodes, str) else num_nodes,
                                       "config key `trainer.num_nodes`")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    job = env.get("SLURM_JOB_ID", "?")
    nnodes = env.get("SLURM_NNODES") or env.get("SLURM_JOB_NUM_NODES")
    if nnodes is not None and int(nnodes) != num_nodes:
        raise ConfigError(
            f"SLURM job {job} has {nnodes} node(s) but trainer.num_nodes={num_nodes}: Lightning runs one "
            f"process per SLURM task on every node, so set trainer.num_nodes={nnodes} or "
            f"hydra.launcher.nodes={num_nodes} (the launcher's nodes follow trainer.num_nodes unless overridden)"
        )
    per_node = env.get("SLURM_NTASKS_PER_NODE")
    if per_node is None:
        ntasks = int(env["SLURM_NTASKS"])
        per_node = str(ntasks // int(nnodes)) if nnodes and ntasks % int(nnodes) == 0 else None
    if per_node is None or devices in ("auto", -1, "-1"):
        return
    wanted = tasks_per_node(devices)
    if int(per_node.split("(")[0]) != wanted:  # SLURM writes e.g. "2(x4)" for 2 tasks on each of 4 nodes
        raise ConfigError(
            f"SLURM job {job} runs {per_node.split('(')[0]} task(s) per node but trainer.devices={devices!r} "
            f"asks for {wanted} process(es) per node: set hydra.launcher.tasks_per_node={wanted} (and "
            f"hydra.launcher.gpus_per_node={wanted} on GPU nodes), or trainer.devices={per_node.split('(')[0]}"
        )


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("mathml.uid"):
        OmegaConf.register_new_resolver("mathml.uid", run_uid, use_cache=True)
    if not OmegaConf.has_resolver("mathml.tasks_per_node"):
        OmegaConf.register_new_resolver("mathml.tasks_per_node", tasks_per_node)


_register_resolvers()
