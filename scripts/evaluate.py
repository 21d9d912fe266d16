"""mathml-eval: FID, Inception-Score-style class entropy and bits/dim of a trained image diffusion checkpoint.

    mathml-eval outputs/<date>/<time>/checkpoints/last.ckpt
    mathml-eval CKPT --n-samples 500 --sampler dpm_solver_2m --steps 50 --seed 0 --n-probes 1 --max-test-points 256
    mathml-eval CKPT --features inception --inception-weights ~/weights-inception-2015-12-05-6726825d.pth

What it computes (the model is rebuilt exactly as ``mathml-sample`` does, EMA weights unless ``--raw-weights``):

- the held-out (test) split of the run's data, shuffled with ``--seed`` and cut into two disjoint
  halves A and B of n/2 images each;
- FID (``mathml.metrics.frechet_distance``) between ``--n-samples`` model samples (default n/2) and
  half A, and the data-vs-data floor FID(B, A) with the same set sizes: a model cannot be told
  from the data by this measure when its FID is near the floor. The floor of one split is itself
  noisy, so its mean and standard deviation over ``--floor-splits`` other random halvings are
  reported too. Samples are put back on the data's
  grid (the inverse of uniform dequantisation, k = ⌊y L⌋) before features are taken, as real images are;
- features: a ``FeatureClassifier`` trained once on the run's training split and cached
  (``--feature-cache``), or Inception-v3 from local weights (``--features inception``); the JSON
  names the feature network's id beside every FID;
- IS = exp(E KL(p(y|x) ‖ p(y))) from that classifier (Salimans et al. 2016) for the samples and for half B;
- bits/dim on the first ``--max-test-points`` test images by ``mathml.sde.log_likelihood`` with
  Hutchinson's divergence (``--n-probes``), mean ± standard error over the test points (the SE
  covers the data, dequantisation and probe noise, all independent across points).

Writes a JSON file (``--out``, default ``<run dir>/eval_<sampler>_<steps>_s<seed>.json``). Bad
arguments stop with a one-line error and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

from mathml_scripts.sample import (
    SAMPLERS,
    OneLineParser,
    UsageError,
    add_run_arguments,
    build_sampler,
    check_run_arguments,
    load_checkpoint,
)

FEATURES = ("auto", "classifier", "inception")


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="mathml-eval", description="FID, class-entropy IS and bits/dim of a diffusion checkpoint.",
                      epilog="Example: mathml-eval outputs/<date>/<time>/checkpoints/last.ckpt --steps 50")
    p.add_argument("checkpoint", help="a checkpoint written by mathml-train (e.g. .../checkpoints/last.ckpt)")
    p.add_argument("--n-samples", type=int, default=None, help="model samples for FID/IS (default: half the test set)")
    p.add_argument("--sampler", default=None, help=f"one of {', '.join(SAMPLERS)} (default: the run's sampler)")
    p.add_argument("--steps", type=int, default=None, help="sampler steps (default: the run's)")
    p.add_argument("--guidance-scale", type=float, default=None, help="classifier-free guidance scale of a "
                   "class-conditional model (default: the run's)")
    p.add_argument("--seed", type=int, default=0, help="seed of sampling, the data halves and the probes (default 0)")
    p.add_argument("--n-probes", type=int, default=1, help="Hutchinson probes per test point (default 1)")
    p.add_argument("--max-test-points", type=int, default=256, help="test images for bits/dim (default 256)")
    p.add_argument("--rtol", type=float, default=None, help="likelihood ODE rtol (default: the run's nll_rtol)")
    p.add_argument("--atol", type=float, default=None, help="likelihood ODE atol (default: the run's nll_atol)")
    p.add_argument("--out", default=None, help="JSON output path (default: <run dir>/eval_<sampler>_<steps>_s<seed>.json)")
    p.add_argument("--features", default="auto", help="FID features: classifier, inception, or auto (inception when "
                   "weights are given, else classifier)")
    p.add_argument("--inception-weights", default=None, help="local FID Inception-v3 weights (default: "
                   "$MATHML_INCEPTION_WEIGHTS)")
    p.add_argument("--feature-cache", default=None, help="folder of cached feature classifiers "
                   "(default: $MATHML_CACHE_DIR/feature_nets or ~/.cache/mathml/feature_nets)")
    p.add_argument("--floor-splits", type=int, default=5, help="random re-splits of the held-out data over which "
                   "the floor's mean and spread are also reported (default 5)")
    p.add_argument("--classifier-epochs", type=int, default=5, help="training epochs of the feature classifier (default 5)")
    p.add_argument("--batch-size", type=int, default=500, help="images per sampling batch (default 500)")
    p.add_argument("--nll-batch-size", type=int, default=64, help="test images per likelihood solve (default 64)")
    add_run_arguments(p)
    return p


def _check_args(a: argparse.Namespace) -> tuple[Path, Path]:
    import os

    if a.features not in FEATURES:
        raise UsageError(f"unknown --features {a.features!r}; choose one of {', '.join(FEATURES)}")
    if a.n_samples is not None and a.n_samples < 2:
        raise UsageError(f"--n-samples must be >= 2 (FID needs two samples), got {a.n_samples}")
    ckpt, config = check_run_arguments(a, ("steps", "n_probes", "max_test_points", "classifier_epochs", "batch_size",
                                           "nll_batch_size", "floor_splits"))
    if a.guidance_scale is not None and not (math.isfinite(a.guidance_scale) and a.guidance_scale >= 0):
        raise UsageError(f"--guidance-scale must be a finite number >= 0, got {a.guidance_scale}")
    for name in ("rtol", "atol"):
        v = getattr(a, name)
        if v is not None and not (math.isfinite(v) and v > 0):
            raise UsageError(f"--{name} must be a finite number > 0, got {v}")
    weights = a.inception_weights or os.environ.get("MATHML_INCEPTION_WEIGHTS")
    if a.features == "inception" and not weights:
        raise UsageError("--features inception needs --inception-weights PATH (or $MATHML_INCEPTION_WEIGHTS): a local "
                         "copy of weights-inception-2015-12-05-6726825d.pth; they cannot be downloaded here")
    if weights and a.features != "classifier" and not Path(weights).is_file():
        raise UsageError(f"Inception weights file {weights!r} does not exist")
    a.inception_weights = weights if a.features != "classifier" else None
    return ckpt, config


def main(argv: list[str] | None = None) -> None:
    try:
        a = _parser().parse_args(argv)
        ckpt, config = _check_args(a)
        evaluate(a, ckpt, config)
    except UsageError as e:
        print(f"mathml-eval: error: {e}", file=sys.stderr)
        sys.exit(2)


def to_data_grid(y, num_levels: int | None):
    """Model samples y (on the dequantised scale [0, 1)) back to the data's values: k/(L − 1) with
    k = clamp(⌊y L⌋, 0, L − 1), the cell of uniform dequantisation y = (k + u)/L that y falls in
    (Theis et al. 2016, §3.1); continuous data (L = None) are only clamped to [0, 1]."""
    if num_levels is None:
        return y.clamp(0, 1)
    return (y * num_levels).floor().clamp(0, num_levels - 1) / (num_levels - 1)


def _std(v: list[float]) -> float:
    """Sample standard deviation (ddof 1); 0 for one value."""
    if len(v) < 2:
        return 0.0
    m = sum(v) / len(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def _unconditional(score, num_classes: int | None, batch: int):
    """score(x, t) itself, or s(x, t, ∅) with the null label ∅ = K of a class-conditional model."""
    import torch

    if num_classes is None:
        return score

    def unconditional(x, t):
        return score(x, t, torch.full((batch,), num_classes, dtype=torch.long, device=x.device))
    return unconditional


def _dataset_name(cfg) -> str:
    d = cfg.data
    name = d.get("dataset") or d.get("name") or str(d._target_).rsplit(".", 1)[1]
    return f"{name}_{d.binarize}" if d.get("binarize") else str(name)


def _load_data(cfg):
    """(x_train, y_train, x_test, y_test, num_levels) of the run's data module; images (N, C, H, W) in [0, 1]."""
    from hydra.utils import instantiate

    dm = instantiate(cfg.data)
    dm.setup(None)
    train, test = dm.datasets["train"].tensors, dm.datasets["test"].tensors
    if len(train) < 2 or train[1].is_floating_point():
        raise UsageError(f"the run's data ({_dataset_name(cfg)}) carry no class labels; the feature classifier needs them")
    if train[0].dim() != 4:
        raise UsageError(f"mathml-eval needs image data (N, C, H, W); the run's data have shape {tuple(train[0].shape[1:])}")
    return train[0], train[1], test[0], test[1], dm.num_levels


