"""A time-conditioned residual MLP for low-dimensional data: net(x, t) -> shape of x.

The network is the raw function approximator F_θ(x, t); what it predicts (ε, x₀, v, or the EDM
F of Karras et al. 2022, eq. 7) is decided by the parametrisation adapter that wraps it and turns
its output into a score (``mathml.objectives`` adapters). Data of any shape ``(B, ...)`` is
flattened to ``(B, D)`` on the way in and reshaped on the way out.

Architecture: the residual MLP with additive time conditioning used for 2-D score models
(the fully-connected analogue of the time-embedded residual blocks of Ho et al. 2020, App. B):

    e   = MLP_t(γ(t))                          γ: a time embedding (``mathml.layers.time_embedding``)
    h_0 = W_in x
    h_k = h_{k−1} + W_k2 SiLU(W_k1 SiLU(h_{k−1}) + U_k e),  k = 1..K
    F   = W_out SiLU(h_K)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mathml.checks import check_nonnegative_int, check_positive_int, check_tensor

from .time_embedding import GaussianFourierEmbedding


class _Block(nn.Module):
    def __init__(self, width: int, emb_dim: int) -> None:
        super().__init__()
        self.lin1 = nn.Linear(width, width)
        self.emb = nn.Linear(emb_dim, width)
        self.lin2 = nn.Linear(width, width)

    def forward(self, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return h + self.lin2(nn.functional.silu(self.lin1(nn.functional.silu(h)) + self.emb(e)))


class ScoreMLP(nn.Module):
    """Residual MLP F_θ(x, t) for data of shape ``data_shape`` (see the module docstring).

    Args:
        data_shape: shape of one datum, e.g. ``[2]`` or ``[1, 8, 8]``; D = prod(data_shape).
        width: hidden width of the residual stream.
        num_blocks: K ≥ 1, residual blocks (the time enters through them).
        time_embedding: module ``t: (B,) -> (B, E)`` with attribute ``dim = E``; default
            ``GaussianFourierEmbedding(64, scale=16)`` (Song et al. 2021, App. H.1).
        zero_init_output: start with F ≡ 0 (the ε-prediction of "pure noise" is then 0 and the
            first losses are those of a constant predictor; a common stabiliser).

    Shapes: ``x: (B, *data_shape)``, ``t: (B,)`` → ``(B, *data_shape)``.
    """

    def __init__(
        self,
        data_shape: Sequence[int],
        width: int = 256,
        num_blocks: int = 3,
        time_embedding: nn.Module | None = None,
        zero_init_output: bool = True,
    ) -> None:
        super().__init__()
        if isinstance(data_shape, int) or len(data_shape) == 0:
            raise ValueError(f"data_shape must be a non-empty list of ints, e.g. [2] or [1, 8, 8], got {data_shape!r}")
        self.data_shape = tuple(check_positive_int(int(d), "data_shape entries") for d in data_shape)
        self.dim = math.prod(self.data_shape)
        width = check_positive_int(width, "width")
        check_nonnegative_int(num_blocks, "num_blocks")
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1 so the output depends on t, got {num_blocks}")
        self.time_embedding = time_embedding if time_embedding is not None else GaussianFourierEmbedding(64, 16.0)
        e_dim = int(self.time_embedding.dim)
        self.time_mlp = nn.Sequential(nn.Linear(e_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.inp = nn.Linear(self.dim, width)
        self.blocks = nn.ModuleList(_Block(width, width) for _ in range(num_blocks))
        self.out = nn.Linear(width, self.dim)
        if zero_init_output:
            nn.init.zeros_(self.out.weight)
            nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        x = check_tensor(x, "x", min_dim=2, shape_doc=f"(B, {', '.join(map(str, self.data_shape))})")
        if tuple(x.shape[1:]) != self.data_shape:
            raise ValueError(f"x must have shape (B, {', '.join(map(str, self.data_shape))}), got {tuple(x.shape)}")
        t = check_tensor(t, "t", shape_doc="(B,)")
        if t.shape != x.shape[:1]:
            raise ValueError(f"t must have shape (B,) = ({x.shape[0]},), got {tuple(t.shape)}")
        e = self.time_mlp(self.time_embedding(t.to(x.dtype)))
        h = self.inp(x.flatten(1))
        for block in self.blocks:
            h = block(h, e)
        return self.out(nn.functional.silu(h)).reshape(x.shape)
