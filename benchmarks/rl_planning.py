"""mathml.rl planners vs pymdptoolbox, side by side in one run (CPU).

Families: (a) slippery L x L gridworlds, L = 100, 316, 1000; (b) random sparse MDPs, S = 1e4,
1e5, 1e6, A = 4, 10 successors. gamma = 0.99, target: a GUARANTEED ||V - V*||_inf <= 1e-6.
Plus a batch of 256 FrozenLake-8x8 variants solved at once vs one by one.

Every measurement runs in a fresh subprocess (time cap enforced by killing it). Memory is the
peak resident-set increase during the solve: VmHWM from /proc/self/status after resetting it
(``echo 5 > /proc/self/clear_refs``) once the MDP is built — it sees torch's and numpy's
allocations alike. Achieved errors are measured against a reference V* from mathml's modified
policy iteration at a certified 1e-9.

    .venv/bin/python benchmarks/rl_planning.py --cap 180 --out benchmarks/results/rl_planning.json
    (--quick: L = 100 and S = 1e4 only; --cap: seconds per run, default 180; --repeats: rounds
    for S <= 1e5, alternating the tools' order, median reported, default 3)

The JSON's ``summary`` has, per MDP, mathml's fastest planner with a certified bound <= 1e-6,
pymdptoolbox's fastest, their ratio, and ``peak_over_P = (bytes of P + peak extra) / bytes of P``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import subprocess
import sys
import time

TOL = 1e-6
GAMMA = 0.99


def _status(key: str) -> int:
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1)) * 1024


def _build(family: str, size: int):
    import torch

    from mathml.rl import random_sparse_mdp, slippery_gridworld

    if family == "gridworld":
        return slippery_gridworld(size, gamma=GAMMA)
    return random_sparse_mdp(size, 4, 10, gamma=GAMMA, generator=torch.Generator().manual_seed(0))


def _scipy_P(mdp):
    import scipy.sparse as sp

    S, A = mdp.num_states, mdp.num_actions
    P = mdp.P
    big = sp.csr_matrix((P.values().numpy(), P.col_indices().numpy(), P.crow_indices().numpy()), shape=(S * A, S))
    return [big[a::A].tocsr() for a in range(A)]


def worker(spec: dict) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(spec["threads"])
    t0 = time.perf_counter()
    mdp = _build(spec["family"], spec["size"])
    out = {"build_s": time.perf_counter() - t0, "S": mdp.num_states, "P_bytes_mathml": mdp.nbytes_P}
    tool = spec["tool"]
    if tool.startswith("mdptoolbox"):
        import mdptoolbox.mdp as mdpt

        Ps = _scipy_P(mdp)
        R = mdp.R.numpy()
        out["P_bytes_scipy"] = sum(m.data.nbytes + m.indices.nbytes + m.indptr.nbytes for m in Ps)
        mdpt._util.check = lambda P, R: None  # its checker densifies (S, S) for sparse P
        del mdp
    gc.collect()
    open("/proc/self/clear_refs", "w").write("5")
    rss0 = _status("VmRSS")
    t0 = time.perf_counter()
    if tool == "mathml_mpi":
        from mathml.rl import modified_policy_iteration

        res = modified_policy_iteration(mdp, tol=TOL, sweeps=spec.get("sweeps", 50))
        V, out["iterations"], out["bound"] = res.V, res.iterations, res.max_error_bound
    elif tool == "mathml_vi":
        from mathml.rl import value_iteration

        res = value_iteration(mdp, tol=TOL)
        V, out["iterations"], out["bound"] = res.V, res.iterations, res.max_error_bound
    elif tool == "mathml_pi":
        from mathml.rl import policy_iteration

        res = policy_iteration(mdp, tol=TOL)
        V, out["iterations"], out["bound"] = res.V, res.iterations, res.max_error_bound
    elif tool == "mdptoolbox_vi":

        class VI(mdpt.ValueIteration):  # skip the constructor's iteration bound (timed apart)
            def _boundIter(self, epsilon):
                self.max_iter = 1_000_000

        vi = VI(Ps, R, GAMMA, epsilon=TOL)
        vi.run()
        V, out["iterations"] = torch.tensor(vi.V), vi.iter
    elif tool == "mdptoolbox_pi":
        pi = mdpt.PolicyIteration(Ps, R, GAMMA, max_iter=10_000)
        pi.run()
        V, out["iterations"] = torch.tensor(pi.V), pi.iter
    elif tool == "mdptoolbox_bound":  # the constructor's bound computation alone
        mdpt.ValueIteration(Ps, R, GAMMA, epsilon=TOL)
        V = None
    out["wall_s"] = time.perf_counter() - t0
    out["peak_extra_bytes"] = _status("VmHWM") - rss0
    if V is not None and spec.get("check", True):
        from mathml.rl import modified_policy_iteration

        ref = modified_policy_iteration(_build(spec["family"], spec["size"]), tol=1e-9, sweeps=50).V
        out["achieved_error"] = float((V.to(ref.dtype) - ref).abs().max())
    return out


def run(spec: dict, cap: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", json.dumps(spec)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=cap)
    except subprocess.TimeoutExpired:
        return {**spec, "status": f"did not finish in {cap:.0f} s"}
    if p.returncode != 0:
        err = p.stderr.strip().splitlines()
        return {**spec, "status": "failed: " + (err[-1] if err else f"rc={p.returncode}")}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    return {**spec, "status": "ok", **res, "process_s": time.perf_counter() - t0}


def _median_row(runs: list[dict]) -> dict:
    """One row per tool: the median wall time of its rounds, the largest peak memory."""
    ok = [r for r in runs if r["status"] == "ok"]
    if not ok:
        return runs[0]
    ok.sort(key=lambda r: r["wall_s"])
    row = dict(ok[len(ok) // 2])
    row["wall_s_rounds"] = [r["wall_s"] for r in runs if r["status"] == "ok"]
    row["peak_extra_bytes"] = max(r["peak_extra_bytes"] for r in ok)
    return row


def summarize(rows: list[dict]) -> list[dict]:
    """Per MDP: mathml's fastest planner reaching the guaranteed 1e-6 vs pymdptoolbox's fastest."""
    out = []
    for key in dict.fromkeys((r["family"], r["size"]) for r in rows):
        here = [r for r in rows if (r["family"], r["size"]) == key and r["status"] == "ok"]
        ours = [r for r in here if r["tool"].startswith("mathml") and r.get("bound", 1.0) <= TOL]
        peer = [r for r in here if r["tool"].startswith("mdptoolbox")]
        if not ours:
            continue
        best = min(ours, key=lambda r: r["wall_s"])
        P = best["P_bytes_mathml"]
        row = {"family": key[0], "size": key[1], "S": best["S"], "best_mathml": best["tool"],
               "mathml_s": best["wall_s"], "bound": best["bound"], "P_bytes": P,
               "peak_extra_bytes": best["peak_extra_bytes"],
               "peak_over_P": (P + best["peak_extra_bytes"]) / P}
        if peer:
            fastest = min(peer, key=lambda r: r["wall_s"])
            row.update(peer_fastest=fastest["tool"], peer_s=fastest["wall_s"],
                       speedup=fastest["wall_s"] / best["wall_s"],
                       peer_error=fastest.get("achieved_error"))
        out.append(row)
    return out


def batch_frozenlake(threads: int) -> dict:
    import torch

    sys.path.insert(0, os.path.dirname(__file__))
    from rl_frozenlake import frozenlake_batch

    from mathml.rl import TabularMDP, policy_iteration, value_iteration

    torch.set_num_threads(threads)
    slips = torch.linspace(0.0, 2 / 3, 256, dtype=torch.float64)
    P, R = frozenlake_batch(slips)
    out = {"B": 256, "S": 64, "A": 4}
    for name, solver in (("policy_iteration", policy_iteration), ("value_iteration", value_iteration)):
        batch = TabularMDP(P, R, GAMMA)
        t0 = time.perf_counter()
        together = solver(batch, tol=TOL)
        t_batch = time.perf_counter() - t0
        t0 = time.perf_counter()
        singles = [solver(TabularMDP(P[b], R[b], GAMMA), tol=TOL).V for b in range(256)]
        t_loop = time.perf_counter() - t0
        diff = float((together.V - torch.stack(singles)).abs().max())
        out[name] = {"batched_s": t_batch, "one_by_one_s": t_loop, "speedup": t_loop / t_batch, "max_abs_diff": diff}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/rl_planning.json")
    ap.add_argument("--cap", type=float, default=180.0, help="seconds per run (killed after)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (pymdptoolbox is single-threaded)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="rounds for S <= 1e5 (median reported)")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    sizes = {"gridworld": [100, 316, 1000], "random": [10_000, 100_000, 1_000_000]}
    if args.quick:
        sizes = {"gridworld": [100], "random": [10_000]}
    rows = []
    for family, ns in sizes.items():
        for n in ns:
            S = n * n if family == "gridworld" else n
            tools = ["mathml_mpi", "mathml_vi", "mdptoolbox_vi"]
            # Side by side: small sizes are repeated, alternating the order each round (the
            # machine is shared and noisy); the median wall time is reported.
            rounds = args.repeats if S <= 100_000 else 1
            runs: dict[str, list[dict]] = {t: [] for t in tools}
            for k in range(rounds):
                for tool in tools if k % 2 == 0 else tools[::-1]:
                    r = run({"family": family, "size": n, "tool": tool, "threads": args.threads}, args.cap)
                    print(json.dumps(r), flush=True)
                    runs[tool].append(r)
            for tool in tools:
                rows.append(_median_row(runs[tool]))
            if S <= 10_000:
                r = run({"family": family, "size": n, "tool": "mdptoolbox_pi", "threads": args.threads}, args.cap)
                print(json.dumps(r), flush=True)
                rows.append(r)
            else:
                rows.append({"family": family, "size": n, "tool": "mdptoolbox_pi",
                             "status": f"not run: its evaluation builds a dense S x S P_pi ({S * S * 8 / 2**30:.0f} GiB)"})
    bound = run({"family": "gridworld", "size": 100, "tool": "mdptoolbox_bound", "threads": 1}, args.cap)
    print(json.dumps(bound), flush=True)
    batch = batch_frozenlake(args.threads)
    print(json.dumps(batch), flush=True)
    import platform

    import torch

    result = {"tol": TOL, "gamma": GAMMA, "threads": args.threads, "cap_s": args.cap,
              "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
              "torch": torch.__version__, "summary": summarize(rows), "runs": rows, "mdptoolbox_vi_constructor_bound_L100": bound,
              "frozenlake8x8_batch256": batch}
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
