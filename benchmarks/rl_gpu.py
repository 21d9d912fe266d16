"""mathml.rl planners on one device (CUDA by default): gridworlds, random sparse MDPs, a batch.

Called by scripts/gpu_check.sh; needs only torch (+ numpy): no gymnasium, hydra or pymdptoolbox.
Every figure is a guaranteed ||V - V*||_inf <= 1e-6 (the certified bound is reported), gamma 0.99.

    python benchmarks/rl_gpu.py --device cuda --out rl_gpu.json
    python benchmarks/rl_gpu.py --device cpu --grid 30 --random 2000 --batch 8 --out /tmp/x.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rl_frozenlake import frozenlake_batch  # noqa: E402

from mathml.rl import (  # noqa: E402
    TabularMDP,
    modified_policy_iteration,
    policy_iteration,
    random_sparse_mdp,
    slippery_gridworld,
    value_iteration,
)

TOL, GAMMA = 1e-6, 0.99


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, device):
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
    _sync(device)
    t0 = time.perf_counter()
    res = fn()
    _sync(device)
    wall = time.perf_counter() - t0
    peak = torch.cuda.max_memory_allocated(device) - base if device.type == "cuda" else None
    return res, wall, peak


def solve_cases(device: torch.device, grids: list[int], randoms: list[int]) -> list[dict]:
    rows = []
    cases = [("gridworld", L) for L in grids] + [("random", S) for S in randoms]
    for family, n in cases:
        t0 = time.perf_counter()
        if family == "gridworld":
            mdp = slippery_gridworld(n, gamma=GAMMA, device=device)
        else:
            mdp = random_sparse_mdp(n, 4, 10, gamma=GAMMA, generator=torch.Generator(device).manual_seed(0))
        _sync(device)
        build = time.perf_counter() - t0
        for name, fn in (
            ("modified_policy_iteration(sweeps=50)", lambda: modified_policy_iteration(mdp, tol=TOL, sweeps=50)),
            ("value_iteration", lambda: value_iteration(mdp, tol=TOL)),
        ):
            fn() if n <= 1000 else None  # warm-up (kernels, cuSPARSE handles) on small cases only
            res, wall, peak = _timed(fn, device)
            row = {"family": family, "size": n, "S": mdp.num_states, "algorithm": name, "wall_s": wall,
                   "iterations": res.iterations, "bound": res.max_error_bound, "build_s": build,
                   "P_bytes": mdp.nbytes_P, "peak_extra_bytes": peak}
            print(json.dumps(row), flush=True)
            rows.append(row)
        del mdp
    return rows


def batch_case(device: torch.device, B: int) -> dict:
    slips = torch.linspace(0.0, 2 / 3, B, dtype=torch.float64)
    P, R = frozenlake_batch(slips)
    P, R = P.to(device), R.to(device)
    out = {"B": B, "S": 64, "A": 4}
    for name, solver in (("policy_iteration", policy_iteration), ("value_iteration", value_iteration)):
        solver(TabularMDP(P[:2], R[:2], GAMMA), tol=TOL)  # warm-up
        together, t_batch, _ = _timed(lambda: solver(TabularMDP(P, R, GAMMA), tol=TOL), device)
        singles, t_loop, _ = _timed(
            lambda: [solver(TabularMDP(P[b], R[b], GAMMA), tol=TOL).V for b in range(B)], device
        )
        diff = float((together.V - torch.stack(singles)).abs().max())
        out[name] = {"batched_s": t_batch, "one_by_one_s": t_loop, "speedup": t_loop / t_batch,
                     "max_abs_diff": diff, "max_bound": together.max_error_bound}
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", required=True)
    ap.add_argument("--grid", type=int, nargs="*", default=[100, 316, 1000])
    ap.add_argument("--random", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    result = {"device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
              "torch": torch.__version__, "tol": TOL, "gamma": GAMMA}
    t0 = time.perf_counter()
    result["runs"] = solve_cases(device, args.grid, args.random)
    result["frozenlake8x8_batch"] = batch_case(device, args.batch)
    result["total_s"] = time.perf_counter() - t0
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", args.out, f"in {result['total_s']:.1f} s")


if __name__ == "__main__":
    main()
