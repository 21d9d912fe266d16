"""diffusers' schedulers driven by a mathml score on a mathml ``VPSDE``.

diffusers works in discrete time: N = 1000 training steps with cumulative products ᾱ_n. We give
its schedulers ``trained_betas`` that make ᾱ_n equal to the VP SDE's α² at t_n = (n + 1) / N,

    ᾱ_n = exp(−B(t_n)),  β_n = 1 − ᾱ_n / ᾱ_{n−1}   (B(t) = ∫₀ᵗ β, Song et al. 2021, eq. 29),

so that step n = N − 1 is t = T = 1 and n = 0 is t = 1e-3 (= ``VPSDE().t_min``): the schedulers then
start where mathml's samplers start and, with ``final_sigmas_type="sigma_min"`` (Euler,
DPM-Solver) or ``set_alpha_to_one=False`` (DDIM), end where they end. diffusers keeps ᾱ and its
σ̃ grid in float32, so the times it reaches differ from 1 and 1e-3 by float32 rounding;
``run_scheduler`` returns the times actually used, and the benchmark builds its reference for them.

The model call of every step is ε̂ = −σ_t ∇log p_t(x_t) at the continuous t of the σ̃ that the
scheduler's own update uses (``scheduler.sigmas[i]``, or ᾱ at the timestep for DDIM), which is
the self-consistent choice (with Karras or Lu sigmas diffusers rounds the timestep it would hand a
network, but updates with the unrounded σ̃).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .common import time_of_sigma_tilde

N_TRAIN = 1000


def vp_trained_betas(sde, n_train: int = N_TRAIN) -> np.ndarray:
    """β_n, n = 0..N−1, with ᾱ_n = Π_{m≤n}(1 − β_m) = exp(−B((n + 1)/N)) under ``sde`` (a VPSDE)."""
    t = torch.arange(1, n_train + 1, dtype=torch.float64) / n_train
    b = sde.integrated_beta(t)
    prev = torch.cat([torch.zeros(1, dtype=torch.float64), b[:-1]])
    return (-torch.expm1(-(b - prev))).numpy()


def make_scheduler(name: str, sde, **overrides):
    """A diffusers scheduler matched to ``sde``: ``name`` in {"dpmsolver_multistep",
    "unipc_multistep", "ddim", "euler", "euler_ancestral"}; ``overrides`` go to its constructor."""
    import diffusers

    common = dict(num_train_timesteps=N_TRAIN, trained_betas=vp_trained_betas(sde), prediction_type="epsilon")
    if name == "dpmsolver_multistep":
        cfg = dict(final_sigmas_type="sigma_min")
        cls = diffusers.DPMSolverMultistepScheduler
    elif name == "unipc_multistep":
        cfg = dict(final_sigmas_type="sigma_min")
        cls = diffusers.UniPCMultistepScheduler
    elif name == "ddim":
        # clip_sample=False: DDIM clips x̂₀ to [-1, 1] by default (image data); "trailing" starts at
        # step N − 1 (t = T), and set_alpha_to_one=False ends at ᾱ_0 (t = 1e-3) instead of t = 0.
        cfg = dict(clip_sample=False, set_alpha_to_one=False, timestep_spacing="trailing")
        cls = diffusers.DDIMScheduler
    elif name == "euler":
        # "trailing": with the default "linspace" the last timestep is step 0 itself, so a
        # sigma_min end would spend the last evaluation on a zero-length step.
        cfg = dict(final_sigmas_type="sigma_min", timestep_spacing="trailing")
        cls = diffusers.EulerDiscreteScheduler
    elif name == "euler_ancestral":
        cfg = dict(timestep_spacing="trailing")  # ends at σ̃ = 0 (t = 0): no sigma_min option
        cls = diffusers.EulerAncestralDiscreteScheduler
    else:
        raise ValueError(f"unknown diffusers scheduler {name!r}")
    cfg.update(common)
    cfg.update(overrides)
    return cls(**cfg)


def _sigma_tilde_from_alpha_bar(a: float) -> float:
    return math.sqrt((1.0 - a) / a)


def run_scheduler(scheduler, score, sde, x_T: torch.Tensor, steps: int, *, eta: float | None = None,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, float, float]:
    """The standard diffusers denoising loop with ε̂ from ``score``.

    Args:
        scheduler: from ``make_scheduler``.
        score: mathml score ``score(x (B, D), t (B,))``.
        sde: the VPSDE the scheduler was matched to.
        x_T: (B, D) a draw of N(0, I) (the start; scaled by ``init_noise_sigma`` as diffusers does).
        steps: ``num_inference_steps``.
        eta: DDIM's η (stochastic when > 0); ``generator`` for stochastic schedulers.

    Returns:
        (x, t_start, t_end): the result as a VP state x_t (B, D) at t_end, and the continuous times
        of the first model call and of the end.
    """
    scheduler.set_timesteps(steps)
    timesteps = scheduler.timesteps
    name = type(scheduler).__name__
    ddim = name == "DDIMScheduler"
    karras_space = name.startswith("Euler")  # Euler schedulers' state is x̃ = x / α
    if ddim:
        abar = scheduler.alphas_cumprod.double()
        st = [_sigma_tilde_from_alpha_bar(float(abar[int(ts)])) for ts in timesteps]
        st_end = _sigma_tilde_from_alpha_bar(float(scheduler.final_alpha_cumprod))
    else:
        sig = scheduler.sigmas.double()
        st = [float(s) for s in sig[: len(timesteps)]]
        st_end = float(sig[len(timesteps)])
    times = [time_of_sigma_tilde(sde, s) for s in st]
    dtype = x_T.dtype
    x = x_T * scheduler.init_noise_sigma
    kw = {}
    if ddim and eta is not None:
        kw["eta"] = eta
    if generator is not None:
        kw["generator"] = generator
    for i, ts in enumerate(timesteps):
        x_in = scheduler.scale_model_input(x, ts)  # for Euler: x̃ / √(σ̃² + 1) = the VP state
        t = times[i]
        sigma_t = st[i] / math.sqrt(1.0 + st[i] ** 2)
        tt = torch.full((x.shape[0],), t, dtype=torch.float64)
        eps = -sigma_t * score(x_in.double(), tt)
        x = scheduler.step(eps.to(x_in.dtype), ts, x, **kw).prev_sample
    x = x.double()
    if karras_space:
        x = x / math.sqrt(1.0 + st_end**2)
    t_end = time_of_sigma_tilde(sde, st_end) if st_end > 0 else 0.0
    return x.to(dtype), times[0], t_end
