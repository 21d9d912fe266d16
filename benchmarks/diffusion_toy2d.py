"""Acceptance figures of `diffusion_toy2d` (issue 6): a model trained for at most 5 CPU minutes,
against the exact score of the same 8-Gaussian ring.

    .venv/bin/python benchmarks/diffusion_toy2d.py --steps 12000 --out benchmarks/results/diffusion_toy2d.json

Reports (one thread, CPU):
- train_cpu_s: CPU seconds of `trainer.fit` (process time, measured by a callback);
- sliced Wasserstein SW₂ between n model samples and the n test points, next to the SW₂ of n
  samples drawn by the SAME sampler driven by the EXACT mixture score (``GaussianMixture.score_fn``),
  against the same test points with the same projection directions; goal: ratio ≤ 2;
- the test NLL of the model (probability-flow ODE, exact trace) minus the exact NLL on the same
  test points: a paired difference whose mean estimates KL(p ‖ p_θ), with its standard error;
  goal: ≤ 0.02 nats.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from lightning import Callback

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._compose import compose_train  # noqa: E402


class CPUTimer(Callback):
    """Process CPU seconds spent in fit (training and its validation epochs)."""

    seconds = 0.0

    def on_fit_start(self, trainer, pl_module) -> None:
        CPUTimer._t0 = time.process_time()

    def on_fit_end(self, trainer, pl_module) -> None:
        CPUTimer.seconds = time.process_time() - CPUTimer._t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/diffusion_toy2d.json")
    p.add_argument("--run-dir", default="outputs/bench_diffusion_toy2d")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides, e.g. model.network.width=128")
    a = p.parse_args()
    torch.set_num_threads(1)

    from hydra.utils import instantiate

    from mathml.metrics import mmd_squared, sliced_wasserstein
    from mathml_scripts.train import train

    overrides = ["experiment=diffusion_toy2d", f"seed={a.seed}", f"trainer.max_steps={a.steps}", "trainer.max_epochs=-1",
                 "callbacks.diffusion_samples.every_n_epochs=1000", "+callbacks.cpu_timer._target_=__main__.CPUTimer",
                 "callbacks.progress_bar=null", *a.overrides]
    cfg = compose_train(a.run_dir, *overrides)
    t0 = time.process_time()
    metrics = train(cfg)
    total_cpu = time.process_time() - t0

    # The exact-score reference: the same sampler, n and test points, the exact mixture score.
    dm = instantiate(cfg.data)
    dm.setup("test")
    x_test = dm.datasets["test"].tensors[0]
    sde = instantiate(cfg.sde)
    sampler = instantiate(cfg.sampler)
    score = dm.mixture.score_fn(sde)
    g = torch.Generator().manual_seed(12345)
    x_T = sde.prior_sample((len(x_test), 2), generator=g, dtype=torch.float64)
    exact_samples = sampler(sde, score, x_T, generator=g).to(x_test.dtype)
    gd = torch.Generator().manual_seed(cfg.seed)  # the recipe's projection generator
    sw_exact = sliced_wasserstein(exact_samples, x_test, n_projections=cfg.model.sw_projections, generator=gd).item()
    # The sampling-noise floor: fresh exact draws against the test points.
    fresh = dm.mixture.sample(len(x_test), generator=torch.Generator().manual_seed(777)).to(x_test.dtype)
    gd = torch.Generator().manual_seed(cfg.seed)
    sw_floor = sliced_wasserstein(fresh, x_test, n_projections=cfg.model.sw_projections, generator=gd).item()

    out = {
        "command": "python benchmarks/diffusion_toy2d.py " + " ".join(sys.argv[1:]),
        "steps": a.steps, "seed": a.seed, "overrides": overrides,
        "train_cpu_s": CPUTimer.seconds, "total_cpu_s": total_cpu, "threads": torch.get_num_threads(),
        "n_test": len(x_test),
        "sampler": dict(cfg.sampler),
        "sw_model": metrics["test/sliced_wasserstein"], "sw_exact_score": sw_exact, "sw_exact_draws": sw_floor,
        "sw_ratio": metrics["test/sliced_wasserstein"] / sw_exact,
        "mmd2_model": metrics["test/mmd2"], "mmd2_exact_score": mmd_squared(exact_samples, x_test).item(),
        "nll_model": metrics["test/nll_nats"], "nll_exact": metrics["test/nll_exact_nats"],
        "nll_gap": metrics["test/nll_gap_nats"], "nll_gap_se": metrics["test/nll_gap_se"],
    }
    print(json.dumps(out, indent=2))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
