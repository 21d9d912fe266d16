"""Sampler overhead: wall time spent outside the score, per score evaluation, mathml vs diffusers
vs k-diffusion, side by side in one run (CPU, one thread: torch.set_num_threads(1)).

Each library is given a near-free model in its own contract, returning a precomputed tensor of
the state's shape: mathml a score s(x, t), diffusers an ε-prediction, k-diffusion a denoiser
D(x̃, σ̃). A full sampling run is timed, with the grid set-up each library does per run:
diffusers' ``set_timesteps`` (it resets the scheduler's state), none for k-diffusion (its σ̃ grid
is an argument, built once here), mathml's schedule lookup (mathml memoises grids and
coefficients per SDE, steps and schedule); the model's own cost (measured separately,
per call) times the number of calls is subtracted, and the rest is divided by the number of
calls:

    overhead per evaluation = (wall of one run − NFE × model call time) / NFE.

Pairs of the same method: DPM-Solver++(2M), UniPC-type multistep, DDIM / Euler in σ̃, Heun (Karras Alg. 1),
SDE-DPM-Solver++ multistep, and the ancestral / Euler–Maruyama SDE step. Float32 states of shape (B, 2), B = 1,024 and 10,000,
NFE = 20. A stochastic step must draw one Gaussian tensor of the state's shape; that draw alone
(NFE ``torch.randn(B, 2)`` calls) is timed in the same rounds as a floor, and for the stochastic
pairs the ratio is also given with the floor taken off both sides. Repeats alternate the order of the contenders (rotating), and medians are reported.
The machine is shared with other jobs while measuring, hence the medians and the ratios (both
measured in the same rounds).

    make bench-env
    .venv-bench/bin/python benchmarks/sampler_overhead.py --out benchmarks/results/sampler_overhead.json
    (--repeats: rounds, default 41; --batch: default 1024 10000; --nfe: default 20)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from peers import diffusers_vp, kdiffusion_vp  # noqa: E402

from mathml.sde import VPSDE  # noqa: E402
from mathml.sde import samplers as S  # noqa: E402


class Constant:
    """A model that returns one precomputed tensor (never modified by the samplers), counting calls."""

    def __init__(self, value: torch.Tensor):
        self.value, self.calls = value, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.value


def ours(fn, per_step=1, **options):
    def run(sde, model, x, nfe, g):
        return fn(sde, model, x, steps=nfe // per_step, generator=g, **options)
    return run


def diffusers_loop(name, eta=None, stochastic=False, **config):
    """The plain diffusers denoising loop with an ε-model (no adapter: the model is in diffusers' contract)."""
    def run(sde, model, x, nfe, g):
        sch = diffusers_vp.make_scheduler(name, sde, **config)
        sch.set_timesteps(nfe)
        x = x * sch.init_noise_sigma
        kw = {"generator": g} if (stochastic or eta is not None or name == "euler_ancestral") else {}
        if eta is not None:
            kw["eta"] = eta
        for ts in sch.timesteps:
            x_in = sch.scale_model_input(x, ts)
            x = sch.step(model(x_in, ts), ts, x, **kw).prev_sample
        return x
    return run


def kdiffusion_loop(name, kind="karras", per_step=1):
    """k_diffusion.sampling.<name> with a denoiser in k-diffusion's contract. The σ̃ grid is built
    once and reused (k-diffusion takes it as an argument, so a user can cache it; mathml caches its
    grids itself; diffusers' ``set_timesteps`` resets the scheduler's state and is part of every run)."""
    cache = {}

    def run(sde, model, x, nfe, g):
        key = (nfe, x.dtype)
        if key not in cache:
            cache[key] = kdiffusion_vp.sigma_grid(sde, nfe // per_step, kind, sde.t_min).to(x.dtype)
        sigmas = cache[key]
        return getattr(kdiffusion_vp.sampling_module(), name)(model, x * math.sqrt(1.0 + float(sigmas[0]) ** 2), sigmas, disable=True)
    return run


PAIRS = {
    "DPM-Solver++(2M)": {
        "mathml dpm_solver_2m": ours(S.dpm_solver_2m),
        "diffusers DPMSolverMultistepScheduler": diffusers_loop("dpmsolver_multistep"),
        "k-diffusion sample_dpmpp_2m": kdiffusion_loop("sample_dpmpp_2m"),
    },
    "UniPC-type multistep": {
        "mathml exponential_adams": ours(S.exponential_adams),
        "diffusers UniPCMultistepScheduler": diffusers_loop("unipc_multistep"),
    },
    "DDIM / Euler in σ̃": {
        "mathml ddim": ours(S.ddim),
        "diffusers DDIMScheduler": diffusers_loop("ddim"),
        "diffusers EulerDiscreteScheduler": diffusers_loop("euler"),
        "k-diffusion sample_euler": kdiffusion_loop("sample_euler"),
    },
    "Heun (Karras Alg. 1)": {
        "mathml pf_ode_heun": ours(S.pf_ode_heun, per_step=2),
        "k-diffusion sample_heun": kdiffusion_loop("sample_heun", per_step=2),
    },
    "SDE-DPM-Solver++ multistep": {
        "mathml dpm_solver_sde": ours(S.dpm_solver_sde),
        "diffusers DPMSolverMultistepScheduler sde-dpmsolver++": diffusers_loop("dpmsolver_multistep", stochastic=True,
                                                                               algorithm_type="sde-dpmsolver++"),
        # k-diffusion's default noise here is a torchsde Brownian tree (its per-step cost included)
        "k-diffusion sample_dpmpp_2m_sde": kdiffusion_loop("sample_dpmpp_2m_sde", kind="exponential"),
    },
    "ancestral / Euler–Maruyama": {
        "mathml euler_maruyama": ours(S.euler_maruyama),
        "mathml ddim η=1": ours(S.ddim, eta=1.0),
        "diffusers DDIMScheduler η=1": diffusers_loop("ddim", eta=1.0),
        "diffusers EulerAncestralDiscreteScheduler": diffusers_loop("euler_ancestral"),
        "k-diffusion sample_euler_ancestral": kdiffusion_loop("sample_euler_ancestral"),
    },
}


FLOOR = ("(floor of a stochastic step)", "one torch.randn(B, 2) per evaluation")
STOCHASTIC_PAIRS = ("SDE-DPM-Solver++ multistep", "ancestral / Euler–Maruyama")


def model_call_seconds(model, x, t, n=20000) -> float:
    """Median over 5 blocks of the per-call time of ``model`` (the cost subtracted)."""
    out = []
    for _ in range(5):
        tic = time.perf_counter()
        for _ in range(n):
            model(x, t)
        out.append((time.perf_counter() - tic) / n)
    return statistics.median(out)


def measure(batch: int, nfe: int, repeats: int) -> dict:
    sde = VPSDE()
    gen = torch.Generator().manual_seed(0)
    x_T = torch.randn(batch, 2, generator=gen)
    value = 0.1 * torch.randn(batch, 2, generator=gen)
    runners = {(pair, name): run for pair, d in PAIRS.items() for name, run in d.items()}

    def draws_only(sde, model, x, nfe, g):  # NFE Gaussian draws of the state's shape, nothing else
        for _ in range(nfe):
            torch.randn(x.shape, generator=g, dtype=x.dtype)
            model(x, None)

    runners[FLOOR] = draws_only  # timed in the same rotation as the samplers
    calls, wall = {}, {k: [] for k in runners}
    for key, run in runners.items():  # warm-up, and the number of model calls
        m = Constant(value)
        run(sde, m, x_T, nfe, torch.Generator().manual_seed(1))
        calls[key] = m.calls
    per_call = model_call_seconds(Constant(value), x_T, torch.zeros(batch))
    keys = list(runners)
    for r in range(repeats):
        order = keys[r % len(keys):] + keys[: r % len(keys)]
        if r % 2:
            order = order[::-1]
        for key in order:
            m = Constant(value)
            g = torch.Generator().manual_seed(r)
            tic = time.perf_counter()
            runners[key](sde, m, x_T, nfe, g)
            wall[key].append(time.perf_counter() - tic)
    rows = []
    for (pair, name) in keys:
        med = statistics.median(wall[(pair, name)])
        n = calls[(pair, name)]
        over = (med - n * per_call) / n
        rows.append(dict(pair=pair, sampler=name, nfe=n, wall_median_s=med,
                         wall_iqr_s=[statistics.quantiles(wall[(pair, name)], n=4)[i] for i in (0, 2)],
                         overhead_per_eval_us=over * 1e6,
                         overhead_per_eval_us_from_min=(min(wall[(pair, name)]) - n * per_call) / n * 1e6))
    floor = next(x for x in rows if (x["pair"], x["sampler"]) == FLOOR)["overhead_per_eval_us"]
    for pair in PAIRS:
        r = [x for x in rows if x["pair"] == pair]
        mine = [x for x in r if x["sampler"].startswith("mathml")]
        peers = [x for x in r if not x["sampler"].startswith("mathml")]
        best_peer = min(peers, key=lambda x: x["overhead_per_eval_us"])
        for x in mine:
            x["ratio_to_best_peer"] = x["overhead_per_eval_us"] / best_peer["overhead_per_eval_us"]
            x["best_peer"] = best_peer["sampler"]
            x["ratio_to_each_peer"] = {p["sampler"]: x["overhead_per_eval_us"] / p["overhead_per_eval_us"] for p in peers}
            if pair in STOCHASTIC_PAIRS:  # the same ratio after taking one Gaussian draw per step off both sides
                x["ratio_to_best_peer_above_draw"] = ((x["overhead_per_eval_us"] - floor)
                                                      / (best_peer["overhead_per_eval_us"] - floor))
    return dict(batch=batch, nfe=nfe, repeats=repeats, model_call_us=per_call * 1e6, rows=rows)


def markdown(res) -> str:
    lines = ["| method | sampler | " + " | ".join(f"B = {r['batch']:,}: µs / eval (ratio to best peer)" for r in res["runs"]) + " |",
             "|---|---|" + "---|" * len(res["runs"])]
    for i, x in enumerate(res["runs"][0]["rows"]):
        cells = []
        for run in res["runs"]:
            y = run["rows"][i]
            c = f"{y['overhead_per_eval_us']:.0f}"
            if "ratio_to_best_peer" in y:
                c = f"**{c}** ({y['ratio_to_best_peer']:.2f}×"
                if "ratio_to_best_peer_above_draw" in y:
                    c += f"; {y['ratio_to_best_peer_above_draw']:.2f}× above the draw"
                c += ")"
            cells.append(c)
        lines.append(f"| {x['pair']} | {x['sampler']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results/sampler_overhead.json")
    ap.add_argument("--batch", type=int, nargs="+", default=[1024, 10000])
    ap.add_argument("--nfe", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=41)
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    import importlib.metadata as md

    tic = time.perf_counter()
    res = dict(runs=[])
    for b in args.batch:
        r = measure(b, args.nfe, args.repeats)
        res["runs"].append(r)
        for x in r["rows"]:
            print(json.dumps(dict(batch=b, **x)), flush=True)
    res["config"] = dict(
        threads=1, dtype="float32", state="(B, 2)", nfe=args.nfe, repeats=args.repeats,
        versions={p: md.version(p) for p in ("torch", "diffusers", "k-diffusion")},
        machine=f"{platform.machine()}, {os.cpu_count()} cores, shared with other agents' jobs while measuring",
        wall_seconds=round(time.perf_counter() - tic, 1),
        command="make bench-env && .venv-bench/bin/python benchmarks/sampler_overhead.py",
    )
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    if args.markdown:
        print(markdown(res))


if __name__ == "__main__":
    main()
