"""Fokker–Planck solver acceptance figures (issue 9): L1 error against the exact OU marginal vs grid
size (measured order) and time per implicit-Euler step, in 1-D and 2-D; density-evolution frames.

1-D: dX = −X dt + dW from N(1.5, 0.3²) on [−4, 4], t = 1, Δt = 2h² (so the time error is O(h²) too).
2-D: dX = −X dt + dW in each coordinate from N((1, −0.5), 0.4² I) on [−3.5, 3.5]², t = 0.5,
Δt = 2h². L1 = Σ|p − p_exact(centre)| h^d. Time per step: wall time of the solve / steps
(time-homogeneous: one sparse LU factorisation reused), one thread, median of 3.

    .venv/bin/python benchmarks/fokker_planck.py      # ~1 min; results/fokker_planck.json and fokker_planck_frames.png
"""

from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from mathml.sde import FokkerPlanckGrid, OrnsteinUhlenbeckSDE, solve_fokker_planck

HERE = Path(__file__).parent
OU = OrnsteinUhlenbeckSDE(theta=1.0, sigma=1.0)


def _gauss(x, mean, var):
    return torch.exp(-0.5 * (x - mean) ** 2 / var) / math.sqrt(2 * math.pi * var)


def _drift(x, t):
    return -x


def _diff(x, t):
    return torch.ones_like(x)


def _exact(c, m0, s0, t):
    a, s = OU.alpha_sigma(torch.tensor(t, dtype=torch.float64))
    var = float(a**2 * s0**2 + s**2)
    out = torch.ones(c.shape[0], dtype=torch.float64)
    for i in range(c.shape[1]):
        out = out * _gauss(c[:, i], float(a) * m0[i], var)
    return out


def run(lows, highs, cells, m0, s0, t):
    grid = FokkerPlanckGrid(lows, highs, cells)
    c = grid.centres()
    p0 = torch.ones(c.shape[0], dtype=torch.float64)
    for i in range(c.shape[1]):
        p0 = p0 * _gauss(c[:, i], m0[i], s0**2)
    p0 = p0.reshape(cells)
    h = grid.widths[0]
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        sol = solve_fokker_planck(grid, _drift, _diff, p0, [t], dt=2 * h * h, time_homogeneous=True)
        times.append((time.perf_counter() - t0) / sol.steps)
    l1 = float((sol.density[-1].reshape(-1) - _exact(c, m0, s0, t)).abs().sum() * grid.cell_volume)
    mass_err = abs(grid.mass(sol.density[-1]).item() - grid.mass(p0).item())
    return {"cells": list(cells), "h": h, "steps": sol.steps, "l1": l1, "time_per_step_s": statistics.median(times),
            "mass_error": mass_err, "min_density": float(sol.density.min())}


def frames(path: Path) -> None:
    """Density evolution of a double well dX = (X − X³) dt + 0.8 dW from N(−1, 0.2²), as PNG frames."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = FokkerPlanckGrid((-2.5,), (2.5,), (400,))
    x = grid.axes()[0]
    times = [0.1, 0.5, 1.0, 2.0, 4.0, 8.0]
    sol = solve_fokker_planck(grid, lambda x, t: x - x**3, lambda x, t: torch.full_like(x, 0.8),
                              _gauss(x, -1.0, 0.04), times, dt=0.01, time_homogeneous=True)
    fig, ax = plt.subplots(1, len(times), figsize=(2.3 * len(times), 2.2), sharey=True)
    for a, t, p in zip(ax, times, sol.density):
        a.plot(x, p)
        a.set_title(f"t = {t}")
        a.set_xticks([-2, 0, 2])
    fig.suptitle("Fokker–Planck: double well dX = (X − X³)dt + 0.8 dW", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    torch.set_num_threads(1)
    one_d = [run((-4.0,), (4.0,), (n,), (1.5,), 0.3, 1.0) for n in (50, 100, 200, 400, 800)]
    two_d = [run((-3.5, -3.5), (3.5, 3.5), (n, n), (1.0, -0.5), 0.4, 0.5) for n in (20, 40, 80)]
    out = {}
    for name, rows in (("1d", one_d), ("2d", two_d)):
        hs = [r["h"] for r in rows]
        errs = [r["l1"] for r in rows]
        out[name] = {"rows": rows, "order": float(np.polyfit(np.log(hs), np.log(errs), 1)[0])}
        for r in rows:
            print(name, r, flush=True)
        print(name, "measured order", out[name]["order"])
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "fokker_planck.json").write_text(json.dumps(out, indent=2))
    frames(HERE / "results" / "fokker_planck_frames.png")


if __name__ == "__main__":
    main()
