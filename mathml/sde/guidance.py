"""Classifier-free guidance (Ho & Salimans 2022, "Classifier-Free Diffusion Guidance") as a score
adapter, and the label dropout that trains one network for both conditional and unconditional scores.

Training (Ho & Salimans 2022, §3.2 and Alg. 1, line 3): each label is replaced by the null label ∅
with probability p_uncond, so one network learns s(x, t, y) ≈ ∇ log p_t(x | y) and
s(x, t, ∅) ≈ ∇ log p_t(x).

Sampling (their eq. 6, written in scores rather than ε: ε = −σ_t s, so the combination is the
same): with guidance scale γ,

    s̃(x, t) = s(x, t, ∅) + γ (s(x, t, y) − s(x, t, ∅)) = γ s(x, t, y) + (1 − γ) s(x, t, ∅),

the score of the tilted density p_t(x)^{1−γ} p_t(x | y)^γ ∝ p_t(x) p_t(y | x)^γ. Convention: γ = 0
is the unconditional score, γ = 1 the conditional score, γ > 1 sharpens towards the class
(Ho & Salimans' w is γ − 1). ``ClassifierFreeGuidance`` turns a conditional score model and
labels into a plain ``score(x, t)``, so every sampler in ``mathml.sde`` guides unchanged.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from mathml.checks import check_generator, check_nonnegative_int, check_tensor

from .base import as_time

ConditionalScore = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

__all__ = ["ClassifierFreeGuidance", "drop_labels"]


def _check_labels(y: object, name: str, null_label: int, batch: int | None = None) -> torch.Tensor:
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.dtype.is_floating_point or y.dtype == torch.bool:
        got = f"{y.dtype} tensor of shape {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"{name} must be an integer tensor of shape (B,), got {got}")
    if batch is not None and y.shape[0] != batch:
        raise ValueError(f"{name} must have shape (B,) = ({batch},), got {tuple(y.shape)}")
    if y.numel() and (int(y.min()) < 0 or int(y.max()) > null_label):
        raise ValueError(f"{name} must hold labels in [0, {null_label}] ({null_label} = null label), "
                         f"got values in [{int(y.min())}, {int(y.max())}]")
    return y


def drop_labels(y: torch.Tensor, p_uncond: float, null_label: int, *,
                generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each label by ``null_label`` with probability ``p_uncond`` (Ho & Salimans 2022,
    Alg. 1, line 3: c ← ∅ with probability p_uncond).

    Args:
        y: (B,) integer class labels in [0, null_label].
        p_uncond: probability in [0, 1] of dropping a label (0.1–0.2 in Ho & Salimans).
        null_label: the index of ∅ (K for K classes).
        generator: draws the Bernoulli mask (on y's device).

    Returns:
        (B,) labels, a new tensor.
    """
    null_label = check_nonnegative_int(null_label, "null_label")
    y = _check_labels(y, "y", null_label)
    if isinstance(p_uncond, bool) or not isinstance(p_uncond, (int, float)) or not 0.0 <= p_uncond <= 1.0:
        raise ValueError(f"p_uncond must be a probability in [0, 1], got {p_uncond!r}")
    check_generator(generator)
    drop = torch.rand(y.shape, generator=generator, device=y.device) < p_uncond
    return torch.where(drop, torch.full_like(y, null_label), y)


class ClassifierFreeGuidance(nn.Module):
    """s̃(x, t) = γ s(x, t, y) + (1 − γ) s(x, t, ∅) (Ho & Salimans 2022, eq. 6 with γ = 1 + w).

    Args:
        score_model: the conditional score ``score_model(x (B, ...), t (B,), y (B,)) -> (B, ...)``
            (e.g. ``EpsilonPrediction(UNet(..., num_classes=K), sde)``), where y = ``null_label``
            gives the unconditional score.
        y: (B,) integer labels, one per sample of the batches the sampler will pass (values in
            [0, null_label]).
        guidance_scale: γ ≥ 0; 0: unconditional, 1: conditional (one network call each), otherwise
            both in one batched call of size 2B (or two calls with ``batched=False``).
        null_label: index of ∅ (K for K classes).
        batched: evaluate the conditional and unconditional halves in one call of batch 2B.

    ``forward(x (B, ...), t (B,)) -> (B, ...)``: a plain score for any ``mathml.sde`` sampler.
    """

    def __init__(self, score_model: ConditionalScore, y: torch.Tensor, guidance_scale: float, null_label: int,
                 batched: bool = True) -> None:
        super().__init__()
        if not callable(score_model):
            raise TypeError(f"score_model must be a callable score_model(x, t, y), got {type(score_model).__name__}")
        if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, (int, float)) or not guidance_scale >= 0:
            raise ValueError(f"guidance_scale must be a number >= 0 (0: unconditional, 1: conditional), "
                             f"got {guidance_scale!r}")
        self.null_label = check_nonnegative_int(null_label, "null_label")
        self.score_model = score_model
        self.y = _check_labels(y, "y", self.null_label)
        self.guidance_scale = float(guidance_scale)
        self.batched = bool(batched)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", min_dim=1, shape_doc="(B, ...)")
        if x.shape[0] != self.y.shape[0]:
            raise ValueError(f"x must have batch size B = {self.y.shape[0]} (the number of labels y), "
                             f"got shape {tuple(x.shape)}")
        y, t = self.y.to(x.device), as_time(t, x)
        gamma = self.guidance_scale
        null = torch.full_like(y, self.null_label)
        if gamma == 0.0:
            return self.score_model(x, t, null)
        if gamma == 1.0:
            return self.score_model(x, t, y)
        if self.batched:
            s_c, s_u = self.score_model(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).chunk(2)
        else:
            s_c, s_u = self.score_model(x, t, y), self.score_model(x, t, null)
        return gamma * s_c + (1.0 - gamma) * s_u

    def extra_repr(self) -> str:
        return f"guidance_scale={self.guidance_scale}, null_label={self.null_label}, batched={self.batched}"
