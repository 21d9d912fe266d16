"""mathml-sample: draw samples from a trained diffusion checkpoint.

    mathml-sample outputs/<date>/<time>/checkpoints/last.ckpt
    mathml-sample CKPT --sampler pf_ode_heun --steps 20 --n 2000 --seed 1
    mathml-sample CKPT --sampler euler_maruyama --steps 1000 --out samples/ --raw-weights

Writes ``samples.pt`` (a tensor (n, *data_shape) in data space) and ``samples.png`` (a scatter plot
for 2-D data, an image grid for images) into ``--out`` (default: ``<run dir>/samples_<sampler>_<steps>_s<seed>``).
The model is rebuilt from the run's saved config (``<run dir>/.hydra/config.yaml``, or ``--config``)
and uses the EMA weights unless ``--raw-weights``. Bad arguments stop with a one-line error and exit
code 2.
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from pathlib import Path

# Sampler functions of mathml.sde.samplers a user may name (the public ones that take (sde, score, x_T)).
SAMPLERS = ("euler_maruyama", "predictor_corrector", "pf_ode_euler", "pf_ode_heun", "pf_ode_dopri5", "ddim",
            "dpm_solver_2m", "dpm_solver_3m", "edm_stochastic", "torchsde_sampler")


class UsageError(Exception):
    """A bad argument; the message is printed on one line and the exit code is 2."""


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors raise ``UsageError`` (one line, exit code 2) instead of printing the usage."""

    def error(self, message: str) -> None:
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="mathml-sample", description="Draw samples from a trained diffusion checkpoint.",
                      epilog="Example: mathml-sample outputs/<date>/<time>/checkpoints/last.ckpt --sampler dpm_solver_2m --steps 20")
    p.add_argument("checkpoint", help="a checkpoint written by mathml-train (e.g. .../checkpoints/last.ckpt)")
    p.add_argument("--sampler", default=None, help=f"one of {', '.join(SAMPLERS)} (default: the run's sampler)")
    p.add_argument("--steps", type=int, default=None, help="solver steps (default: the run's)")
    p.add_argument("--n", type=int, default=1000, help="number of samples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generator (default 0)")
    p.add_argument("--batch-size", type=int, default=4096, help="samples drawn at once (default 4096)")
    p.add_argument("--out", default=None, help="output folder (default: <run dir>/samples_<sampler>_<steps>_s<seed>)")
    add_run_arguments(p)
    return p


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    """The options every checkpoint-reading CLI shares (mathml-sample, mathml-eval)."""
    p.add_argument("--config", default=None, help="the run's config (default: <run dir>/.hydra/config.yaml)")
    p.add_argument("--raw-weights", action="store_true", help="use the raw weights instead of the EMA weights")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def check_run_arguments(a: argparse.Namespace, counts: tuple[str, ...]) -> tuple[Path, Path]:
    """Check the checkpoint, the sampler name, the seed and the ``counts`` (each None or >= 1);
    return (checkpoint, run config). Raises ``UsageError`` with a one-line message."""
    ckpt = Path(a.checkpoint)
    if not ckpt.is_file():
        raise UsageError(f"checkpoint {str(ckpt)!r} does not exist; pass a file such as outputs/<date>/<time>/checkpoints/last.ckpt")
    if a.sampler is not None and a.sampler not in SAMPLERS:
        raise UsageError(f"unknown sampler {a.sampler!r}; choose one of {', '.join(SAMPLERS)}")
    for name in counts:
        v = getattr(a, name)
        if v is not None and v < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be >= 1, got {v}")
    if a.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {a.seed}")
    return ckpt, run_config(ckpt, a.config)


def run_config(ckpt: Path, config: str | None) -> Path:
    """The run's config file: ``config`` if given, else ``<run dir>/.hydra/config.yaml`` beside the checkpoint."""
    path = Path(config) if config else Path(ckpt).resolve().parent.parent / ".hydra" / "config.yaml"
    if not path.is_file():
        raise UsageError(f"config {str(path)!r} does not exist; pass the run's config with --config "
                         f"(mathml-train writes it to <run dir>/.hydra/config.yaml)")
    return path


