"""Error and cost of ``mathml.sde.log_likelihood`` on a 10-D Gaussian mixture with the exact score.

The target (fixed seeds, float64): K = 5 components in D = 10 with weights (0.1, 0.15, 0.2, 0.25,
0.3), means μ_k ~ 3·N(0, I), covariances Σ_k = Q_k diag(λ_k) Q_kᵀ with Q_k a random orthogonal
matrix (QR of a Gaussian matrix) and eigenvalues λ_k log-uniform in [0.05, 1]. 256 test points
drawn from the mixture. The score is the mixture's exact diffused score and the prior its exact
marginal at T (``GaussianMixture.marginal(sde, T)``), so the only error is the ODE solver's: it is
measured against the exact log p_{t_min}(x) (``GaussianMixture.marginal(sde, t_min).log_prob``).
SDEs: VP (β 0.1–20, t_min = 1e-5, as Song et al. 2021 for likelihoods) and VE (σ 0.01–50,
t_min = 1e-5). Exact trace (10 backward passes per evaluation), so no Hutchinson noise.

"naive": torchdiffeq's dopri5 on Song et al.'s augmented ODE in t, written here directly on
``probability_flow`` (no mathml likelihood code), at rtol = atol = 1e-5.
"ours": ``log_likelihood`` at several tolerances and methods, with torchdiffeq's default error norm
(an RMS over the whole batch) and with its default per-sample norm (every point's own error within
tolerance). Errors are reported as the largest and the mean absolute error over the 256 points.

    .venv/bin/python benchmarks/likelihood.py            # writes benchmarks/results/likelihood.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
import torchdiffeq

from mathml.distributions.gaussian_mixture import GaussianMixture
from mathml.sde import VESDE, VPSDE, probability_flow
from mathml.sde.likelihood import log_likelihood

DT = torch.float64


def mixture(d: int = 10, k: int = 5, seed: int = 0) -> GaussianMixture:
    g = torch.Generator().manual_seed(seed)
    weights = torch.tensor([0.1, 0.15, 0.2, 0.25, 0.3], dtype=DT)[:k]
    means = 3.0 * torch.randn(k, d, generator=g, dtype=DT)
    q, _ = torch.linalg.qr(torch.randn(k, d, d, generator=g, dtype=DT))
    lam = torch.exp(torch.empty(k, d, dtype=DT).uniform_(torch.log(torch.tensor(0.05)).item(), 0.0, generator=g))
    cov = q @ torch.diag_embed(lam) @ q.transpose(-1, -2)
    return GaussianMixture(weights, means, 0.5 * (cov + cov.transpose(-1, -2)))


def naive(sde, gm, x, rtol, atol):
    """Plain torchdiffeq dopri5 on (x, ∫∇·v dt) in t from t_min to T with the exact divergence."""
    flow = probability_flow(sde, gm.score_fn(sde))
    nfe = [0]

    def rhs(t, state):
        nfe[0] += 1
        with torch.enable_grad():
            y = state[0].detach().requires_grad_(True)
            v = flow(t, y)
            div = sum(torch.autograd.grad(v[:, i].sum(), y, retain_graph=True)[0][:, i] for i in range(y.shape[1]))
        return v.detach(), div.detach()

    ts = torch.tensor([sde.t_min, sde.T], dtype=DT)
    ys, ds = torchdiffeq.odeint(rhs, (x, torch.zeros(x.shape[0], dtype=DT)), ts, rtol=rtol, atol=atol, method="dopri5")
    return gm.marginal(sde, sde.T).log_prob(ys[-1]) + ds[-1], nfe[0]


def record(name, sde_name, lp, exact, nfe, seconds, **kw):
    err = (lp - exact).abs()
    row = {"variant": name, "sde": sde_name, "max_abs_err_nats": err.max().item(), "mean_abs_err_nats": err.mean().item(),
           "nfe": nfe, "seconds": round(seconds, 3), **kw}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--tols", type=float, nargs="+", default=[1e-4, 1e-5, 1e-6, 1e-7])
    ap.add_argument("--methods", nargs="+", default=["dopri5", "dopri8"])
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "likelihood.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    gm = mixture()
    x = gm.sample(args.n, generator=torch.Generator().manual_seed(1))
    rows = []
    for sde_name, sde in (("VP", VPSDE(t_min=1e-5)), ("VE", VESDE(sigma_min=0.01, sigma_max=50.0, t_min=1e-5))):
        exact = gm.marginal(sde, sde.t_min).log_prob(x)
        prior = gm.marginal(sde, sde.T).log_prob
        t0 = time.perf_counter()
        lp, nfe = naive(sde, gm, x, 1e-5, 1e-5)
        rows.append(record("naive torchdiffeq dopri5 (t)", sde_name, lp, exact, nfe, time.perf_counter() - t0,
                           method="dopri5", rtol=1e-5, atol=1e-5, error_norm="torchdiffeq default (RMS over batch)"))
        for method in args.methods:
            for per_sample in (False, True):
                for tol in args.tols:
                    t0 = time.perf_counter()
                    r = log_likelihood(sde, gm.score_fn(sde), x, exact_trace=True, prior_log_prob=prior,
                                       rtol=tol, atol=tol, method=method, per_sample_error=per_sample)
                    rows.append(record("log_likelihood", sde_name, r.log_prob, exact, r.nfe, time.perf_counter() - t0,
                                       method=method, rtol=tol, atol=tol,
                                       error_norm="per-sample max" if per_sample else "torchdiffeq default (RMS over batch)"))
    out = {
        "target": "10-D mixture, K=5, weights (0.1,0.15,0.2,0.25,0.3), means 3 N(0,I) (seed 0), "
                  "covariances Q diag(lam) Q^T with lam log-uniform [0.05,1]; 256 points (seed 1); float64; exact trace",
        "sdes": {"VP": "beta 0.1-20, t_min 1e-5", "VE": "sigma 0.01-50, t_min 1e-5"},
        "n_points": args.n,
        "torch": torch.__version__, "torchdiffeq": torchdiffeq.__version__, "python": platform.python_version(),
        "threads": 1,
        "rows": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print("wrote", args.out)


if __name__ == "__main__":
    main()
