"""Linear VAE trained by the recipe vs the probabilistic-PCA maximum likelihood on digits.

Trains experiment linear_vae_digits, then computes the trained model's EXACT marginal
log-likelihood on the training split, log N(x; b, W Wᵀ + σ² I) from its decoder weights, and the
closed-form PPCA optimum for the same data and latent size (Tipping & Bishop 1999, eq. 7-8).
Reports the gap in nats per image (>= 0 up to optimisation error; the ELBO optimum of a linear VAE
is the PPCA optimum, Lucas et al. 2019).

    .venv/bin/python benchmarks/linear_vae_ppca.py
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from _compose import compose_train
from mathml.distributions import PPCA, ppca_maximum_likelihood


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("overrides", nargs="*", help="extra config overrides")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "linear_vae_ppca.json"))
    args = ap.parse_args()
    torch.set_num_threads(2)
    from hydra.utils import instantiate

    from mathml_scripts.train import train

    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_train(tmp, "experiment=linear_vae_digits", "callbacks.progress_bar=null",
                            "test_ckpt=last", *args.overrides)
        t0 = time.perf_counter()
        train(cfg)
        wall = time.perf_counter() - t0
        ckpt = torch.load(Path(tmp) / "checkpoints" / "last.ckpt", weights_only=True)
        model = instantiate(cfg.model)
        model.load_state_dict(ckpt["state_dict"])
        dm = instantiate(cfg.data)
        dm.setup("fit")
        x = dm.datasets["train"].tensors[0].flatten(1).double()
    linear = model.decoder.net[0]
    sigma = model.decoder.likelihood.sigma.detach().double().item()
    trained = PPCA(linear.weight.detach().double(), linear.bias.detach().double(), sigma**2)
    q = linear.weight.shape[1]
    best = ppca_maximum_likelihood(x, q)
    ll_trained = trained.log_prob(x).mean().item()
    ll_best = best.log_prob(x).mean().item()
    out = {"latent_dim": q, "n_train": len(x), "epochs": cfg.trainer.max_epochs, "wall_s": wall,
           "loglik_trained_nats_per_image": ll_trained, "loglik_ppca_ml_nats_per_image": ll_best,
           "gap_nats_per_image": ll_best - ll_trained}
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
