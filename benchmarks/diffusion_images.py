"""Image diffusion benchmarks: the recipe's training throughput vs a plain PyTorch loop (CPU), and
the U-Net's training and sampling throughput on a GPU.

``throughput`` (default): the Lightning recipe (``mathml_recipes.diffusion.DiffusionModule``) vs a
hand-written loop doing the same work per step with the same U-Net, data loader and optimizer:
label dropout, uniform dequantisation and scaling, the denoising score-matching loss, an Adam step
and the EMA update; both write one checkpoint (model + optimizer state) per epoch. Sides alternate
within each round; after one warm-up epoch each side's steps/s is timed by the wall clock and by the
process CPU time (the machine may be shared); the median of the per-round ratios recipe/plain is
reported (goal >= 0.95). As in ``benchmarks/vae_throughput.py``.

``gpu``: for the U-Nets of ``diffusion_mnist`` (28x28) and ``diffusion_cifar10`` (32x32), training
images/s in bf16 autocast (TF32 on; optionally channels-last), the FLOPs of one training step
counted by ``torch.utils.flop_counter.FlopCounterMode`` and the achieved TFLOP/s as a fraction of
the measured bf16 matmul peak (an 8192x8192 matmul); sampling throughput (samples/s) with
DPM-Solver++(2M) at 10 and 50 steps under classifier-free guidance (two network evaluations per
step, batched). ``--tiny`` runs the same code with 8 base channels and small batches (a CPU check).

    .venv/bin/python benchmarks/diffusion_images.py throughput --rounds 3 --epochs 2 --batches 10
    python benchmarks/diffusion_images.py gpu --device cuda --out benchmarks/out/gpu/diffusion_images_gpu.json
    .venv/bin/python benchmarks/diffusion_images.py gpu --device cpu --tiny      # the GPU script on the CPU
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from _compose import compose_train

# The recipe benchmark's default size: the diffusion_mnist_subset U-Net at 8 base channels, so a
# round fits a shared 2-core machine; --full uses the experiment's own size.
SMALL = ["model.network.base_channels=8", "model.network.num_heads=1", "model.network.norm_groups=4"]


def _build(cfg):
    import lightning as L
    from hydra.utils import instantiate

    L.seed_everything(cfg.seed, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    return dm, instantiate(cfg.model)


class _Clock:
    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def plain_loop(cfg, epochs: int, batches: int, ckpt_dir: str) -> tuple[float, float, int]:
    """The recipe's per-step work with no framework, one checkpoint per epoch."""
    from mathml.sde import drop_labels, uniform_dequantize

    dm, model = _build(cfg)
    torch.use_deterministic_algorithms(bool(cfg.trainer.deterministic))
    os.makedirs(ckpt_dir, exist_ok=True)
    opt = model.optimizer_factory(model.score_model.parameters())
    loader = dm.train_dataloader()
    g = torch.Generator().manual_seed(0)
    hp = model.hparams

    def epoch() -> int:
        n = 0
        for x, y in loader:
            y = drop_labels(y, hp.p_uncond, hp.num_classes, generator=g)
            x0 = hp.data_scale * uniform_dequantize(x, hp.num_levels, generator=g) + hp.data_shift
            loss = model.objective(lambda x_t, t: model.score_model(x_t, t, y), x0, generator=g)["loss"].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.ema.update_parameters(model.score_model)
            n += 1
            if n == batches:
                break
        torch.save({"state_dict": model.state_dict(), "optimizer": opt.state_dict()}, f"{ckpt_dir}/last.ckpt")
        return n

    epoch()  # warm-up
    clock = _Clock()
    clock.start()
    steps = sum(epoch() for _ in range(epochs))
    return (*clock.stop(), steps)


def lightning_recipe(cfg, epochs: int, batches: int, ckpt_dir: str) -> tuple[float, float, int]:
    """The recipe as users run it (step logging, EMA, one checkpoint per epoch), validation and
    the progress bar off."""
    import lightning as L
    from hydra.utils import instantiate

    from mathml_recipes.loggers import instantiate_loggers, silence_lightning_tips

    silence_lightning_tips()

    class Timer(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:  # epoch 0 is the warm-up
                self.clock, self.s0 = _Clock(), trainer.global_step
                self.clock.start()

        def on_train_end(self, trainer, pl_module):
            self.times, self.steps = self.clock.stop(), trainer.global_step - self.s0

    dm, model = _build(cfg)
    timer = Timer()
    ckpt = instantiate(cfg.callbacks.model_checkpoint, dirpath=ckpt_dir, monitor=None, filename="last",
                       save_top_k=1, save_last=False)
    # The fault-tolerance callbacks every run has (checkpoint on signal, data position, the per-step
    # non-finite check with its device sync) and the atomic checkpoint writer: their cost is the recipe's.
    from mathml_recipes.checkpoints import AtomicCheckpointIO

    safety = [instantiate(cfg.callbacks[k]) for k in ("save_on_signal", "data_position", "nonfinite_loss")]
    trainer = instantiate(cfg.trainer, max_epochs=epochs + 1, max_time=None, limit_train_batches=batches,
                          limit_val_batches=0, enable_progress_bar=False, callbacks=[timer, ckpt, *safety],
                          logger=instantiate_loggers(cfg.logger) or False, plugins=[AtomicCheckpointIO()])
    trainer.fit(model, datamodule=dm)
    return (*timer.times, timer.steps)


def throughput(args) -> None:
    torch.set_num_threads(args.threads)
    rates = {clock: {"plain": [], "recipe": []} for clock in ("wall", "cpu")}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_train(tmp, "experiment=diffusion_mnist_subset", "logger=csv", "trainer=cpu",
                            *([] if args.full else SMALL))
        for r in range(args.rounds):
            for side, run in (("plain", lambda: plain_loop(cfg, args.epochs, args.batches, f"{tmp}/plain{r}")),
                              ("recipe", lambda: lightning_recipe(cfg, args.epochs, args.batches, f"{tmp}/ckpt{r}"))):
                wall, cpu, n = run()
                rates["wall"][side].append(n / wall)
                rates["cpu"][side].append(n / cpu)
            print(f"round {r}: " + "; ".join(f"{c}: plain {v['plain'][-1]:.3f}, recipe {v['recipe'][-1]:.3f} steps/s"
                                             for c, v in rates.items()), flush=True)
    paired = {c: [rc / pl for pl, rc in zip(v["plain"], v["recipe"])] for c, v in rates.items()}
    out = {"experiment": "diffusion_mnist_subset", "overrides": [] if args.full else SMALL, "threads": args.threads,
           "batch_size": cfg.data.batch_size, "batches_per_epoch": args.batches, "timed_epochs": args.epochs,
           "steps_per_s": rates["wall"], "per_round_ratio": paired["wall"],
           "ratio_recipe_over_plain": statistics.median(paired["wall"]),
           "cpu_steps_per_s": rates["cpu"], "cpu_per_round_ratio": paired["cpu"],
           "cpu_ratio_recipe_over_plain": statistics.median(paired["cpu"])}
    _write(out, args.out or Path(__file__).parent / "results" / "diffusion_images_throughput.json")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn, device: str, repeats: int) -> float:
    """Median seconds per call over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def matmul_peak(device: str, n: int, repeats: int) -> float:
    """Measured bf16 matmul FLOP/s: 2 n³ per (n x n) @ (n x n)."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    return 2 * n**3 / _timed(lambda: a @ b, device, repeats)


