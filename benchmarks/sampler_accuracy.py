"""Few-step sampler accuracy: mathml's samplers vs diffusers' and k-diffusion's, side by side in
one run (diffusers' UniPCMultistepScheduler added as the peer of mathml's UniPC-type
``exponential_adams``), on the exact score of the issue-6 target (``sampler_common``: 8-component 2-D Gaussian
mixture, means on a radius-4 circle, std 0.3, under ``VPSDE()``), at 10, 20 and 50 score
evaluations (NFE). CPU, float64 (diffusers' schedulers keep their σ̃ grid and step in float32).

Every sampler solves the same problem: start at t = T = 1 from x_T ~ N(0, I) (the same draws for
all) and stop at t_end = ``VPSDE().t_min`` = 1e-3, no denoising step (except two diffusers rows
that can only end at t = 0 — EulerAncestralDiscreteScheduler, and DPM-Solver's SDE variant with its
default end — whose target is then the data's own spread 0.3). The peers' own times are
derived from their noise levels (``benchmarks/peers``); diffusers' float32 ᾱ puts its start and
end ~3e-8 and ~2e-7 away from 1 and 1e-3, and its reference is built for exactly those times.

Deterministic samplers: RMS Euclidean distance to the probability-flow ODE solution from the same
x_T between the same times (torchdiffeq dopri5, rtol = atol = 1e-10, float64; its own error is
checked against rtol = atol = 1e-12 on a subset and reported). Stochastic samplers: relative error
of the within-mode spread vs its exact value at the sampler's t_end, with its standard error.

mathml's samplers run with their default schedules and coefficients (chosen by the samplers'
author on other targets; none is tuned here). The peers run with their library defaults plus the
alternative noise schedules each library offers (diffusers: Karras and Lu σ̃; k-diffusion:
Karras ρ = 7, exponential, VP), and the best peer at each budget is taken over all of them —
a selection on this target that can only favour the peers.

    make bench-env   # once: .venv-bench with diffusers and k-diffusion (requirements-bench.txt)
    .venv-bench/bin/python benchmarks/sampler_accuracy.py --out benchmarks/results/sampler_accuracy.json

(--n-det: starting points for the deterministic metric, default 2000; --n-stoch: samples for
the spread, default 30000; --nfe: budgets, default 10 20 50; --markdown: print RESULTS tables.)
One thread (torch.set_num_threads(1)).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peers import diffusers_vp, kdiffusion_vp  # noqa: E402
from peers.common import CountingScore  # noqa: E402
from sampler_common import (exact_spread, problem, reference_solution, rms_distance,  # noqa: E402
                            within_mode_spread)

from mathml.sde import samplers as S  # noqa: E402

# Karras et al. 2022, Table 5 (ImageNet-64, their stochastic sampler): a published setting, not tuned here.
EDM_CHURN = dict(s_churn=40.0, s_tmin=0.05, s_tmax=50.0, s_noise=1.003)


# --------------------------------------------------------------------------------------------
# The contenders: name -> run(nfe, score, x_T, seed) -> (x at t_end, t_start, t_end)
# --------------------------------------------------------------------------------------------
def ours(fn, **options):
    def run(nfe, sde, score, x_T, seed):
        per = S.nfe(fn, 1, **options)
        g = torch.Generator().manual_seed(seed)
        return fn(sde, score, x_T, steps=max(1, nfe // per), generator=g, **options), float(sde.T), float(sde.t_min)
    return run


def diffusers_run(name, eta=None, **config):
    def run(nfe, sde, score, x_T, seed):
        sch = diffusers_vp.make_scheduler(name, sde, **config)
        g = torch.Generator().manual_seed(seed)
        stochastic = eta is not None or name == "euler_ancestral" or config.get("algorithm_type", "").startswith("sde")
        x, t0, t1 = diffusers_vp.run_scheduler(sch, score, sde, x_T.float(), nfe, eta=eta,
                                               generator=g if stochastic else None)
        return x.double(), t0, t1
    return run


def kdiffusion_run(name, kind, per_step=1, **kwargs):
    def run(nfe, sde, score, x_T, seed):
        sigmas = kdiffusion_vp.sigma_grid(sde, max(1, nfe // per_step), kind, sde.t_min)
        torch.manual_seed(seed)  # k-diffusion draws its noise (randn_like, Brownian-tree seed) globally
        return kdiffusion_vp.run_sampler(name, sde, score, x_T, sigmas, **kwargs)
    return run


DETERMINISTIC = {
    # side, label -> runner
    ("mathml", "exponential_adams (warped log-SNR grid)"): ours(S.exponential_adams),
    ("mathml", "dpm_solver_3m (log-SNR grid)"): ours(S.dpm_solver_3m),
    ("mathml", "dpm_solver_2m (log-SNR grid)"): ours(S.dpm_solver_2m),
    ("mathml", "ddim (log-SNR grid)"): ours(S.ddim),
    ("mathml", "pf_ode_heun (Karras ρ=7)"): ours(S.pf_ode_heun),
    ("mathml", "pf_ode_euler (uniform t)"): ours(S.pf_ode_euler),
    ("diffusers", "DPMSolverMultistepScheduler"): diffusers_run("dpmsolver_multistep"),
    ("diffusers", "DPMSolverMultistepScheduler (Karras σ)"): diffusers_run("dpmsolver_multistep", use_karras_sigmas=True),
    ("diffusers", "DPMSolverMultistepScheduler (Lu λ)"): diffusers_run("dpmsolver_multistep", use_lu_lambdas=True),
    ("diffusers", "UniPCMultistepScheduler"): diffusers_run("unipc_multistep"),
    ("diffusers", "UniPCMultistepScheduler (order 3)"): diffusers_run("unipc_multistep", solver_order=3),
    ("diffusers", "DDIMScheduler"): diffusers_run("ddim"),
    ("diffusers", "EulerDiscreteScheduler"): diffusers_run("euler"),
    ("diffusers", "EulerDiscreteScheduler (Karras σ)"): diffusers_run("euler", use_karras_sigmas=True),
}
for _kind in ("karras", "exponential", "vp"):
    DETERMINISTIC[("k-diffusion", f"sample_dpmpp_2m ({_kind})")] = kdiffusion_run("sample_dpmpp_2m", _kind)
    DETERMINISTIC[("k-diffusion", f"sample_heun ({_kind})")] = kdiffusion_run("sample_heun", _kind, per_step=2)
    DETERMINISTIC[("k-diffusion", f"sample_euler ({_kind})")] = kdiffusion_run("sample_euler", _kind)

STOCHASTIC = {
    ("mathml", "dpm_solver_sde (order 3, log-SNR grid)"): ours(S.dpm_solver_sde),
    ("mathml", "euler_maruyama (uniform t)"): ours(S.euler_maruyama),
    ("mathml", "predictor_corrector (1 corrector, snr 0.16)"): ours(S.predictor_corrector),
    ("mathml", "ddim η=1 (log-SNR grid)"): ours(S.ddim, eta=1.0),
    ("mathml", "edm_stochastic (Karras ρ=7, EDM churn)"): ours(S.edm_stochastic, **EDM_CHURN),
    ("diffusers", "DDIMScheduler η=1"): diffusers_run("ddim", eta=1.0),
    ("diffusers", "DPMSolverMultistepScheduler sde-dpmsolver++"): diffusers_run("dpmsolver_multistep", algorithm_type="sde-dpmsolver++"),
    # its library default end (σ̃ = 0, t = 0: the last step returns x̂₀ and is first order); with the
    # sigma_min end above and >= 15 steps diffusers takes a second-order stochastic last step
    ("diffusers", "DPMSolverMultistepScheduler sde-dpmsolver++ (ends at t = 0)"): diffusers_run(
        "dpmsolver_multistep", algorithm_type="sde-dpmsolver++", final_sigmas_type="zero"),
    ("diffusers", "EulerAncestralDiscreteScheduler"): diffusers_run("euler_ancestral"),
    ("k-diffusion", "sample_euler_ancestral (karras)"): kdiffusion_run("sample_euler_ancestral", "karras"),
    ("k-diffusion", "sample_dpmpp_2m_sde (karras)"): kdiffusion_run("sample_dpmpp_2m_sde", "karras"),
    ("k-diffusion", "sample_dpmpp_2m_sde (exponential)"): kdiffusion_run("sample_dpmpp_2m_sde", "exponential"),
    ("k-diffusion", "sample_heun (karras, EDM churn)"): kdiffusion_run("sample_heun", "karras", per_step=2, **EDM_CHURN),
}


# The same method on the same grid in two libraries: they must agree to rounding (a check of the
# adapters and of the exact-time mapping). diffusers' DDIM and Euler are both Euler in (x̃, σ̃) on
# the same trailing grid (in float32).
CROSS_CHECKS = [
    (("mathml", "pf_ode_heun (Karras ρ=7)"), ("k-diffusion", "sample_heun (karras)")),
    (("mathml", "ddim (log-SNR grid)"), ("k-diffusion", "sample_euler (exponential)")),
    (("diffusers", "DDIMScheduler"), ("diffusers", "EulerDiscreteScheduler")),
]


# --------------------------------------------------------------------------------------------
def accuracy(nfes, n_det, n_stoch, seed, only=None):
    sde, gmm, score = problem()
    x_T = torch.randn(n_det, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    refs: dict[tuple[float, float], torch.Tensor] = {}
    ref_info = []

    def reference(t0, t1):
        if (t0, t1) not in refs:
            tic = time.perf_counter()
            refs[(t0, t1)], calls = reference_solution(sde, score, x_T, t0, t1)
            ref_info.append(dict(t_start=t0, t_end=t1, nfe=calls, seconds=round(time.perf_counter() - tic, 2)))
        return refs[(t0, t1)]

    # the reference's own error: rtol = atol = 1e-10 vs 1e-12 on the first 200 starts
    sub = x_T[:200]
    a, _ = reference_solution(sde, score, sub, 1.0, sde.t_min)
    b, calls12 = reference_solution(sde, score, sub, 1.0, sde.t_min, rtol=1e-12, atol=1e-12)
    ref_check = dict(rms_1e10_vs_1e12=rms_distance(a, b), max_abs=float((a - b).abs().max()), nfe_1e12=calls12, n=200)
    print("reference check", ref_check, flush=True)

    det, outs = [], {}
    for (side, label), run in DETERMINISTIC.items():
        if only and side not in only:
            continue
        for nfe in nfes:
            cs = CountingScore(score)
            tic = time.perf_counter()
            x, t0, t1 = run(nfe, sde, cs, x_T, seed)
            sec = time.perf_counter() - tic
            err = rms_distance(x, reference(t0, t1))
            e = (x.double() - reference(t0, t1)).norm(dim=1)
            # the RMS over these n_det starts estimates the RMS over x_T ~ N(0, I); its standard error
            # by the delta method: SE(mean ‖e‖²) / (2 RMS)
            se = float(e.pow(2).std()) / math.sqrt(len(e)) / (2 * err) if err > 0 else 0.0
            row = dict(side=side, sampler=label, nfe_budget=nfe, nfe=cs.calls, t_start=t0, t_end=t1, rms=err,
                       rms_se_over_starts=se, median=float(e.median()), p99=float(torch.quantile(e, 0.99)), seconds=round(sec, 3))
            det.append(row)
            outs[(side, label, nfe)] = x.double()
            print(json.dumps(row), flush=True)
    cross = []
    for a, b in CROSS_CHECKS:
        for nfe in nfes:
            if a + (nfe,) in outs and b + (nfe,) in outs:
                d = (outs[a + (nfe,)] - outs[b + (nfe,)]).abs().max()
                cross.append(dict(a=" ".join(a), b=" ".join(b), nfe=nfe, max_abs_difference=float(d)))
                print(json.dumps(cross[-1]), flush=True)

    x_T_s = torch.randn(n_stoch, 2, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    exact_cache: dict[float, float] = {}
    sto = []
    for (side, label), run in STOCHASTIC.items():
        if only and side not in only:
            continue
        for nfe in nfes:
            cs = CountingScore(score)
            tic = time.perf_counter()
            x, t0, t1 = run(nfe, sde, cs, x_T_s, seed + 2)
            sec = time.perf_counter() - tic
            if t1 not in exact_cache:
                exact_cache[t1] = exact_spread(gmm, sde, t1)
            s_true = exact_cache[t1]
            s, se, per_mode = within_mode_spread(x, gmm, sde, t1)
            row = dict(side=side, sampler=label, nfe_budget=nfe, nfe=cs.calls, t_start=t0, t_end=t1,
                       spread=s, spread_se=se, spread_exact=s_true, rel_error=abs(s / s_true - 1.0),
                       rel_error_se=se / s_true, signed_rel_error=s / s_true - 1.0,
                       per_mode_rel_error_max=max(abs(v / s_true - 1.0) for v in per_mode), seconds=round(sec, 3))
            sto.append(row)
            print(json.dumps(row), flush=True)
    return dict(reference_check=ref_check, references=ref_info, deterministic=det, stochastic=sto, cross_checks=cross)


def summary(rows, key, nfes):
    out = []
    for nfe in nfes:
        r = [x for x in rows if x["nfe_budget"] == nfe and x["nfe"] <= nfe]
        best = {}
        for side in ("mathml", "diffusers", "k-diffusion"):
            cand = [x for x in r if x["side"] == side]
            if cand:
                b = min(cand, key=lambda x: x[key])
                best[side] = dict(sampler=b["sampler"], value=b[key])
        peers = [best[s] for s in ("diffusers", "k-diffusion") if s in best]
        line = dict(nfe=nfe, best=best)
        if "mathml" in best and peers:
            bp = min(peers, key=lambda x: x["value"])
            line["best_peer"] = bp
            line["mathml_over_best_peer"] = best["mathml"]["value"] / bp["value"]
        out.append(line)
    return out


def markdown(res, nfes) -> str:
    lines = []

    def table(rows, key, fmt, title, extra=None):
        lines.append(f"{title}\n")
        lines.append("| side | sampler | " + " | ".join(f"{n} NFE" for n in nfes) + " |")
        lines.append("|---|---|" + "---|" * len(nfes))
        labels = []
        for x in rows:
            if (x["side"], x["sampler"]) not in labels:
                labels.append((x["side"], x["sampler"]))
        best = {}
        for nfe in nfes:
            for side in ("mathml", "peer"):
                cand = [x for x in rows if x["nfe_budget"] == nfe and (x["side"] == "mathml") == (side == "mathml")]
                if cand:
                    best[(side, nfe)] = min(x[key] for x in cand)
        for side, label in labels:
            cells = []
            for nfe in nfes:
                x = next((x for x in rows if x["side"] == side and x["sampler"] == label and x["nfe_budget"] == nfe), None)
                if x is None:
                    cells.append("—")
                    continue
                v = fmt(x)
                if x["nfe"] != nfe:
                    v += f" ({x['nfe']} NFE)"
                grp = "mathml" if side == "mathml" else "peer"
                if x[key] == best.get((grp, nfe)):
                    v = f"**{v}**"
                cells.append(v)
            lines.append(f"| {side} | {label} | " + " | ".join(cells) + " |")
        lines.append("")

    table(res["deterministic"], "rms", lambda x: f"{x['rms']:.4f}",
          "Deterministic samplers: RMS distance to the exact probability-flow solution from the same x_T "
          "(lower is better; best of mathml and best of the peers bolded per budget)")
    table(res["stochastic"], "rel_error",
          lambda x: f"{100 * x['signed_rel_error']:+.1f}% ± {100 * x['rel_error_se']:.1f}",
          "Stochastic samplers: relative error of the within-mode spread (signed, ± 1 SE; best |error| bolded)")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/sampler_accuracy.json")
    ap.add_argument("--nfe", type=int, nargs="+", default=[10, 20, 50])
    ap.add_argument("--n-det", type=int, default=2000)
    ap.add_argument("--n-stoch", type=int, default=30_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", help="sides to run (mathml, diffusers, k-diffusion); default all")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import diffusers  # noqa: F401  (fail early when the peers are missing)

    tic = time.perf_counter()
    res = accuracy(args.nfe, args.n_det, args.n_stoch, args.seed, args.only)
    res["summary_deterministic_rms"] = summary(res["deterministic"], "rms", args.nfe)
    res["summary_stochastic_rel_error"] = summary(res["stochastic"], "rel_error", args.nfe)
    import importlib.metadata as md

    res["config"] = dict(
        target="8 equal-weight 2-D Gaussians, means on a radius-4 circle, std 0.3; VPSDE(0.1, 20), T=1, t_end=1e-3",
        nfe=args.nfe, n_det=args.n_det, n_stoch=args.n_stoch, seed=args.seed, threads=1, dtype="float64",
        reference="torchdiffeq dopri5 rtol=atol=1e-10 float64 of mathml.sde.probability_flow",
        versions={p: md.version(p) for p in ("torch", "diffusers", "k-diffusion", "torchdiffeq")},
        machine=f"{platform.machine()}, {os.cpu_count()} cores (shared with other jobs)",
        wall_seconds=round(time.perf_counter() - tic, 1),
        command="make bench-env && .venv-bench/bin/python benchmarks/sampler_accuracy.py",
    )
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    print(json.dumps(res["summary_deterministic_rms"], indent=1))
    print(json.dumps(res["summary_stochastic_rel_error"], indent=1))
    if args.markdown:
        print(markdown(res, args.nfe))


if __name__ == "__main__":
    main()
