"""Inception-Score-style class entropy from any classifier's p(y|x).

Salimans et al. 2016 ("Improved Techniques for Training GANs", §4) define

    IS = exp( E_x KL( p(y|x) ‖ p(y) ) ),   p(y) = E_x p(y|x),

estimated with the empirical mean over the images x. Equivalently IS = exp(H(y) − E_x H(y|x)): it
is high when each image is confidently one class (low conditional entropy) and the classes are
used evenly (high marginal entropy). 1 ≤ IS ≤ K for K classes: K exactly when every image is
one-hot and the K classes are equally frequent, 1 when every image has the same p(y|x).
Their code splits the images into ``splits`` equal parts and reports the mean and standard
deviation (population, ddof = 0) of the per-part scores; ``splits=1`` uses all images at once.

With a classifier other than Inception-v3 (e.g. ``mathml.metrics.FeatureClassifier``) the number
is only comparable with numbers from the same classifier.
"""

from __future__ import annotations

import torch

from mathml.checks import check_positive_int, check_tensor

__all__ = ["inception_score"]


def inception_score(probs: torch.Tensor, *, splits: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """IS = exp(E_x KL(p(y|x) ‖ p(y))) (Salimans et al. 2016, §4), per split.

    Args:
        probs: (N, K) class probabilities p(y|x_i), rows summing to 1 (e.g. ``softmax(logits)``).
        splits: number of equal contiguous parts; the last N mod splits rows are dropped, as in
            the reference code's integer slicing.

    Returns:
        (mean, std) over the splits, 0-dim tensors in the dtype of ``probs`` (std is 0 for one split).
    """
    check_tensor(probs, "probs", min_dim=2, shape_doc="(N, K)")
    if probs.dim() != 2:
        raise ValueError(f"probs must have shape (N, K), got {tuple(probs.shape)}")
    check_positive_int(splits, "splits")
    n = probs.shape[0] // splits
    if n < 1:
        raise ValueError(f"probs has {probs.shape[0]} rows, fewer than splits={splits}")
    if (probs < 0).any() or not torch.allclose(probs.sum(-1), torch.ones((), dtype=probs.dtype, device=probs.device),
                                               atol=1e-4):
        raise ValueError("probs must be non-negative with rows summing to 1 (apply softmax to logits)")
    p_yx = probs[: n * splits].reshape(splits, n, -1)
    p_y = p_yx.mean(1, keepdim=True)
    # KL(p(y|x) ‖ p(y)) = Σ_y p(y|x) (log p(y|x) − log p(y)); xlogy gives 0 log 0 = 0.
    kl = (torch.xlogy(p_yx, p_yx) - torch.xlogy(p_yx, p_y)).sum(-1)
    scores = kl.mean(1).exp()
    return scores.mean(), scores.std(correction=0) if splits > 1 else torch.zeros((), dtype=probs.dtype,
                                                                                   device=probs.device)
