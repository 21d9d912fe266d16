"""Contrastive divergence for energy-based models with short-run Langevin negatives and a replay
buffer (Hinton 2002; Du & Mordatch 2019, "Implicit Generation and Modeling with Energy-Based
Models", NeurIPS).

For p_θ(x) = exp(−E_θ(x))/Z_θ, the gradient of the negative log-likelihood is
∇θ E_data[E_θ(x⁺)] − ∇θ E_{x⁻~p_θ}[E_θ(x⁻)] (Du & Mordatch 2019, eq. 2). Negatives x⁻ come from K
steps of Langevin dynamics on −E_θ (``mathml.sde.ula``) started from a replay buffer of past
negatives (95 %) or from fresh uniform noise (5 %) (their §3.1 and Alg. 1). Their §3.3 adds the
energy regulariser α (E_θ(x⁺)² + E_θ(x⁻)²), which keeps energies near 0 and smooths training.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mathml.checks import (
    check_generator,
    check_nonnegative,
    check_positive,
    check_positive_int,
    check_tensor,
)
from mathml.sde.langevin import ula


class ReplayBuffer(nn.Module):
    """A fixed-size store of past negative samples; a module buffer, so it is saved in checkpoints
    and a resumed run continues from exactly the same buffer.

    Args:
        capacity: number of stored samples.
        data_shape: shape of one sample.
        low, high: the box of the uniform noise that fills it initially and re-initialises chains.
        reinit_prob: probability that a drawn chain restarts from fresh noise (Du & Mordatch: 0.05).
    """

    def __init__(self, capacity: int, data_shape: Sequence[int], *, low: float = -1.0, high: float = 1.0,
                 reinit_prob: float = 0.05) -> None:
        super().__init__()
        self.capacity = check_positive_int(capacity, "capacity")
        self.data_shape = tuple(check_positive_int(d, "data_shape[i]") for d in data_shape)
        if not high > low:
            raise ValueError(f"high must exceed low, got low={low}, high={high}")
        self.low, self.high = float(low), float(high)
        if isinstance(reinit_prob, bool) or not isinstance(reinit_prob, (int, float)) or not 0.0 <= reinit_prob <= 1.0:
            raise ValueError(f"reinit_prob must be a number in [0, 1], got {reinit_prob!r}")
        self.reinit_prob = float(reinit_prob)
        # Allocated now (so a checkpoint loads into the same shapes), filled with noise on first use.
        self.register_buffer("samples", torch.zeros(self.capacity, *self.data_shape))
        self.register_buffer("filled", torch.tensor(False))

    def _noise(self, n: int, generator, dtype, device) -> torch.Tensor:
        u = torch.rand((n, *self.data_shape), generator=generator, dtype=dtype, device=device)
        return self.low + (self.high - self.low) * u

    def draw(self, n: int, *, generator=None, dtype=torch.float32, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """n starting points ``(n, *data_shape)`` and their buffer indices ``(n,)``."""
        check_positive_int(n, "n")
        if not bool(self.filled):
            self.samples = self._noise(self.capacity, generator, dtype, device if device is not None else self.samples.device)
            self.filled.fill_(True)
        idx = torch.randint(0, self.capacity, (n,), generator=generator, device=self.samples.device)
        start = self.samples[idx].clone()
        fresh = torch.rand(n, generator=generator, device=self.samples.device) < self.reinit_prob
        noise = self._noise(n, generator, start.dtype, start.device)
        start = torch.where(fresh.view(n, *([1] * len(self.data_shape))), noise, start)
        return start, idx

    def push(self, x: torch.Tensor, idx: torch.Tensor) -> None:
        """Store the chains' new states back where they were drawn from."""
        self.samples[idx] = x.detach().to(self.samples.dtype)


class ContrastiveDivergence(nn.Module):
    """Per-sample contrastive-divergence terms with short-run Langevin negatives.

    Args:
        buffer: the ``ReplayBuffer`` of negatives (None: every chain starts from uniform noise in
            [−1, 1], i.e. short-run "non-persistent" CD, Nijkamp et al. 2019).
        langevin_steps: K, Langevin steps per training step.
        step_size: h of x ← x − h∇E(x) + √(2h) ξ (``mathml.sde.ula`` on the score −∇E).
        alpha: weight of the energy regulariser E(x⁺)² + E(x⁻)² (Du & Mordatch 2019, §3.3).

    ``forward(energy, x (B, ...), *, generator=None)`` returns a dict of (B,) terms: ``loss`` =
    E(x⁺) − E(x⁻) + α (E(x⁺)² + E(x⁻)²), ``energy_pos``, ``energy_neg``, ``cd`` = E(x⁺) − E(x⁻); and
    ``negatives`` (B, ...) (detached), the samples used (not a per-sample scalar: recipes log the
    others). The gradient of the batch mean of ``loss`` in θ is the CD estimate.
    """

    def __init__(self, buffer: ReplayBuffer | None = None, *, langevin_steps: int = 20, step_size: float = 0.01,
                 alpha: float = 0.1) -> None:
        super().__init__()
        self.buffer = buffer
        self.langevin_steps = check_positive_int(langevin_steps, "langevin_steps")
        self.step_size = check_positive(step_size, "step_size")
        self.alpha = check_nonnegative(alpha, "alpha")

    @torch.no_grad()
    def negatives(self, energy: nn.Module, n: int, data_shape: Sequence[int], *, generator=None, dtype=torch.float32,
                  device=None) -> torch.Tensor:
        """n samples of short-run Langevin on p_θ from the buffer (or noise), ``(n, *data_shape)``."""
        if self.buffer is not None:
            start, idx = self.buffer.draw(n, generator=generator, dtype=dtype, device=device)
        else:
            start = 2 * torch.rand((n, *data_shape), generator=generator, dtype=dtype, device=device) - 1
        x = ula(energy.score, start, step_size=self.step_size, n_steps=self.langevin_steps, generator=generator).x
        if self.buffer is not None:
            self.buffer.push(x, idx)
        return x

    def forward(self, energy: nn.Module, x: torch.Tensor, *, generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        check_tensor(x, "x", min_dim=2, shape_doc="(B, ...)")
        check_generator(generator)
        neg = self.negatives(energy, x.shape[0], x.shape[1:], generator=generator, dtype=x.dtype, device=x.device)
        e_pos, e_neg = energy(x), energy(neg)
        cd = e_pos - e_neg
        loss = cd + self.alpha * (e_pos**2 + e_neg**2)
        return {"loss": loss, "cd": cd, "energy_pos": e_pos, "energy_neg": e_neg, "negatives": neg.detach()}


class EnergyScoreMatching(nn.Module):
    """Score matching of an energy network: any score-matching objective of the form
    ``objective(score, x, generator=)`` (e.g. ``SlicedScoreMatching()`` on the data, Song et al. 2019)
    applied to the energy's score s_θ = −∇ₓE_θ, with the graph kept so the loss trains θ.

    ``forward(energy, x, *, generator=None)`` has ContrastiveDivergence's signature, so a recipe can
    train the same energy either way.
    """

    def __init__(self, objective: nn.Module) -> None:
        super().__init__()
        if not callable(objective):
            raise TypeError(f"objective must be a callable score-matching objective, got {type(objective).__name__}")
        self.objective = objective

    def forward(self, energy: nn.Module, x: torch.Tensor, *, generator: torch.Generator | None = None
                ) -> dict[str, torch.Tensor]:
        return self.objective(lambda y: energy.score(y, create_graph=True), x, generator=generator)
