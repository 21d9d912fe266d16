"""The fault table (issue 10): inject each fault into a real `mathml-train` run, resume with
`ckpt_path=last` in the same folder, and report the steps lost and whether the final metrics and
weights equal an uninterrupted run's (vae_digits, 4 batches x 3 epochs, CPU, deterministic).

    .venv/bin/python benchmarks/fault_table.py --out benchmarks/results/fault_table.json

The faults and the runs are those of tests/recipes/test_faults.py (tests/recipes/fault_injection.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "recipes"))
import fault_injection as fi  # noqa: E402

# (fault, description, the global step at which it strikes)
FAULTS = [
    ("kill", "kill -9 mid-epoch (after step 6 of 12)", 6),
    ("kill_in_checkpoint_write", "kill -9 half-way through writing the step-8 checkpoint", 8),
    ("kill_in_validation", "kill -9 during validation after step 8", 8),
    ("sigterm", "SIGTERM during step 6", 6),
    ("sigusr1", "SIGUSR1 during step 5", 5),
    ("sigterm_after_batch_end", "SIGTERM just after step 6 ended", 6),
    ("truncate", "newest checkpoint (step 8) truncated to half", 8),
]


def _same(run: Path, ref) -> bool:
    metrics, weights, step = fi.final_state(run)
    return (metrics == ref[0] and step == ref[2] and weights.keys() == ref[1].keys()
            and all(torch.equal(weights[k], ref[1][k]) for k in weights))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "fault_table.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        r = fi.cli(tmp / "reference")
        if r.returncode != 0:
            raise SystemExit(r.stderr[-3000:])
        ref = fi.final_state(tmp / "reference")
        for kind, what, at_step in FAULTS:
            t0 = time.perf_counter()
            out = fi.scenario(kind, at_step, tmp / kind, truncate_newest=kind == "truncate")
            ok = out["resume"].returncode == 0
            rows.append({
                "fault": what, "kind": kind, "fault_step": at_step, "fault_exit_status": out["fault"].returncode,
                "resumed_from": Path(out["resumed_from"]).name if out["resumed_from"] else None,
                "resume_step": out["start_step"],
                "steps_lost": None if out["start_step"] is None else at_step - out["start_step"],
                "final_metrics_and_weights_equal": bool(ok and _same(tmp / kind, ref)),
                "seconds": round(time.perf_counter() - t0, 1),
            })
            print(rows[-1], flush=True)
        # The non-finite loss: a stop as specified, then the skip policy.
        stop = fi.cli(tmp / "nan_stop", "+callbacks.fault._target_=fault_injection.InjectFault",
                      "+callbacks.fault.kind=nan_loss", "+callbacks.fault.at_step=6")
        kept = torch.load(tmp / "nan_stop" / "checkpoints" / "last.ckpt", weights_only=True)
        rows.append({"fault": "NaN loss at step 6 (action=stop)", "kind": "nan_stop", "fault_step": 6,
                     "fault_exit_status": stop.returncode, "resumed_from": None,
                     "resume_step": int(kept["global_step"]), "steps_lost": 6 - int(kept["global_step"]),
                     "final_metrics_and_weights_equal": None,
                     "stopped_naming_the_step": "non-finite training loss" in stop.stderr and "at step 6" in stop.stderr})
        skip = fi.cli(tmp / "nan_skip", "+callbacks.fault._target_=fault_injection.InjectFault",
                      "+callbacks.fault.kind=nan_loss", "+callbacks.fault.at_step=6", "callbacks.nonfinite_loss.action=skip")
        rows.append({"fault": "NaN loss at step 6 (action=skip)", "kind": "nan_skip", "fault_step": 6,
                     "fault_exit_status": skip.returncode, "resumed_from": None, "resume_step": None,
                     "steps_lost": 1, "final_metrics_and_weights_equal": False,
                     "final_step": fi.final_state(tmp / "nan_skip")[2] if skip.returncode == 0 else None})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": rows, "reference_final_step": ref[2]}, indent=2))
    print("| fault | exit status | resumed from (step) | steps lost | final metrics & weights equal |")
    print("|---|---|---|---|---|")
    for row in rows:
        src = f"{row['resumed_from']} ({row['resume_step']})" if row["resumed_from"] else "–"
        eq = {True: "yes", False: "no", None: "–"}[row["final_metrics_and_weights_equal"]]
        print(f"| {row['fault']} | {row['fault_exit_status']} | {src} | {row['steps_lost']} | {eq} |")


if __name__ == "__main__":
    main()
