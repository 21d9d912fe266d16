"""Checkpoints: checks done before training starts (a bad path fails fast and clearly), atomic writes,
and the search for a run folder's newest good checkpoint (``ckpt_path=last``)."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import tempfile
import zipfile
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from .errors import CheckpointError


def checkpoint_problem(path: str | os.PathLike) -> str | None:
    """None when ``path`` is a readable Lightning training checkpoint, else what is wrong (one line).

    The file is opened with ``torch.load(weights_only=True)``, the loader Lightning and users call,
    so a checkpoint that passes here also loads for them.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        return "no such file"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        return (f"unreadable ({type(e).__name__}: {str(e).splitlines()[0][:200]}): truncated, corrupted "
                f"or not a PyTorch checkpoint")
    missing = [k for k in ("state_dict", "epoch", "global_step") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        return f"a PyTorch file but not a Lightning training checkpoint (missing {', '.join(missing)})"
    return None


def check_checkpoint(path: str | os.PathLike) -> str:
    """Return ``path`` if it is a readable Lightning checkpoint (:func:`checkpoint_problem`), else raise
    :class:`CheckpointError` saying what is wrong and what to do."""
    path = os.fspath(path)
    problem = checkpoint_problem(path)
    if problem is None:
        return path
    if problem == "no such file":
        raise CheckpointError(
            f"ckpt_path={path!r} does not exist. Pass the path of a checkpoint such as "
            f"outputs/<date>/<time>/checkpoints/last.ckpt, ckpt_path=last (the newest good checkpoint of "
            f"this run's folder), or ckpt_path=null to start fresh."
        )
    if problem.startswith("unreadable"):
        raise CheckpointError(
            f"ckpt_path={path!r} could not be read: {problem}. Use another checkpoint "
            f"(the best-*.ckpt beside last.ckpt, or ckpt_path=last to take the newest readable one) or "
            f"ckpt_path=null to start fresh."
        )
    raise CheckpointError(f"ckpt_path={path!r} is {problem}; resume needs a checkpoint written by mathml-train.")


# --- Checkpoints that survive faults ---------------------------------------------------------------

log = logging.getLogger(__name__)
_PARTIAL = ".partial"


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` so that a crash at any moment leaves either the previous file or
    the complete new one, never a truncated file.

    The bytes go to a temporary file in the same folder (so the final rename never crosses a file
    system), are flushed and fsync'ed, and the file is moved into place with ``os.replace`` (atomic on
    POSIX); the folder is fsync'ed so the rename itself survives a power loss. Lightning's own
    ``_atomic_save`` writes through an fsspec transaction whose temporary file lives in the system temp
    folder; its final move is then a copy across file systems, which a kill can interrupt half-way.
    """
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=_PARTIAL, dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # not every file system lets a folder be opened for fsync
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's ``TorchCheckpointIO`` with every save made atomic by :func:`atomic_save`."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError("AtomicCheckpointIO.save_checkpoint does not take storage_options")
        atomic_save(checkpoint, path)


def find_last_checkpoint(run_dir: str | os.PathLike) -> tuple[str | None, list[tuple[str, str]]]:
    """The newest readable checkpoint of a run folder, and the newer ones that were skipped.

    Looks at ``<run_dir>/checkpoints/*.ckpt`` from the newest (modification time; ``last.ckpt`` first
    on a tie) to the oldest and returns the first that loads as a Lightning training checkpoint, with
    ``(path, reason)`` for every newer file that did not. Leftover ``*.partial`` files (a save killed
    mid-write by a crash; see :func:`atomic_save`) are removed.

    Returns:
        ``(path or None, skipped)``.
    """
    folder = os.path.join(os.fspath(run_dir), "checkpoints")
    if not os.path.isdir(folder):
        return None, []
    for name in os.listdir(folder):
        if name.endswith(_PARTIAL):
            log.warning("removing %s: an unfinished checkpoint write (the process died while saving)", name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(folder, name))
    paths = [os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".ckpt")]
    paths.sort(key=lambda p: (os.path.getmtime(p), os.path.basename(p) == "last.ckpt"), reverse=True)
    skipped: list[tuple[str, str]] = []
    for p in paths:
        problem = checkpoint_problem(p)
        if problem is None:
            return p, skipped
        skipped.append((p, problem))
    return None, skipped


def requeued_slurm_job() -> bool:
    """True in a SLURM job that was requeued (SLURM sets ``SLURM_RESTART_COUNT`` >= 1 after a requeue)."""
    try:
        return int(os.environ.get("SLURM_RESTART_COUNT", "0")) >= 1
    except ValueError:
        return False


def resolve_ckpt_path(ckpt_path: str | None, run_dir: str | os.PathLike) -> str | None:
    """The checkpoint a run resumes from, or None to start fresh.

    - a path: that checkpoint, checked by :func:`check_checkpoint` (a bad file is an error: it was chosen);
    - ``"last"``: the newest readable checkpoint of ``run_dir`` (:func:`find_last_checkpoint`); newer
      unreadable ones are reported as warnings; none at all starts fresh;
    - ``None``: start fresh, except in a requeued SLURM job, which resumes as with ``"last"``; a fresh
      start into a run folder that already holds checkpoints is refused, since it would overwrite them.
    """
    if ckpt_path not in (None, "last"):
        return check_checkpoint(ckpt_path)
    if ckpt_path is None and not requeued_slurm_job():
        folder = os.path.join(os.fspath(run_dir), "checkpoints")
        # Any checkpoint file, readable or not, would be overwritten: no need to load them to refuse.
        if os.path.isdir(folder) and any(n.endswith(".ckpt") for n in os.listdir(folder)):
            raise CheckpointError(
                f"the run folder {os.fspath(run_dir)!r} already holds checkpoints; starting fresh there would "
                f"overwrite them. Pass ckpt_path=last to resume from its newest good checkpoint, or choose "
                f"another folder (hydra.run.dir=...)."
            )
        return None
    found, skipped = find_last_checkpoint(run_dir)
    for path, reason in skipped:
        log.warning("skipping checkpoint %s: %s", path, reason)
    if found is None:
        log.info("no readable checkpoint in %s/checkpoints: starting fresh", os.fspath(run_dir))
    else:
        step = torch.load(found, map_location="cpu", mmap=True, weights_only=True)["global_step"]
        log.info("resuming from %s at step %d%s", found, step,
                 f" (skipped {len(skipped)} newer unreadable)" if skipped else "")
    return found


def keep_csv_history(loggers: list) -> None:
    """Before a resumed run logs into a folder that already has a CSV log, move that log aside.

    Lightning's ``CSVLogger`` deletes an existing ``metrics.csv`` in its folder when it starts writing,
    so a resumed or requeued run would lose the history of the run it continues. The earlier segment
    is kept as ``metrics.<k>.csv`` (k = 1, 2, ... in order); ``metrics.csv`` then holds the newest.
    """
    from lightning.pytorch.loggers import CSVLogger
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    if rank_zero_only.rank != 0:  # only rank 0 writes the CSV log (ranks are known from the environment)
        return
    for lg in loggers:
        if not isinstance(lg, CSVLogger) or lg.log_dir is None:
            continue
        current = os.path.join(lg.log_dir, "metrics.csv")
        if not os.path.isfile(current):
            continue
        k = 1
        while os.path.exists(os.path.join(lg.log_dir, f"metrics.{k}.csv")):
            k += 1
        kept = os.path.join(lg.log_dir, f"metrics.{k}.csv")
        os.replace(current, kept)
        log.info("resuming into %s: the earlier CSV log is kept as %s", lg.log_dir, os.path.basename(kept))
