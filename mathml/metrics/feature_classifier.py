"""A compact CNN classifier whose penultimate layer is an offline feature network for FID and whose
class probabilities p(y|x) give an Inception-Score-style class entropy.

FID (Heusel et al. 2017) is defined with Inception-v3 pool features, whose weights cannot be
downloaded here (ENV.md gotcha 9). On small image sets (8x8 digits, the 5,000 MNIST digits) a
classifier trained once on the training split of the same data is the usual substitute: its
penultimate activations play the role of Inception's pool3 features. A number computed with these
features is only comparable with numbers from the very same weights, so every network carries a
``feature_network_id`` = ``"<name>:<first 12 hex digits of the SHA-256 of its weights>"`` that
results record and comparisons check (``mathml.metrics.FIDResult``).

Training is deterministic for a given seed (initialisation, shuffling: one ``torch.Generator``)
on the CPU; ``cached_feature_classifier`` trains once and stores the weights under a cache folder
keyed by a hash of the data and the training settings, so later calls load the same file.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from torch import nn

from mathml.checks import check_int_at_least, check_positive, check_positive_int, check_tensor

__all__ = [
    "FeatureClassifier",
    "cached_feature_classifier",
    "classifier_accuracy",
    "default_cache_dir",
    "load_feature_classifier",
    "save_feature_classifier",
    "train_feature_classifier",
]

#: Version of the architecture below; part of every id and cache key (bump it when the network changes).
ARCHITECTURE = "cnn_v2"
_FORMAT = "mathml.feature_classifier/1"


class FeatureClassifier(nn.Module):
    """Conv(3x3, w) → Conv(3x3, 2w, stride 2) → Conv(3x3, 2w) → Conv(3x3, 4w, stride 2) → average
    pool to 2x2 (keeps the coarse layout of a digit) → Linear(16w, F) → ReLU = features φ(x)
    (F = ``num_features``) → Linear(F, K) = logits; ReLU after every convolution.

    ``forward`` returns the features, so the module plugs into torchmetrics'
    ``FrechetInceptionDistance(feature=...)``, which reads ``num_features``.

    Args:
        in_channels: C of the images x: (B, C, H, W), pixel values in [0, 1]; any H, W ≥ 4.
        num_classes: K.
        num_features: F, the feature dimension used by FID.
        width: w, channels of the first convolution.
        name: the first part of ``feature_network_id`` (e.g. ``"mnist_subset_cnn_v2"``).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, num_features: int = 64, width: int = 32,
                 name: str = "feature_classifier") -> None:
        super().__init__()
        self.in_channels = check_positive_int(in_channels, "in_channels")
        self.num_classes = check_int_at_least(num_classes, "num_classes", 2)
        self.num_features = check_positive_int(num_features, "num_features")
        self.width = check_positive_int(width, "width")
        if not isinstance(name, str) or not name or ":" in name:
            raise ValueError(f"name must be a non-empty string without ':', got {name!r}")
        self.name = name
        w = width
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(w, 2 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 2 * w, 3, padding=1), nn.ReLU(),
            nn.Conv2d(2 * w, 4 * w, 3, stride=2, padding=1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten(),
            nn.Linear(16 * w, num_features), nn.ReLU(),
        )
        self.head = nn.Linear(num_features, num_classes)

    def _check(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "x", shape_doc=f"(B, {self.in_channels}, H, W)")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return x.to(self.head.weight.dtype)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """φ(x): (B, F), the penultimate activations, for x: (B, C, H, W) in [0, 1]."""
        return self.body(2.0 * self._check(x) - 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The features φ(x): (B, F) (what FID reads)."""
        return self.features(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits: (B, K)."""
        return self.head(self.features(x))

    def probabilities(self, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """p(y|x): (B, K), computed in batches without gradients."""
        check_positive_int(batch_size, "batch_size")
        with torch.no_grad():
            return torch.cat([self.logits(x[i:i + batch_size]).softmax(-1) for i in range(0, x.shape[0], batch_size)])

    @property
    def weights_sha256(self) -> str:
        """SHA-256 over the parameters (names, shapes, dtypes and bytes, in state_dict order)."""
        h = hashlib.sha256()
        for k, v in self.state_dict().items():
            v = v.detach().cpu().contiguous()
            h.update(f"{k}:{tuple(v.shape)}:{v.dtype}".encode())
            h.update(v.view(torch.uint8).numpy().tobytes() if v.numel() else b"")
        return h.hexdigest()

    @property
    def feature_network_id(self) -> str:
        """``"<name>:<12 hex digits of weights_sha256>"``: which features a number used."""
        return f"{self.name}:{self.weights_sha256[:12]}"


def classifier_accuracy(net: FeatureClassifier, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    """Fraction of x: (N, C, H, W) whose arg-max class equals y: (N,)."""
    was_training = net.training
    net.eval()
    pred = net.probabilities(x, batch_size).argmax(-1)
    net.train(was_training)
    return (pred == y.to(pred.device)).double().mean().item()


def train_feature_classifier(x: torch.Tensor, y: torch.Tensor, *, name: str, num_classes: int | None = None,
                             num_features: int = 64, width: int = 32, epochs: int = 5, batch_size: int = 32,
                             lr: float = 3e-3, seed: int = 0) -> FeatureClassifier:
    """Train a ``FeatureClassifier`` by cross-entropy with Adam (Kingma & Ba 2015).

    Deterministic: the initial weights and the shuffling come from ``torch.Generator(seed)`` (the
    global random state is left as it was).

    Args:
        x: (N, C, H, W) images in [0, 1].
        y: (N,) integer labels in 0..K−1.
        name: the id's first part (e.g. ``"digits_cnn_v2"``).
        num_classes: K (default: max(y) + 1).
        num_features, width: see ``FeatureClassifier``.
        epochs, batch_size, lr: Adam on mini-batches, each epoch one pass over a fresh permutation.
        seed: the generator's seed.

    Returns:
        The network in eval mode.
    """
    check_tensor(x, "x", min_dim=4, shape_doc="(N, C, H, W)")
    if x.dim() != 4:
        raise ValueError(f"x must have shape (N, C, H, W), got {tuple(x.shape)}")
    if not isinstance(y, torch.Tensor) or y.shape != x.shape[:1] or y.is_floating_point():
        raise ValueError(f"y must be an integer Tensor of shape ({x.shape[0]},), got "
                         f"{tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__}")
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_positive(lr, "lr")
    k = int(y.max()) + 1 if num_classes is None else num_classes
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = FeatureClassifier(x.shape[1], k, num_features, width, name).to(x.device)
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(x.shape[0], generator=g).split(batch_size):
            loss = nn.functional.cross_entropy(net.logits(x[idx]), y[idx].to(x.device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return net.eval()


def save_feature_classifier(net: FeatureClassifier, path: str | os.PathLike, **info) -> None:
    """Write the weights and constructor arguments (plain containers: loadable with
    ``torch.load(weights_only=True)``) to ``path``, atomically. ``info``: plain extra fields."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = {"format": _FORMAT, "name": net.name, "in_channels": net.in_channels, "num_classes": net.num_classes,
            "num_features": net.num_features, "width": net.width, "sha256": net.weights_sha256, "info": dict(info),
            "state_dict": {k: v.detach().cpu() for k, v in net.state_dict().items()}}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)


def load_feature_classifier(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> FeatureClassifier:
    """Read a file written by ``save_feature_classifier``; the weights' hash is checked against the stored one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature classifier file {str(path)!r} does not exist")
    blob = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(blob, dict) or blob.get("format") != _FORMAT:
        raise ValueError(f"{str(path)!r} is not a mathml feature classifier file (format {_FORMAT})")
    net = FeatureClassifier(blob["in_channels"], blob["num_classes"], blob["num_features"], blob["width"], blob["name"])
    net.load_state_dict(blob["state_dict"])
    if net.weights_sha256 != blob["sha256"]:
        raise ValueError(f"{str(path)!r}: the weights do not match their stored SHA-256 (corrupt file?)")
    return net.eval()


def default_cache_dir() -> Path:
    """``$MATHML_CACHE_DIR/feature_nets`` if set, else ``~/.cache/mathml/feature_nets``."""
    root = os.environ.get("MATHML_CACHE_DIR")
    return (Path(root) if root else Path.home() / ".cache" / "mathml") / "feature_nets"


def cached_feature_classifier(x: torch.Tensor, y: torch.Tensor, *, dataset: str,
                              cache_dir: str | os.PathLike | None = None, num_features: int = 64, width: int = 32,
                              epochs: int = 5, batch_size: int = 32, lr: float = 3e-3,
                              seed: int = 0) -> tuple[FeatureClassifier, Path]:
    """The classifier for these training data, trained once and then loaded from the cache.

    The file is ``<cache_dir>/<dataset>-<key>.pt`` where key hashes the data (x, y bytes), the
    architecture version and every training setting, so different data or settings never share a
    file. The network's name is ``"<dataset>_cnn_v2"``.

    Args:
        x, y: the training split, (N, C, H, W) in [0, 1] and (N,) labels.
        dataset: a short data-set name for the file and the id (e.g. ``"mnist_subset"``).
        cache_dir: default ``default_cache_dir()``.
        num_features, width, epochs, batch_size, lr, seed: as in ``train_feature_classifier``.

    Returns:
        (network in eval mode on x's device, path of the file).
    """
    if not isinstance(dataset, str) or not dataset or any(c in dataset for c in "/:\\"):
        raise ValueError(f"dataset must be a short name without '/', ':' or '\\', got {dataset!r}")
    settings = dict(num_features=num_features, width=width, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    h = hashlib.sha256(f"{ARCHITECTURE}|{sorted(settings.items())}|{tuple(x.shape)}|{x.dtype}".encode())
    h.update(x.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    h.update(y.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    path = Path(cache_dir if cache_dir is not None else default_cache_dir()) / f"{dataset}-{h.hexdigest()[:16]}.pt"
    if path.is_file():
        return load_feature_classifier(path).to(x.device), path
    net = train_feature_classifier(x, y, name=f"{dataset}_{ARCHITECTURE}", **settings)
    save_feature_classifier(net, path, train_accuracy=classifier_accuracy(net, x, y), n_train=int(x.shape[0]),
                            **settings)
    return net, path
