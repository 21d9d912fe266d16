"""Langevin acceptance figures (issue 9): throughput against a plain NumPy loop and torchsde, and
MALA vs ULA bias across step sizes.

Throughput: chains × steps per second of the same overdamped Langevin dynamics
x ← x + h ∇log π(x) + √(2h) ξ on π = N(0, diag(s²)) (s² from 0.5 to 2 across coordinates), at 1,024 and
65,536 chains in 2 and 64 dimensions: ``mathml.sde.ula``; the same loop in NumPy
(``numpy.random.Generator.standard_normal``); ``torchsde.sdeint(method="euler")`` on the SDE
dx = ∇log π dt + √2 dw with dt = h (its own Brownian bookkeeping). Rounds alternate the three and
the median of 3 is reported. torch uses the threads given by --threads (default 1).

Bias: the variance of π = N(0, 1) estimated from 4,000 chains after burn-in, for h from 0.05 to 1.5:
ULA settles at 1/(1 − h/2) (closed form), MALA at 1 (exact).

    .venv/bin/python benchmarks/langevin.py            # ~2 min; writes results/langevin.json and langevin_bias.png
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torchsde

from mathml.sde import mala, ula

HERE = Path(__file__).parent


def _precision(d: int, dtype) -> torch.Tensor:
    return 1.0 / torch.linspace(0.5, 2.0, d, dtype=dtype)


def _ours(chains, d, steps, seed):
    prec = _precision(d, torch.float32)
    x0 = torch.zeros(chains, d)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    ula(lambda x: -x * prec, x0, step_size=0.05, n_steps=steps, generator=g)
    return time.perf_counter() - t0


def _numpy(chains, d, steps, seed):
    prec = _precision(d, torch.float32).numpy()
    rng = np.random.default_rng(seed)
    x = np.zeros((chains, d), dtype=np.float32)
    h, scale = np.float32(0.05), np.float32(math.sqrt(0.1))
    t0 = time.perf_counter()
    for _ in range(steps):
        x = x + h * (-x * prec) + scale * rng.standard_normal((chains, d), dtype=np.float32)
    return time.perf_counter() - t0


class _LangevinSDE(torch.nn.Module):
    noise_type, sde_type = "diagonal", "ito"

    def __init__(self, prec):
        super().__init__()
        self.prec = prec

    def f(self, t, y):
        return -y * self.prec

    def g(self, t, y):
        return torch.full_like(y, math.sqrt(2.0))


def _torchsde(chains, d, steps, seed):
    sde = _LangevinSDE(_precision(d, torch.float32))
    x0 = torch.zeros(chains, d)
    h = 0.05
    ts = torch.tensor([0.0, steps * h])
    t0 = time.perf_counter()
    bm = torchsde.BrownianInterval(t0=0.0, t1=steps * h, size=(chains, d), entropy=seed)
    torchsde.sdeint(sde, x0, ts, bm=bm, method="euler", dt=h)
    return time.perf_counter() - t0


def throughput(rounds: int) -> list[dict]:
    rows = []
    for chains in (1_024, 65_536):
        for d in (2, 64):
            steps = 200 if chains * d <= 65_536 else 40
            sde_steps = max(10, steps // 4)
            times = {"mathml.ula": [], "numpy": [], "torchsde euler": []}
            for r in range(rounds):
                times["mathml.ula"].append(steps * chains / _ours(chains, d, steps, r))
                times["numpy"].append(steps * chains / _numpy(chains, d, steps, r))
                times["torchsde euler"].append(sde_steps * chains / _torchsde(chains, d, sde_steps, r))
            row = {"chains": chains, "dim": d, "steps": steps}
            row.update({k: statistics.median(v) for k, v in times.items()})
            row["ratio_vs_numpy"] = row["mathml.ula"] / row["numpy"]
            row["ratio_vs_torchsde"] = row["mathml.ula"] / row["torchsde euler"]
            rows.append(row)
            print(row, flush=True)
    return rows


def bias(chains: int = 4_000) -> list[dict]:
    rows = []
    for h in (0.05, 0.1, 0.2, 0.5, 1.0, 1.5):
        g = torch.Generator().manual_seed(int(h * 1000))
        x0 = torch.randn(chains, 1, generator=g, dtype=torch.float64)
        steps = max(200, int(20 / h))
        u = ula(lambda x: -x, x0, step_size=h, n_steps=steps, generator=g, burn_in=steps // 2, thin=5)
        m = mala(lambda x: -0.5 * x.pow(2).sum(1), x0, step_size=h, n_steps=steps, generator=g,
                 burn_in=steps // 2, thin=5)
        v_ula, v_mala = u.chain.var().item(), m.chain.var().item()
        # SE of a variance from n draws is v√(2/n); the kept draws are autocorrelated, so the SE is
        # computed from chain-level variances (one per chain, independent): sd over chains / √chains.
        se_ula = u.chain.var(dim=1).std().item() / math.sqrt(chains)
        se_mala = m.chain.var(dim=1).std().item() / math.sqrt(chains)
        rows.append({"h": h, "ula_var": v_ula, "ula_se": se_ula, "ula_closed_form": 1 / (1 - h / 2),
                     "mala_var": v_mala, "mala_se": se_mala, "mala_acceptance": m.acceptance_rate.mean().item()})
        print(rows[-1], flush=True)
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = [r["h"] for r in rows]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.errorbar(h, [r["ula_var"] - 1 for r in rows], yerr=[2 * r["ula_se"] for r in rows], fmt="o-", label="ULA")
    ax.plot(h, [r["ula_closed_form"] - 1 for r in rows], "k--", lw=1, label="ULA closed form 1/(1−h/2) − 1")
    ax.errorbar(h, [r["mala_var"] - 1 for r in rows], yerr=[2 * r["mala_se"] for r in rows], fmt="s-", label="MALA")
    ax.axhline(0, color="grey", lw=0.5)
    ax.set_xlabel("step size h")
    ax.set_ylabel("bias of Var x (target N(0, 1))")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = {"threads": args.threads, "throughput": throughput(args.rounds), "bias": bias()}
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "langevin.json").write_text(json.dumps(out, indent=2))
    plot(out["bias"], HERE / "results" / "langevin_bias.png")
    print("wrote", HERE / "results" / "langevin.json")


if __name__ == "__main__":
    main()