def gpu(args) -> None:
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    from torch.utils.flop_counter import FlopCounterMode

    from mathml.sde import ClassifierFreeGuidance, dpm_solver_2m

    device = args.device
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    torch.set_float32_matmul_precision("high")
    if device == "cpu":
        torch.set_num_threads(args.threads)
    tiny = SMALL if args.tiny else []
    batch = args.batch or (4 if args.tiny else 128)
    sample_batch = args.sample_batch or (4 if args.tiny else 256)
    repeats = 2 if args.tiny else 10
    out = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu", "torch": torch.__version__,
           "tiny": args.tiny, "channels_last": args.channels_last,
           "precision": "bf16 autocast, TF32" if device == "cuda" else "float32",
           "train_batch": batch, "sample_batch": sample_batch}
    peak = matmul_peak(device, 256 if args.tiny else 8192, repeats)
    out["bf16_matmul_peak_tflops"] = peak / 1e12
    # bf16 autocast on the GPU; on the CPU (a check of the script) float32, as CPUs without bf16
    # units run bf16 convolutions through slow reference kernels.
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")
    with tempfile.TemporaryDirectory() as tmp:
        for exp in ("diffusion_mnist", "diffusion_cifar10"):
            cfg = compose_train(tmp, f"experiment={exp}", *tiny)
            OmegaConf.resolve(cfg)
            model = instantiate(cfg.model).to(device)
            score, shape = model.score_model, tuple(cfg.data.data_shape)
            fmt = torch.channels_last if args.channels_last else torch.contiguous_format
            score.to(memory_format=fmt)
            opt = torch.optim.Adam(score.parameters(), lr=1e-4)
            g = torch.Generator(device=device).manual_seed(0)
            x0 = torch.rand(batch, *shape, device=device).contiguous(memory_format=fmt) * 2 - 1
            y = torch.randint(0, 11, (batch,), device=device)

            def step():
                with autocast:
                    loss = model.objective(lambda x, t: score(x, t, y), x0, generator=g)["loss"].mean()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            with FlopCounterMode(display=False) as fc:
                step()
            flops = fc.get_total_flops()
            sec = _timed(step, device, repeats)
            res = {"parameters": sum(p.numel() for p in score.parameters()), "data_shape": list(shape),
                   "train_images_per_s": batch / sec, "train_step_flops": flops, "train_tflops": flops / sec / 1e12,
                   "fraction_of_bf16_matmul_peak": flops / sec / peak}
            score.eval()
            for steps in ((2, 3) if args.tiny else (10, 50)):
                labels = torch.arange(sample_batch, device=device) % 10
                guided = ClassifierFreeGuidance(score, labels, float(cfg.model.guidance_scale), 10)

                def sample():
                    with torch.no_grad(), autocast:
                        x_T = model.sde.prior_sample((sample_batch, *shape), generator=g, device=device)
                        return dpm_solver_2m(model.sde, guided, x_T, steps=steps)

                res[f"samples_per_s_{steps}_steps"] = sample_batch / _timed(sample, device, max(1, repeats // 5))
            out[exp] = res
            print(exp, json.dumps(res), flush=True)
    _write(out, args.out or Path(__file__).parent / "results" / f"diffusion_images_gpu_{device}.json")


def _write(out: dict, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", nargs="?", default="throughput", choices=["throughput", "gpu"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per round (after one warm-up epoch)")
    ap.add_argument("--batches", type=int, default=10, help="training batches per epoch")
    ap.add_argument("--full", action="store_true", help="the experiment's own U-Net size (default: 8 base channels)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    ap.add_argument("--tiny", action="store_true", help="gpu mode with 8 base channels and batch 4 (CPU check)")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--sample-batch", type=int, default=None)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    (throughput if args.mode == "throughput" else gpu)(args)


if __name__ == "__main__":
    main()
