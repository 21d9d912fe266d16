"""Multi-layer perceptron acting on the last dimension."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from mathml.checks import check_positive_int


class MLP(nn.Sequential):
    """``Linear -> act -> ... -> Linear`` on the last dimension; any leading dims pass through.

    Args:
        in_features: size of the input's last dimension.
        hidden: widths of the hidden layers; ``[]`` gives a single affine map.
        out_features: size of the output's last dimension.
        activation: module class used between layers (default ``nn.SiLU``).

    Shapes: ``(*, in_features) -> (*, out_features)``.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: type[nn.Module] = nn.SiLU,
    ) -> None:
        widths = [
            check_positive_int(in_features, "in_features"),
            *(check_positive_int(w, f"hidden[{i}]") for i, w in enumerate(hidden)),
            check_positive_int(out_features, "out_features"),
        ]
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(widths) - 2:
                layers.append(activation())
        super().__init__(*layers)
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"MLP expected input (..., {self.in_features}), got {tuple(x.shape)}")
        return super().forward(x)