def load_checkpoint(ckpt: Path, config: Path, device: str):
    """Rebuild the model from the run's config and load the checkpoint's weights (EMA included).

    Returns (cfg, DiffusionModule in eval mode on ``device``); a bad file raises ``UsageError``."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from mathml_recipes.diffusion import DiffusionModule

    cfg = OmegaConf.load(config)
    if "model" not in cfg or "data" not in cfg:
        raise UsageError(f"config {str(config)!r} has no model/data nodes; is it a mathml-train run config?")
    try:
        state = torch.load(ckpt, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as e:  # noqa: BLE001 - any failure to read is the user's file problem
        raise UsageError(f"checkpoint {str(ckpt)!r} could not be read as a Lightning checkpoint "
                         f"({type(e).__name__}: {(str(e).splitlines() or ['empty message'])[0][:150]})") from None
    model = instantiate(cfg.model)
    if not isinstance(model, DiffusionModule):
        raise UsageError(f"the run in {str(config)!r} trained a {type(model).__name__}, not a diffusion model")
    model.load_state_dict(state)
    return cfg, model.to(device).eval()


def main(argv: list[str] | None = None) -> None:
    try:
        a = _parser().parse_args(argv)
        ckpt, config = check_run_arguments(a, ("steps", "n", "batch_size"))
        run(a, ckpt, config)
    except UsageError as e:
        print(f"mathml-sample: error: {e}", file=sys.stderr)
        sys.exit(2)


def build_sampler(cfg, sampler: str | None, steps: int | None):
    """The sampler to use: the run's (``cfg.sampler``) with ``steps`` overridden when given, or the
    named ``mathml.sde`` sampler (one of ``SAMPLERS``) with ``steps`` (default 50).

    Returns (sampler(sde, score, x_T, generator=), its name, steps, score evaluations per batch or None)."""
    from hydra.utils import instantiate

    import mathml.sde as msde

    name = sampler or cfg.sampler._target_.rsplit(".", 1)[1]
    if sampler is None:
        fn_or_partial = instantiate(cfg.sampler, **({"steps": steps} if steps else {}))
        steps = steps or int(cfg.sampler.steps)
    else:
        steps = steps or 50
        fn_or_partial = functools.partial(getattr(msde, sampler), steps=steps)
    fn = fn_or_partial.func if isinstance(fn_or_partial, functools.partial) else fn_or_partial
    options = {k: v for k, v in (fn_or_partial.keywords if isinstance(fn_or_partial, functools.partial) else {}).items()
               if k != "steps"}
    return fn_or_partial, name, steps, msde.nfe(fn, steps, **options)


def run(a: argparse.Namespace, ckpt: Path, config: Path) -> dict[str, str]:
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mathml_recipes.diffusion_callbacks import save_samples

    cfg, model = load_checkpoint(ckpt, config, a.device)
    sampler, name, steps, nfe_per_batch = build_sampler(cfg, a.sampler, a.steps)

    out = Path(a.out) if a.out else ckpt.resolve().parent.parent / f"samples_{name}_{steps}_s{a.seed}"
    out.mkdir(parents=True, exist_ok=True)
    g = torch.Generator(device=a.device).manual_seed(a.seed)
    score = model.score_model if a.raw_weights else model.ema_score
    chunks = [min(a.batch_size, a.n - i) for i in range(0, a.n, a.batch_size)]
    total = None if nfe_per_batch is None else nfe_per_batch * len(chunks)
    xs = []
    with Progress(TextColumn(f"sampling {a.n} with {name}, {steps} steps"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("score evaluations"), TimeElapsedColumn(), disable=a.no_progress,
                  transient=False) as progress:
        task = progress.add_task("sample", total=total)

        def counted(x, t):
            progress.advance(task)
            return score(x, t)

        with torch.no_grad():
            for b in chunks:
                x_T = model.sde.prior_sample((b, *model.data_shape), generator=g, device=a.device)
                x = sampler(model.sde, counted, x_T, generator=g)
                xs.append((x - model.hparams.data_shift) / model.hparams.data_scale)
    x = torch.cat(xs).cpu()
    paths = {"tensor": str(out / "samples.pt"), "picture": str(out / "samples.png")}
    torch.save(x, paths["tensor"])
    save_samples(x if x.dim() == 2 else x[:256], paths["picture"],
                 title=f"{name}, {steps} steps, {'raw' if a.raw_weights else 'EMA'} weights")
    print(f"wrote {paths['tensor']} ({tuple(x.shape)}) and {paths['picture']}")
    return paths


if __name__ == "__main__":
    main()
