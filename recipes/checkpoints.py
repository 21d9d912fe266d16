"""Checkpoint checks done before training starts, so a bad path fails fast and clearly."""

from __future__ import annotations

import os
import pickle
import zipfile

import torch

from .errors import CheckpointError


def check_checkpoint(path: str | os.PathLike) -> str:
    """Return ``path`` if it is a readable Lightning checkpoint, else raise :class:`CheckpointError`.

    The file is opened with ``torch.load(weights_only=True)``, the loader Lightning and users call,
    so a checkpoint that passes here also loads for them.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CheckpointError(
            f"ckpt_path={path!r} does not exist. Pass the path of a checkpoint such as "
            f"outputs/<date>/<time>/checkpoints/last.ckpt, or ckpt_path=null to start fresh."
        )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError, OSError) as e:
        raise CheckpointError(
            f"ckpt_path={path!r} could not be read ({type(e).__name__}: {str(e).splitlines()[0][:200]}). "
            f"The file is truncated, corrupted or not a PyTorch checkpoint; use another checkpoint "
            f"(the best-*.ckpt beside last.ckpt) or ckpt_path=null to start fresh."
        ) from None
    missing = [k for k in ("state_dict", "epoch", "global_step") if not isinstance(ckpt, dict) or k not in ckpt]
    if missing:
        raise CheckpointError(
            f"ckpt_path={path!r} is a PyTorch file but not a Lightning training checkpoint "
            f"(missing {', '.join(missing)}); resume needs a checkpoint written by mathml-train."
        )
    return path
