"""Data-parallel (DDP) plumbing for the recipes: evaluation that sees every test point exactly once,
gathering per-sample values across ranks, and local Hydra multiruns whose DDP ranks stay in their job.

Evaluation. For validation and test loaders Lightning injects a ``DistributedSampler`` with
``drop_last=False``, which pads the index list by repeating its first indices until it divides by
the number of ranks: with N points on W ranks, ``(-N) mod W`` points are evaluated twice and a
mean reduced over ranks is biased toward them. ``eval_sampler`` gives the loaders Lightning's
``UnrepeatedDistributedSampler`` instead (rank r sees points r, r + W, r + 2W, ...; ranks differ
by at most one point); Lightning keeps a sampler that is already a ``DistributedSampler``. Ranks may
then run different numbers of evaluation batches, which is safe because DDP synchronises buffers
only on the first forward pass after training (every rank has at least one batch when N >= W).

Multiruns. Lightning's subprocess launcher starts rank r > 0 by re-running ``sys.argv`` plus
``hydra.run.dir=<hydra.run.dir>``; in a ``-m`` sweep that argv is the whole sweep, so the children
would start sweeps of their own in new folders. It also leaves the rendezvous variables
(``LOCAL_RANK``, ``MASTER_PORT``, ...) and the process group of the first job behind, so the next job
of the same sweep would believe its ranks already exist. ``pin_ddp_relaunch`` fixes both.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
from lightning import LightningModule, Trainer
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import Dataset, DistributedSampler

# What Lightning's subprocess launcher writes into the launching process's environment.
_RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
_ENV_AT_FIRST_JOB: dict[str, str | None] | None = None
# Hydra overrides a job's own ranks must not repeat (they describe the sweep, not the job).
_SWEEP_ONLY = ("hydra.mode", "hydra.sweep", "hydra.sweeper", "hydra/sweeper", "hydra.launcher",
               "hydra/launcher", "hydra.run.dir", "hydra.job.num", "hydra.job.id", "hydra.job.name",
               "hydra.output_subdir")


def eval_sampler(dataset: Dataset, trainer: Trainer | None) -> DistributedSampler | None:
    """The sampler for an evaluation loader over ``dataset`` (map-style, with ``__len__``): on one
    process None (the loader's own sequential order); on W > 1 ranks an unpadded
    ``UnrepeatedDistributedSampler`` (points r, r + W, ...) so every point is evaluated exactly once.

    Raises:
        ValueError: fewer points than ranks (a rank with no batch would stall DDP's first forward).
    """
    if trainer is None or trainer.world_size <= 1:
        return None
    if len(dataset) < trainer.world_size:
        raise ValueError(f"an evaluation set of {len(dataset)} points cannot be split over {trainer.world_size} "
                         f"processes (each needs one); use more points or fewer devices")
    return UnrepeatedDistributedSampler(dataset, num_replicas=trainer.world_size, rank=trainer.global_rank,
                                        shuffle=False)


def gather_rows(module: LightningModule, x: torch.Tensor) -> torch.Tensor:
    """Every rank's ``x`` (n_r, ...) concatenated in rank order, (Σ_r n_r, ...), on every rank; the
    n_r may differ (an unpadded evaluation split). On one process ``x`` itself."""
    trainer = module.trainer
    if trainer.world_size <= 1:
        return x
    strategy = trainer.strategy
    sizes = strategy.all_gather(torch.tensor([x.shape[0]], device=x.device)).reshape(-1).tolist()
    padded = x.new_zeros((max(sizes), *x.shape[1:]))
    padded[: x.shape[0]] = x
    rows = strategy.all_gather(padded)  # (W, max n_r, ...)
    return torch.cat([rows[r, :n] for r, n in enumerate(sizes)])


def pin_ddp_relaunch(script: str) -> None:
    """Call at the start of every Hydra job: ``pin_ddp_relaunch(__file__)`` first thing in the
    ``@hydra.main`` function of ``script``. In a local ``-m`` sweep (not under SLURM, whose ``srun``
    starts the ranks itself) it

    - rewrites ``sys.argv`` to ``script`` and this job's own overrides, and Hydra's ``run.dir`` to
      this job's output folder, so the ranks that Lightning re-launches train this job, in this
      job's folder;
    - when the process is not running ``script`` (a ``hydra/launcher=local`` job runs inside
      submitit's ``_submit`` module), makes Lightning re-launch ``python <script>`` rather than that
      module (it does so when ``__main__.__spec__`` is None);
    - restores the rendezvous variables Lightning's launcher set for the previous job and destroys
      that job's process group, so this job launches (and rendezvouses with) its own ranks.

    Outside a multirun, and in the re-launched ranks themselves (single-run mode), it does nothing.

    Args:
        script: path of the Hydra application's file (its ``__file__``).
    """
    import __main__
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import read_write

    global _ENV_AT_FIRST_JOB
    if not HydraConfig.initialized():
        return
    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN or SLURMEnvironment.detect():
        return
    if _ENV_AT_FIRST_JOB is None:
        _ENV_AT_FIRST_JOB = {k: os.environ.get(k) for k in _RENDEZVOUS}
    for k, v in _ENV_AT_FIRST_JOB.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    hydra_overrides = [o for o in hc.overrides.hydra if not o.lstrip("~+").startswith(_SWEEP_ONLY)]
    script = os.path.abspath(script)
    if os.path.abspath(getattr(__main__, "__file__", "") or "") != script:
        __main__.__spec__ = None
    sys.argv = [script, *hc.overrides.task, *hydra_overrides]
    with read_write(hc):
        hc.run.dir = hc.runtime.output_dir
