"""Energy networks: a scalar E_θ(x) whose score is −∇ₓE_θ by autograd (an energy-based model
p_θ(x) ∝ exp(−E_θ(x)); LeCun et al. 2006, "A tutorial on energy-based learning", §1)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mathml.checks import check_positive, check_positive_int

from .mlp import MLP


class EnergyMLP(nn.Module):
    """E_θ(x) = MLP(flatten(x)) + ‖x‖² / (2 s²) ∈ ℝ for x of shape ``data_shape``.

    The optional quadratic term is a Gaussian reference measure N(0, s² I): p_θ(x) ∝ exp(−MLP(x)) ·
    N(x; 0, s² I) (Xie, Lu, Zhu & Wu 2016, "A Theory of Generative ConvNet", ICML, eq. 1). It keeps
    p_θ normalisable and Langevin chains from drifting off to where no data constrained the MLP.

    Args:
        data_shape: shape of one datum, e.g. (2,) or (1, 8, 8).
        hidden: hidden widths of the MLP.
        activation: module class between layers (smooth, e.g. SiLU, so the score is continuous).
        base_std: s of the Gaussian reference (None: no reference term).

    ``forward(x (B, *data_shape)) -> (B,)`` energies; ``score(x, create_graph=False) -> (B, *data_shape)``
    = −∇ₓE_θ(x) (``create_graph=True`` when the score itself is trained, as in score matching).
    """

    def __init__(self, data_shape: Sequence[int], hidden: Sequence[int] = (128, 128),
                 activation: type[nn.Module] = nn.SiLU, base_std: float | None = None) -> None:
        super().__init__()
        self.base_std = None if base_std is None else check_positive(base_std, "base_std")
        self.data_shape = tuple(check_positive_int(d, "data_shape[i]") for d in data_shape)
        dim = 1
        for d in self.data_shape:
            dim *= d
        self.net = MLP(dim, list(hidden), 1, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"EnergyMLP expected x of shape (B, *{self.data_shape}), got {tuple(x.shape)}")
        e = self.net(x.flatten(1)).squeeze(-1)
        if self.base_std is not None:
            e = e + 0.5 * x.flatten(1).pow(2).sum(1) / self.base_std**2
        return e

    def score(self, x: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
        """−∇ₓE_θ(x), the model's score, by autograd."""
        # Usable from no-grad and inference-mode contexts too (sampling at test time): autograd is
        # switched on locally, and an inference tensor is first copied into a normal one.
        with torch.inference_mode(False), torch.enable_grad():
            if create_graph and x.requires_grad:
                xg = x
            else:
                xg = (x.clone() if x.is_inference() else x.detach()).requires_grad_(True)
            (grad,) = torch.autograd.grad(self(xg).sum(), xg, create_graph=create_graph)
        return -grad
