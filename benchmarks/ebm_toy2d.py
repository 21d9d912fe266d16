"""Acceptance figures of `ebm_toy2d` (issue 9): contrastive divergence and sliced score matching of the
same energy network, side by side, against the floor of exact draws.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ebm_toy2d.py RUN_CD RUN_SSM

where RUN_CD and RUN_SSM are run folders of
    mathml-train experiment=ebm_toy2d trainer.max_epochs=5 hydra.run.dir=RUN_CD
    mathml-train experiment=ebm_toy2d ebm_objective=ssm trainer.max_epochs=5 hydra.run.dir=RUN_SSM
It reads their metrics.json (test/sliced_wasserstein, test/mmd2, test/ksd: 5,000 ULA samples from
uniform noise vs the 5,000 held-out test points; KSD against the exact mixture score) and computes the
same metrics for 5,000 exact draws of the mixture (the sampling floor), then writes
benchmarks/results/ebm_toy2d.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from mathml.metrics import kernel_stein_discrepancy, mmd_squared, sliced_wasserstein
from mathml_recipes.diffusion_data import FreshToy2DDataModule


def main() -> None:
    runs = {"contrastive divergence": Path(sys.argv[1]), "sliced score matching": Path(sys.argv[2])}
    dm = FreshToy2DDataModule(seed=0)
    dm.setup()
    test = dm.datasets["test"].tensors[0]
    exact = dm.mixture.sample(test.shape[0], generator=torch.Generator().manual_seed(12345)).float()
    g = torch.Generator().manual_seed(0)
    floor = {
        "test/sliced_wasserstein": float(sliced_wasserstein(exact, test, n_projections=1000, generator=g)),
        "test/mmd2": float(mmd_squared(exact, test)),
        "test/ksd": float(kernel_stein_discrepancy(exact.double(), dm.mixture.score(exact.double()))),
    }
    out = {"exact draws (floor)": floor}
    for name, run in runs.items():
        out[name] = json.loads((run / "metrics.json").read_text())["metrics"]
    for k, v in out.items():
        print(k, {m: round(x, 4) for m, x in v.items()})
    path = Path(__file__).parent / "results" / "ebm_toy2d.json"
    path.write_text(json.dumps(out, indent=2))
    print("wrote", path)


if __name__ == "__main__":
    main()
