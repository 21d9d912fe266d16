"""k-diffusion's samplers driven by a mathml score on a mathml SDE.

k-diffusion integrates in Karras et al.'s (2022, NeurIPS, §4, eq. 4 with s(t) = α_t) scaled state
x̃ = x / α_t with noise level σ̃ = σ_t / α_t, calling a denoiser D(x̃, σ̃) ≈ E[x₀ | x̃]. From a
mathml score (Tweedie's formula, Efron 2011, eq. 2.8):

    D(x̃, σ̃) = x̃ + σ̃² α_t ∇log p_t(α_t x̃),   t = t_from_log_snr(−2 log σ̃).

The σ̃ grid runs from σ̃_T to σ̃_{t_end} without k-diffusion's usual appended 0, so the samplers end
at t_end (as mathml's do) and the result is x = α_{t_end} x̃.

``import k_diffusion`` imports the whole training package (scikit-image, CLIP, clean-fid,
dctorch, …); the samplers need only ``k_diffusion.sampling`` and ``k_diffusion.utils`` (scipy,
torchdiffeq, torchsde, tqdm, Pillow, safetensors, torchvision). ``sampling_module()`` imports those
two modules of the installed package without running the package's ``__init__``.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
import types

import torch

from .common import time_of_sigma_tilde


def sampling_module():
    """The installed ``k_diffusion.sampling`` module, unchanged (see the module docstring)."""
    if "k_diffusion.sampling" in sys.modules:
        return sys.modules["k_diffusion.sampling"]
    spec = importlib.util.find_spec("k_diffusion")
    if spec is None:
        raise ImportError("k-diffusion is not installed: run `make bench-env` and use .venv-bench/bin/python")
    if "k_diffusion" not in sys.modules:
        pkg = types.ModuleType("k_diffusion")
        pkg.__path__ = list(spec.submodule_search_locations)
        pkg.__spec__ = spec
        pkg.__file__ = spec.origin
        sys.modules["k_diffusion"] = pkg
    return importlib.import_module("k_diffusion.sampling")


class VPDenoiser:
    """D(x̃, σ̃) from a mathml ``score(x (B, D), t (B,))`` on a ``VPSDE`` (α_t² + σ_t² = 1, so
    α_t = 1 / √(1 + σ̃²)); see the module docstring. ``sigma: (B,)``, all equal within a call
    (k-diffusion passes σ̃ · ones(B))."""

    def __init__(self, sde, score):
        from mathml.sde import VPSDE

        if not isinstance(sde, VPSDE):
            raise TypeError(f"VPDenoiser needs a VPSDE, got {type(sde).__name__}")
        self.sde, self.score = sde, score

    def __call__(self, x_tilde: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        s = float(sigma.reshape(-1)[0])
        alpha = 1.0 / math.sqrt(1.0 + s * s)
        t = torch.full((x_tilde.shape[0],), time_of_sigma_tilde(self.sde, s), dtype=x_tilde.dtype, device=x_tilde.device)
        return x_tilde + (s * s * alpha) * self.score(alpha * x_tilde, t)


def sigma_grid(sde, n: int, kind: str, t_end: float, rho: float = 7.0) -> torch.Tensor:
    """(n + 1,) decreasing σ̃ from σ̃_T to σ̃_{t_end} (float64), built by k-diffusion's own schedule
    functions: "karras" (``get_sigmas_karras``, ρ = 7), "exponential" (``get_sigmas_exponential``,
    equal steps in log σ̃ = equal steps in λ), "vp" (``get_sigmas_vp``: equal steps in t; VP only).
    k-diffusion appends σ̃ = 0; it is dropped here (see the module docstring)."""
    ks = sampling_module()
    lam = sde.log_snr(torch.tensor([float(sde.T), float(t_end)], dtype=torch.float64))
    s_max, s_min = torch.exp(-0.5 * lam).tolist()
    with _default_dtype(torch.float64):
        if kind == "karras":
            s = ks.get_sigmas_karras(n + 1, s_min, s_max, rho=rho)
        elif kind == "exponential":
            s = ks.get_sigmas_exponential(n + 1, s_min, s_max)
        elif kind == "vp":
            s = ks.get_sigmas_vp(n + 1, beta_d=sde.beta_max - sde.beta_min, beta_min=sde.beta_min, eps_s=t_end)
        else:
            raise ValueError(f"unknown sigma schedule {kind!r}")
    return s[:-1].to(torch.float64)


class _default_dtype:
    def __init__(self, dtype):
        self.dtype = dtype

    def __enter__(self):
        self.old = torch.get_default_dtype()
        torch.set_default_dtype(self.dtype)

    def __exit__(self, *exc):
        torch.set_default_dtype(self.old)


def run_sampler(name: str, sde, score, x_T: torch.Tensor, sigmas: torch.Tensor, **kwargs) -> tuple[torch.Tensor, float, float]:
    """k_diffusion.sampling.<name>(D, x̃_T, σ̃ grid, disable=True, **kwargs).

    Args:
        x_T: (B, D) VP state at t = T (x̃_T = x_T / α_T).
        sigmas: (n + 1,) from ``sigma_grid``.

    Returns:
        (x, t_start, t_end): x = α_{t_end} x̃ (B, D), and the continuous times of σ̃_0 and σ̃_n.
    """
    ks = sampling_module()
    fn = getattr(ks, name)
    s0, s1 = float(sigmas[0]), float(sigmas[-1])
    x_tilde = x_T * math.sqrt(1.0 + s0 * s0)  # 1 / α_T for the VP SDE
    sig = sigmas.to(dtype=x_T.dtype)
    out = fn(VPDenoiser(sde, score), x_tilde, sig, disable=True, **kwargs)
    return out / math.sqrt(1.0 + s1 * s1), time_of_sigma_tilde(sde, s0), time_of_sigma_tilde(sde, s1)