def evaluate(a: argparse.Namespace, ckpt: Path, config: Path) -> dict:
    """Run every measurement of the module docstring and write the JSON; returns its content."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from mathml.metrics import (
        cached_feature_classifier,
        classifier_accuracy,
        frechet_distance,
        inception_feature_network,
        inception_score,
    )
    from mathml.sde import log_likelihood, log_prob_to_bits_per_dim, uniform_dequantize

    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    cfg, model = load_checkpoint(ckpt, config, a.device)
    sampler, name, steps, nfe_per_batch = build_sampler(cfg, a.sampler, a.steps)
    x_train, y_train, x_test, y_test, num_levels = _load_data(cfg)
    hp = model.hparams
    if num_levels != hp.num_levels:
        raise UsageError(f"the data have num_levels={num_levels} but the model was trained with {hp.num_levels}")
    dataset = _dataset_name(cfg)
    n_half = x_test.shape[0] // 2
    if n_half < 2:
        raise UsageError(f"the test split has {x_test.shape[0]} images; FID needs at least 4")
    n_samples = a.n_samples or n_half
    num_classes = hp.get("num_classes")
    if a.guidance_scale is not None and num_classes is None:
        raise UsageError("--guidance-scale applies to class-conditional models only; this run's model is unconditional")
    # Class-conditional models: samples with labels 0, 1, ..., K − 1, 0, ... (balanced, as the data
    # nearly are) and classifier-free guidance; likelihoods with the unconditional score s(x, t, ∅).
    sample_kwargs = {} if num_classes is None else {
        "guidance_scale": hp.guidance_scale if a.guidance_scale is None else a.guidance_scale}
    out = Path(a.out) if a.out else ckpt.resolve().parent.parent / f"eval_{name}_{steps}_s{a.seed}.json"
    seconds["load"] = time.perf_counter() - t0

    # Feature classifier: trained once on the training split, then read from the cache.
    t0 = time.perf_counter()
    classifier, classifier_file = cached_feature_classifier(
        x_train, y_train, dataset=dataset, cache_dir=a.feature_cache, epochs=a.classifier_epochs)
    classifier = classifier.to(a.device)
    x_test = x_test.to(a.device)
    # Held-out halves A (the FID reference) and B (the floor), disjoint, n_half images each.
    perm = torch.randperm(x_test.shape[0], generator=torch.Generator().manual_seed(a.seed))
    half_a, half_b = x_test[perm[:n_half]], x_test[perm[n_half:2 * n_half]]
    if a.inception_weights:
        try:
            features = inception_feature_network(a.inception_weights).to(a.device)
        except (FileNotFoundError, ModuleNotFoundError) as e:
            raise UsageError(str(e)) from None
        features_file = str(a.inception_weights)
    else:
        features, features_file = classifier, str(classifier_file)
    seconds["feature_network"] = time.perf_counter() - t0

    m = min(a.max_test_points, x_test.shape[0])
    chunks = [min(a.batch_size, n_samples - i) for i in range(0, n_samples, a.batch_size)]
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  disable=a.no_progress) as progress:
        # 1. samples, counted by score evaluations.
        t0 = time.perf_counter()
        task = progress.add_task(f"sampling {n_samples} ({name}, {steps} steps): score evaluations",
                                 total=None if nfe_per_batch is None else nfe_per_batch * len(chunks))

        def counted_sampler(sde, score, x_T, generator=None):
            def counted(x, t):
                progress.advance(task)
                return score(x, t)
            return sampler(sde, counted, x_T, generator=generator)

        g = torch.Generator(device=a.device).manual_seed(a.seed)
        samples = torch.cat([model.sample(b, generator=g, sampler=counted_sampler, ema=not a.raw_weights,
                                          **sample_kwargs) for b in chunks]).to(x_test.dtype)
        if not torch.isfinite(samples).all():
            raise FloatingPointError("the model produced non-finite samples; check the checkpoint and the sampler")
        fake = to_data_grid(samples, num_levels)
        seconds["sampling"] = time.perf_counter() - t0

        # 2. FID against half A, the data-vs-data floor FID(B, A), IS of samples and of half B.
        t0 = time.perf_counter()
        task = progress.add_task("FID and IS", total=3 + a.floor_splits)
        fid = frechet_distance(half_a, fake, features)
        progress.advance(task)
        floor = frechet_distance(half_a, half_b, features)
        progress.advance(task)
        # The floor's spread over other random halves (seeds seed+1, ...): how much one floor value can move.
        floors = []
        for r in range(1, a.floor_splits + 1):
            p = torch.randperm(x_test.shape[0], generator=torch.Generator().manual_seed(a.seed + r))
            floors.append(frechet_distance(x_test[p[:n_half]], x_test[p[n_half:2 * n_half]], features).fid)
            progress.advance(task)
        is_fake = inception_score(classifier.probabilities(fake))
        progress.advance(task)
        is_real = inception_score(classifier.probabilities(half_b))
        progress.advance(task)
        accuracy = classifier_accuracy(classifier, x_test, y_test.to(a.device))
        seconds["fid_is"] = time.perf_counter() - t0

        # 3. bits/dim on the first m test images (Hutchinson), mean ± SE over the points.
        t0 = time.perf_counter()
        task = progress.add_task(f"bits/dim on {m} test images (Hutchinson, {a.n_probes} probe(s))", total=m)
        gl = torch.Generator(device=a.device).manual_seed(a.seed + 1)
        rtol = a.rtol if a.rtol is not None else hp.nll_rtol
        atol = a.atol if a.atol is not None else hp.nll_atol
        d = math.prod(model.data_shape)
        per_point, nfes = [], []
        for i in range(0, m, a.nll_batch_size):
            x = x_test[i:min(i + a.nll_batch_size, m)]
            y = uniform_dequantize(x, num_levels, generator=gl) if num_levels is not None else x
            res = log_likelihood(model.sde, _unconditional(model.score_model if a.raw_weights else model.ema_score,
                                                           num_classes, x.shape[0]),
                                 hp.data_scale * y + hp.data_shift, exact_trace=False, n_probes=a.n_probes,
                                 rtol=rtol, atol=atol, generator=gl)
            if num_levels is not None:
                per_point.append(log_prob_to_bits_per_dim(res.log_prob, num_dims=d, num_levels=num_levels,
                                                          scale=hp.data_scale))
            else:  # nats per datum in the data's own units
                per_point.append(-res.log_prob - d * math.log(hp.data_scale))
            nfes.append(res.nfe)
            progress.advance(task, x.shape[0])
        seconds["likelihood"] = time.perf_counter() - t0

    v = torch.cat(per_point).double()
    se = (v.std() / math.sqrt(v.numel())).item() if v.numel() > 1 else float("nan")
    likelihood = {"mean": v.mean().item(), "se": se, "n_points": int(v.numel()), "n_probes": a.n_probes,
                  "rtol": rtol, "atol": atol, "nfe_per_solve": nfes, "batch_size": a.nll_batch_size,
                  "divergence": "hutchinson_rademacher"}
    result = {
        "checkpoint": str(ckpt), "config": str(config), "weights": "raw" if a.raw_weights else "ema",
        "data": {"dataset": dataset, "data_shape": list(model.data_shape), "num_levels": num_levels,
                 "n_train": int(x_train.shape[0]), "n_test": int(x_test.shape[0]), "half_size": n_half},
        "sampling": {"sampler": name, "steps": steps, "seed": a.seed, "n_samples": n_samples,
                     "nfe_per_batch": nfe_per_batch,
                     **({} if num_classes is None else {"labels": f"0..{num_classes - 1} in turn", **sample_kwargs})},
        "feature_network": fid.feature_network, "feature_network_file": features_file,
        "fid": fid.to_dict(),
        "fid_data_floor": floor.to_dict(),
        "fid_floor_same_sizes": n_samples == n_half,
        "fid_data_floor_resplits": {"mean": sum(floors) / len(floors), "std": _std(floors), "splits": len(floors),
                                    "values": floors},
        "classifier": {"id": classifier.feature_network_id, "file": str(classifier_file),
                       "held_out_accuracy": accuracy, "epochs": a.classifier_epochs},
        "inception_score": {"value": is_fake[0].item(), "classifier": classifier.feature_network_id,
                            "n": int(fake.shape[0]), "splits": 1},
        "inception_score_data": {"value": is_real[0].item(), "classifier": classifier.feature_network_id,
                                 "n": int(half_b.shape[0]), "splits": 1},
        ("bits_per_dim" if num_levels is not None else "nll_nats"): likelihood,
        "seconds": {k: round(s, 2) for k, s in seconds.items()},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    key = "bits_per_dim" if num_levels is not None else "nll_nats"
    fl = result["fid_data_floor_resplits"]
    print(f"FID {fid.fid:.3f} (data-vs-data floor {floor.fid:.3f}, over {fl['splits']} other splits "
          f"{fl['mean']:.3f} ± {fl['std']:.3f} sd; features {fid.feature_network}, "
          f"{fid.n_fake} samples vs {fid.n_real} held-out)")
    print(f"IS {result['inception_score']['value']:.3f} (held-out data {result['inception_score_data']['value']:.3f}; "
          f"classifier accuracy {accuracy:.3f})")
    print(f"{'bits/dim' if key == 'bits_per_dim' else 'NLL (nats)'} {likelihood['mean']:.4f} ± {se:.4f} "
          f"(SE over {likelihood['n_points']} test points)")
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
