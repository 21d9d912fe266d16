"""Cost of the certified stopping rule: mathml.rl now vs mathml.rl at an older commit, side by side.

The old package is taken from git (``git archive <rev> mathml``), renamed ``mathml_old`` and
imported next to the current one, so both run in one process on the same MDP objects: slippery
gridworld L = 316 (S ~ 1e5) and a random sparse MDP (S = 1e5, A = 4, 10 successors), gamma =
0.99, tol = 1e-6, modified policy iteration and value iteration. Rounds alternate the order;
reported: min and median CPU time (``time.process_time``, less sensitive than wall time to a
shared, loaded machine) and their new/old ratios.

    .venv/bin/python benchmarks/rl_overhead.py --rev 099e22b --threads 1 --out benchmarks/results/rl_overhead_1thread.json
    .venv/bin/python benchmarks/rl_overhead.py --threads 2 --families random --out benchmarks/results/rl_overhead_2threads.json
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

import torch


def import_old(rev: str, root: str):
    """``mathml.rl`` of commit ``rev`` as the module ``mathml_old.rl``."""
    tmp = tempfile.mkdtemp(prefix="mathml_old_")
    data = subprocess.run(["git", "archive", rev, "mathml"], cwd=root, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp, filter="data")
    os.rename(os.path.join(tmp, "mathml"), os.path.join(tmp, "mathml_old"))
    for folder, _, files in os.walk(os.path.join(tmp, "mathml_old")):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                text = open(path).read()
                text = re.sub(r"\bmathml\.", "mathml_old.", text).replace("from mathml import", "from mathml_old import")
                open(path, "w").write(text)
    sys.path.insert(0, tmp)
    import mathml_old.rl as old

    return old


def build(lib, family: str):
    if family == "gridworld":
        return lib.slippery_gridworld(316, gamma=0.99)
    return lib.random_sparse_mdp(100_000, 4, 10, gamma=0.99, generator=torch.Generator().manual_seed(0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rev", default="099e22b", help="the older commit (default: before issue 7's RL changes)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--families", nargs="+", default=["gridworld", "random"], choices=["gridworld", "random"])
    ap.add_argument("--out", default="benchmarks/results/rl_overhead_1thread.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    import mathml.rl as new

    old = import_old(args.rev, root)
    rows = []
    for family in args.families:
        mdps = {"old": build(old, family), "new": build(new, family)}
        for tool in ("modified_policy_iteration", "value_iteration"):
            times: dict[str, list[float]] = {"old": [], "new": []}
            info = {}
            for k in range(args.rounds):
                for v in ("old", "new") if k % 2 == 0 else ("new", "old"):
                    lib = old if v == "old" else new
                    gc.collect()
                    t = time.process_time()
                    res = getattr(lib, tool)(mdps[v], tol=1e-6)
                    times[v].append(time.process_time() - t)
                    info[v] = {"iterations": res.iterations, "bound": res.max_error_bound}
            row = {"family": family, "S": mdps["new"].num_states, "tool": tool, "threads": args.threads}
            for v in ("old", "new"):
                row[v] = {"cpu_min_s": min(times[v]), "cpu_median_s": statistics.median(times[v]), **info[v]}
            row["new_over_old_min"] = row["new"]["cpu_min_s"] / row["old"]["cpu_min_s"]
            row["new_over_old_median"] = row["new"]["cpu_median_s"] / row["old"]["cpu_median_s"]
            print(json.dumps(row), flush=True)
            rows.append(row)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"rev": args.rev, "rounds": args.rounds, "rows": rows, "torch": torch.__version__,
                   "load_average": os.getloadavg()}, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
