"""Signal-to-noise ratio of IWAE's gradients: standard vs doubly reparameterised (DReG).

The Gaussian model of the experiment of Rainforth et al. 2018 ("Tighter variational bounds are not
necessarily better"): D = 20,

    p(z) = N(μ, I),   p(x|z) = N(z, I),   q(z|x) = N(A x + b, (2/3) I),

N data points drawn from the model with μ* ~ N(0, I); parameters set near the optimum (μ at the
sample mean, A = I/2, b = μ/2, the posterior mean) and perturbed by N(0, 0.01²), as in their
experiment. For each k and estimator, R independent gradient estimates of the summed bound
Σ_n L_k(x_n) are taken side by side (every repeat holds its own copy of the parameters, so one
backward pass gives R independent gradients), and

    SNR = |mean| / std over the R repeats           (the definition of Rainforth et al. 2018),

per parameter, averaged over the encoder parameters φ = (A, b) and over the prior mean θ = μ.
A gradient whose mean is 0 shows SNR ≈ √(2/π)/√R from noise alone (``snr_noise_floor``).
IWAE's encoder SNR falls like O(1/√k) (their Theorem 1); DReG's (Tucker et al. 2019, eq. 8) does
not; the θ gradient is the same estimator for both (identical draws give identical values).

    .venv/bin/python benchmarks/iwae_dreg_snr.py            # writes results/iwae_dreg_snr.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch
from torch.distributions import Independent, Normal

from mathml.objectives import IWAE

F64 = torch.float64


def gradients(x: torch.Tensor, params: dict[str, torch.Tensor], R: int, k: int, estimator: str, seed: int):
    """Per-repeat gradients (R, ·) of Σ_n L_k(x_n) for θ = μ and φ = (A, b)."""
    N, D = x.shape
    mu = params["mu"].expand(R, D).clone().requires_grad_()
    A = params["A"].expand(R, D, D).clone().requires_grad_()
    b = params["b"].expand(R, D).clone().requires_grad_()
    loc = (torch.einsum("rij,nj->rni", A, x) + b[:, None, :]).reshape(R * N, D)  # q(z|x_n) per repeat r
    q = Independent(Normal(loc, (2.0 / 3.0) ** 0.5), 1)
    prior = Independent(Normal(mu.repeat_interleave(N, 0), 1.0), 1)
    decoder = lambda z: Independent(Normal(z, 1.0), 1)  # noqa: E731
    terms = IWAE(k, estimator=estimator)(x.repeat(R, 1), q, decoder, prior,
                                         generator=torch.Generator().manual_seed(seed))
    terms["iwae"].sum().backward()
    return {"encoder": torch.cat([A.grad.reshape(R, -1), b.grad], 1), "prior_mean": mu.grad}


def snr(g: torch.Tensor) -> float:
    return (g.mean(0).abs() / g.std(0)).mean().item()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, nargs="+", default=[5, 50])
    ap.add_argument("--repeats", type=int, default=1000)
    ap.add_argument("--data", type=int, default=16, help="N data points")
    ap.add_argument("--dim", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "iwae_dreg_snr.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)

    g = torch.Generator().manual_seed(args.seed)
    D, N = args.dim, args.data
    mu_star = torch.randn(D, dtype=F64, generator=g)
    x = mu_star + (2.0**0.5) * torch.randn(N, D, dtype=F64, generator=g)  # x ~ N(μ*, 2I), the marginal
    mu = x.mean(0)
    perturb = lambda t: t + 0.01 * torch.randn(t.shape, dtype=F64, generator=g)  # noqa: E731
    params = {"mu": perturb(mu), "A": perturb(0.5 * torch.eye(D, dtype=F64)), "b": perturb(0.5 * mu)}

    rows = []
    for k in args.k:
        for estimator in ("standard", "dreg"):
            t0 = time.perf_counter()
            grads = gradients(x, params, args.repeats, k, estimator, seed=args.seed + 1 + k)
            rows.append({"k": k, "estimator": estimator, "encoder_snr": snr(grads["encoder"]),
                         "prior_mean_snr": snr(grads["prior_mean"]), "seconds": time.perf_counter() - t0})
            print(f"k={k:4d} {estimator:8s} encoder SNR {rows[-1]['encoder_snr']:.4f}   "
                  f"prior-mean SNR {rows[-1]['prior_mean_snr']:.4f}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "model": "Rainforth et al. 2018 Gaussian: p(z)=N(mu,I), p(x|z)=N(z,I), q(z|x)=N(Ax+b, 2/3 I)",
        "dim": D, "data": N, "repeats": args.repeats, "seed": args.seed, "dtype": "float64",
        "snr": "mean over parameters of |mean| / std over repeats of the gradient of sum_n L_k(x_n)",
        "snr_noise_floor": (2 / math.pi) ** 0.5 / args.repeats**0.5,
        "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
