"""Fréchet distance between feature distributions (FID) with a pluggable feature network.

Heusel et al. 2017 ("GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", §"Fréchet Inception Distance", eq. 6) fit Gaussians N(μ_r, Σ_r), N(μ_g, Σ_g) to the
features φ(x) of real and generated images and report the Fréchet (2-Wasserstein) distance

    d²((μ_r, Σ_r), (μ_g, Σ_g)) = ‖μ_r − μ_g‖² + Tr(Σ_r + Σ_g − 2 (Σ_r Σ_g)^{1/2}).

The computation is torchmetrics' ``FrechetInceptionDistance`` given our feature network (an
``nn.Module`` with ``num_features``; ENV.md gotcha 9). The value depends entirely on φ: numbers
from different feature networks are not comparable, so every ``FIDResult`` carries the network's
``feature_network_id`` and comparing results of different ids raises ``FeatureNetworkMismatch``.
The estimate is biased upwards at finite sample sizes (Bińkowski et al. 2018, §3), so compare
numbers computed with equal set sizes, and read a model's FID beside the data-vs-data floor: FID
between two disjoint real sets of the same sizes.

Feature networks: ``mathml.metrics.FeatureClassifier`` (a small CNN trained offline on the same
data) or ``inception_feature_network(weights_path)``, Inception-v3 pool3 (2048) features from a
local copy of the FID Inception weights.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from mathml.checks import check_positive_int, check_tensor

__all__ = ["FIDResult", "FeatureNetworkMismatch", "frechet_distance", "inception_feature_network"]

#: Environment variable naming a local file of the FID Inception-v3 weights.
INCEPTION_ENV = "MATHML_INCEPTION_WEIGHTS"


class FeatureNetworkMismatch(ValueError):
    """Two FID numbers computed with different feature networks were compared."""


@dataclass(frozen=True)
class FIDResult:
    """An FID value and what it was computed from.

    Attributes:
        fid: the Fréchet distance (squared units of the features).
        feature_network: the feature network's id, e.g. ``"mnist_subset_cnn_v2:3fa2c0d1e9b4"``.
        n_real, n_fake: set sizes (FID's bias depends on them).

    Ordering (<, <=, >, >=) and ``difference`` check that both results used the same feature network.
    """

    fid: float
    feature_network: str
    n_real: int
    n_fake: int

    def _same_features(self, other: object) -> FIDResult:
        if not isinstance(other, FIDResult):
            raise TypeError(f"can only compare an FIDResult with another FIDResult, got {type(other).__name__}")
        if other.feature_network != self.feature_network:
            raise FeatureNetworkMismatch(
                f"FID values from different feature networks are not comparable: {self.feature_network!r} vs "
                f"{other.feature_network!r}; recompute both with the same network")
        return other

    def difference(self, other: FIDResult) -> float:
        """self.fid − other.fid, after checking both used the same feature network."""
        return self.fid - self._same_features(other).fid

    def __lt__(self, other: FIDResult) -> bool:
        return self.fid < self._same_features(other).fid

    def __le__(self, other: FIDResult) -> bool:
        return self.fid <= self._same_features(other).fid

    def __gt__(self, other: FIDResult) -> bool:
        return self.fid > self._same_features(other).fid

    def __ge__(self, other: FIDResult) -> bool:
        return self.fid >= self._same_features(other).fid

    def to_dict(self) -> dict:
        """Plain fields for JSON."""
        return asdict(self)


def _network_id(net: nn.Module, feature_network_id: str | None) -> str:
    fid_id = feature_network_id if feature_network_id is not None else getattr(net, "feature_network_id", None)
    if not isinstance(fid_id, str) or not fid_id:
        raise ValueError("the feature network has no feature_network_id attribute; pass feature_network_id= "
                         "(a string naming the network and its weights)")
    return fid_id


def frechet_distance(real: torch.Tensor, fake: torch.Tensor, feature_network: nn.Module, *,
                     feature_network_id: str | None = None, batch_size: int = 256) -> FIDResult:
    """FID between two image sets (Heusel et al. 2017, eq. 6; module docstring).

    Args:
        real: (N_r, C, H, W) reference images, in the input format of the feature network
            (for ``FeatureClassifier`` and ``inception_feature_network``: floats in [0, 1]).
        fake: (N_g, C, H, W) images to assess, same format. N_r, N_g ≥ 2.
        feature_network: an ``nn.Module`` mapping a batch to (B, F) features, with ``num_features`` = F.
        feature_network_id: the network's id (default: its ``feature_network_id`` attribute).
        batch_size: images per forward pass.

    Returns:
        ``FIDResult`` (fid in float64 arithmetic, returned as a Python float).
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    for name, v in (("real", real), ("fake", fake)):
        check_tensor(v, name, min_dim=2, shape_doc="(N, C, H, W)")
        if v.shape[0] < 2:
            raise ValueError(f"{name} must hold at least 2 images, got {v.shape[0]}")
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"real and fake must have the same image shape, got {tuple(real.shape[1:])} and "
                         f"{tuple(fake.shape[1:])}")
    if not isinstance(feature_network, nn.Module) or not isinstance(getattr(feature_network, "num_features", None), int):
        raise TypeError("feature_network must be an nn.Module with an int attribute num_features, got "
                        f"{type(feature_network).__name__}")
    fid_id = _network_id(feature_network, feature_network_id)
    check_positive_int(batch_size, "batch_size")
    was_training = feature_network.training
    feature_network.eval()
    metric = FrechetInceptionDistance(feature=feature_network, reset_real_features=True).to(real.device)
    with torch.no_grad():
        for imgs, is_real in ((real, True), (fake, False)):
            for i in range(0, imgs.shape[0], batch_size):
                metric.update(imgs[i:i + batch_size], real=is_real)
        value = float(metric.compute())
    feature_network.train(was_training)
    if not math.isfinite(value):
        raise FloatingPointError(f"FID is not finite ({value}); are the images finite and in range?")
    return FIDResult(fid=value, feature_network=fid_id, n_real=int(real.shape[0]), n_fake=int(fake.shape[0]))


