"""Certified bound vs actual error of mathml.rl's planners, against brute force, across dtypes and gamma.

For each dtype (float32, float64) and gamma (0.99, 0.999, 0.9999): ``--mdps`` random dense MDPs
with S in {3, 4, 5, 6} states and A in {2, 3} actions, rows that sum to one only within what
validation accepts (a random per-row factor 1 +- 0.9 atol: atol = 1e-6 in float64, 1e-4 in
float32; the constructor renormalises), rewards U[0, 1) or U[-0.5, 0.5). Truth: brute force over
all A^S deterministic policies, ``max_pi (I - gamma P_pi)^{-1} r_pi`` of the stored arrays read
exactly (float64 solves refined with np.longdouble residuals; ``mathml.rl.exhaustive``).

Each planner runs at ``tol = max(1e-6, 8 x rounding floor)`` (the floor ``c u (||v*|| + ||R||)``
of the dtype; a smaller tol raises a ValueError). Reported per cell: the largest certified bound,
the largest actual error ``||V - V*||_inf``, the worst ratio actual / bound (must be <= 1), the
same for the greedy policy (``policy_error_bound`` vs ``||V^pi - V*||_inf``), and the naive span
bound ``c sp(T V - V) / 2`` computed in the dtype at the returned V (what the certificate was
before issue 7: no row defect, no rounding) with its worst actual / naive ratio.

    .venv/bin/python benchmarks/rl_certificates.py --out benchmarks/results/rl_certificates.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np
import torch

from mathml.rl import (
    TabularMDP,
    gauss_seidel_value_iteration,
    modified_policy_iteration,
    policy_iteration,
    q_backup,
    q_value_iteration,
    value_iteration,
)
from mathml.rl.certificate import rounding_floor
from mathml.rl.exhaustive import exhaustive_solution

ATOL = {torch.float64: 1e-6, torch.float32: 1e-4}
SOLVERS = {
    "VI": value_iteration,
    "Q-VI": q_value_iteration,
    "MPI(50)": modified_policy_iteration,
    "PI": policy_iteration,
    "GS-VI": gauss_seidel_value_iteration,  # gamma = 0.99 only: its span contracts at rate gamma
}


def near_stochastic_mdp(S, A, gamma, dtype, generator, defect, shift):
    w = -torch.log1p(-torch.rand(A, S, S, generator=generator, dtype=torch.float64))
    scale = 1 + defect * (2 * torch.rand(A, S, 1, generator=generator, dtype=torch.float64) - 1)
    R = torch.rand(S, A, generator=generator, dtype=torch.float64) + shift
    return TabularMDP((w / w.sum(-1, keepdim=True) * scale).to(dtype), R.to(dtype), gamma)


def naive_span_bound(mdp, V):
    d = q_backup(mdp, V).amax(-1) - V
    g = mdp.gamma
    return float(g / (1 - g) * (d.amax() - d.amin()) / 2)


def cell(dtype, gamma, n_mdps, seed):
    g = torch.Generator().manual_seed(seed)
    rows = {name: {"bound": [], "actual": [], "policy_bound": [], "policy_actual": [], "naive": [], "tol": [],
                   "converged": 0, "runs": 0} for name in SOLVERS}
    for k in range(n_mdps):
        S, A = (3, 4, 5, 6)[k % 4], (2, 3)[(k // 4) % 2]
        defect = 0.9 * ATOL[dtype] * float(torch.rand(1, generator=g))
        mdp = near_stochastic_mdp(S, A, gamma, dtype, g, defect, (0.0, -0.5)[k % 2])
        ex = exhaustive_solution(mdp)
        v_star = torch.as_tensor(ex.V_star.astype(np.float64))
        tol = max(1e-6, 8 * float(rounding_floor(mdp, v_star, torch.zeros_like(v_star))))
        for name, solver in SOLVERS.items():
            if name == "GS-VI" and gamma > 0.99:
                continue
            res = solver(mdp, tol=tol)
            r = rows[name]
            r["runs"] += 1
            r["converged"] += int(res.converged)
            r["tol"].append(tol)
            r["bound"].append(res.max_error_bound)
            r["actual"].append(float(np.abs(res.V.double().numpy().astype(np.longdouble) - ex.V_star).max()))
            r["policy_bound"].append(res.max_policy_error_bound)
            r["policy_actual"].append(float(np.abs(ex.value_of(res.policy) - ex.V_star).max()))
            r["naive"].append(naive_span_bound(mdp, res.V))
    out = []
    for name, r in rows.items():
        if not r["runs"]:
            continue
        a, b = np.array(r["actual"]), np.array(r["bound"])
        pa, pb = np.array(r["policy_actual"]), np.array(r["policy_bound"])
        naive = np.array(r["naive"])
        with np.errstate(divide="ignore", invalid="ignore"):
            naive_ratio = np.where(naive > 0, a / naive, np.where(a > 0, np.inf, 0.0))
        out.append({
            "dtype": str(dtype).replace("torch.", ""), "gamma": gamma, "solver": name, "runs": r["runs"],
            "converged": r["converged"], "tol_max": max(r["tol"]), "bound_max": float(b.max()),
            "actual_max": float(a.max()), "worst_ratio": float((a / b).max()),
            "policy_bound_max": float(pb.max()), "policy_actual_max": float(pa.max()),
            "policy_worst_ratio": float((pa / pb).max()),
            "naive_min": float(naive.min()), "naive_worst_ratio": float(naive_ratio.max()),
        })
    return out


def issue_cases():
    """The cases of issue 7 (random dense MDPs of the stated sizes): the tol asked there, then a
    reachable one. Truth for 50 states: policy iteration on the exact float64 copy of the arrays
    (its own certified bound is reported as ``reference_bound``)."""
    cases = [
        ("5 states, 3 actions, rows 1 ± 5e-7, float64, γ = 0.99", 5, 0.99, torch.float64, 5e-7, "VI", 1e-6),
        ("5 states, 3 actions, rows 1 ± 5e-7, float64, γ = 0.99", 5, 0.99, torch.float64, 5e-7, "MPI(50)", 1e-6),
        ("50 states, float32, γ = 0.99", 50, 0.99, torch.float32, 0.0, "VI", 1e-4),
        ("50 states, float32, γ = 0.9999", 50, 0.9999, torch.float32, 0.0, "VI", 1e-4),
        ("50 states, float64, γ = 0.999999", 50, 0.999999, torch.float64, 0.0, "MPI(50)", 1e-8),
        ("50 states, float32, γ = 0.999", 50, 0.999, torch.float32, 0.0, "PI", 1e-4),
    ]
    out = []
    for k, (label, S, gamma, dtype, defect, name, tol) in enumerate(cases):
        mdp = near_stochastic_mdp(S, 3, gamma, dtype, torch.Generator().manual_seed(100 + k), defect, 0.0)
        if S <= 6:
            ex = exhaustive_solution(mdp)
            v_star, ref_bound = torch.as_tensor(ex.V_star.astype(np.float64)), 10 * ex.correction
        else:
            twin = mdp.to(dtype=torch.float64)
            v0 = torch.zeros(S, dtype=torch.float64)
            ref = policy_iteration(twin, tol=8 * float(rounding_floor(twin, v0, q_backup(twin, v0).amax(-1))))
            v_star, ref_bound = ref.V, ref.max_error_bound
        row = {"case": label, "planner": name, "tol_asked": tol, "reference_bound": ref_bound}
        try:
            SOLVERS[name](mdp, tol=tol)
            row["at_tol_asked"] = "ran"
        except ValueError as e:
            row["at_tol_asked"] = "ValueError: " + str(e).split(": ", 1)[1].split(" (")[0]
        tol_ok = max(tol, 8 * float(rounding_floor(mdp, v_star, torch.zeros_like(v_star))))
        res = SOLVERS[name](mdp, tol=tol_ok)
        row.update(tol_used=tol_ok, bound=res.max_error_bound, converged=res.converged,
                   actual=float((res.V.double() - v_star).abs().max()), naive=naive_span_bound(mdp, res.V))
        out.append(row)
    return out


def markdown_cases(rows):
    lines = ["| issue-7 case | planner | at the tol asked | tol used | certified bound | actual error "
             "(± reference bound) | naive span bound |", "|" + "---|" * 7]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['planner']} | tol={r['tol_asked']:g}: {r['at_tol_asked']} | {r['tol_used']:.2g} | "
            f"{r['bound']:.3g} | {r['actual']:.3g} (± {r['reference_bound']:.1g}) | {r['naive']:.3g} |"
        )
    return "\n".join(lines)


def markdown(rows):
    head = ("| dtype | γ | planner | runs (converged) | tol | max certified bound | max actual error | "
            "worst actual/bound | max policy_error_bound (max actual loss) | old naive span bound: worst actual/naive |")
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        nr = r["naive_worst_ratio"]
        lines.append(
            f"| {r['dtype']} | {r['gamma']} | {r['solver']} | {r['runs']} ({r['converged']}) | {r['tol_max']:.2g} | "
            f"{r['bound_max']:.3g} | {r['actual_max']:.3g} | {r['worst_ratio']:.3f} | {r['policy_bound_max']:.2g} ({r['policy_actual_max']:.2g}) | "
            f"{'∞ (naive = 0)' if nr == float('inf') else f'{nr:.3g}'} |"
        )
    worst = max(r["worst_ratio"] for r in rows)
    lines.append(f"\nWorst actual/bound over all {sum(r['runs'] for r in rows)} runs: **{worst:.3f}** (must be ≤ 1).")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/rl_certificates.json")
    ap.add_argument("--mdps", type=int, default=24, help="random MDPs per (dtype, gamma) cell")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    rows = []
    for dtype in (torch.float32, torch.float64):
        for i, gamma in enumerate((0.99, 0.999, 0.9999)):
            rows += cell(dtype, gamma, args.mdps, args.seed + i)
    cases = issue_cases()
    table = markdown(rows) + "\n\n" + markdown_cases(cases)
    print(table)
    result = {"rows": rows, "issue_cases": cases, "markdown": table, "mdps_per_cell": args.mdps, "seed": args.seed,
              "wall_s": time.perf_counter() - t0, "torch": torch.__version__,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
