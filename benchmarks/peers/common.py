"""What the peer adapters share: the σ̃ → t map and a score-call counter."""

from __future__ import annotations

import math

import torch


def time_of_sigma_tilde(sde, sigma_tilde: float) -> float:
    """The SDE time t whose scaled noise level σ_t / α_t equals ``sigma_tilde`` (> 0), through
    λ = −2 log σ̃ and ``sde.t_from_log_snr`` (float64)."""
    lam = torch.tensor(-2.0 * math.log(float(sigma_tilde)), dtype=torch.float64)
    return float(sde.t_from_log_snr(lam))


class CountingScore:
    """Wraps ``score(x, t)``: evaluates it in float64 (the exact mixture score) and returns the
    caller's dtype; counts calls (``.calls``) and records the times asked for (``.times``)."""

    def __init__(self, score):
        self.score = score
        self.calls = 0
        self.times: list[float] = []

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.times.append(float(t.reshape(-1)[0]))
        return self.score(x.double(), t.double()).to(x.dtype)