class _InceptionFeatures(nn.Module):
    """Inception-v3 pool3 features (2048) of images in [0, 1], any channel count (1 → repeated to RGB)."""

    num_features = 2048

    def __init__(self, inception: nn.Module, feature_network_id: str) -> None:
        super().__init__()
        self.inception = inception
        self.feature_network_id = feature_network_id

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        # torchmetrics' Inception wants uint8 RGB in 0..255 (it resizes to 299 x 299 itself).
        return self.inception((x.clamp(0, 1) * 255).round().to(torch.uint8))


def inception_feature_network(weights_path: str | os.PathLike | None = None) -> nn.Module:
    """Inception-v3 pool3 features from a local copy of the FID Inception weights (torch-fidelity's
    ``weights-inception-2015-12-05-6726825d.pth``), for images (B, C, H, W) in [0, 1], C ∈ {1, 3}.

    Args:
        weights_path: the file (default: the environment variable ``MATHML_INCEPTION_WEIGHTS``).

    Raises:
        FileNotFoundError: no path given, or the file is absent (they cannot be downloaded here);
            use ``mathml.metrics.cached_feature_classifier`` instead.
        ModuleNotFoundError: torch-fidelity (which defines the network) is not installed.
    """
    path = weights_path if weights_path is not None else os.environ.get(INCEPTION_ENV)
    if not path:
        raise FileNotFoundError(
            f"no Inception weights: pass weights_path or set {INCEPTION_ENV} to a local copy of the FID Inception-v3 "
            "weights (weights-inception-2015-12-05-6726825d.pth); without them use the offline feature classifier")
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Inception weights file {str(path)!r} does not exist (they cannot be downloaded here); "
                                "without them use the offline feature classifier")
    try:
        from torchmetrics.image.fid import NoTrainInceptionV3

        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                 feature_extractor_weights_path=str(path))
    except ModuleNotFoundError as e:
        raise ModuleNotFoundError(f"Inception features need torch-fidelity (pip install torch-fidelity): {e}") from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return _InceptionFeatures(net, f"inception_v3_pool3:{digest[:12]}")
