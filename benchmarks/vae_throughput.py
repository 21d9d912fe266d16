"""Training throughput: the Lightning VAE recipe vs a plain PyTorch loop, same model and data.

Both sides build the model from the same experiment config (seeded identically), read batches
from the same DataModule loader, compute the same objective, and take Adam steps. The Lightning
side is the recipe as users run it (term logging, a checkpoint at every epoch end; validation and
the progress bar off); the plain loop writes the same checkpoint at every epoch end. Steps/s are timed after one warm-up epoch,
sides alternated over several rounds; the median of the per-round ratios Lightning/plain is
reported (goal >= 0.9).

    .venv/bin/python benchmarks/vae_throughput.py                       # vae_mnist (conv, 28x28)
    .venv/bin/python benchmarks/vae_throughput.py --experiment vae_digits
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


def _build(cfg):
    from hydra.utils import instantiate
    import lightning as L

    L.seed_everything(cfg.seed, verbose=False)
    dm = instantiate(cfg.data)
    dm.setup("fit")
    return dm, instantiate(cfg.model)


def plain_loop(cfg, epochs: int, device: str, ckpt_dir: str) -> tuple[float, int]:
    """A hand-written loop doing the recipe's work with no framework: the same objective and
    optimizer steps, and a checkpoint (model + optimizer state) written at every epoch end."""
    dm, model = _build(cfg)
    model = model.to(device)
    os.makedirs(ckpt_dir, exist_ok=True)
    opt = model.optimizer_factory(model.parameters())
    loader = dm.train_dataloader()
    g = torch.Generator(device=device).manual_seed(0)

    def epoch():
        n = 0
        for batch in loader:
            x = batch[0].to(device, non_blocking=True)
            terms = model.objective(x, model.encoder(x), model.decoder, model.prior(), generator=g)
            loss = terms["loss"].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n += 1
        torch.save({"state_dict": model.state_dict(), "optimizer": opt.state_dict()}, f"{ckpt_dir}/last.ckpt")
        if device == "cuda":
            torch.cuda.synchronize()
        return n

    epoch()  # warm-up
    t0 = time.perf_counter()
    steps = sum(epoch() for _ in range(epochs))
    return time.perf_counter() - t0, steps


def lightning_recipe(cfg, epochs: int, tmp: str) -> tuple[float, int]:
    from hydra.utils import instantiate
    import lightning as L

    from recipes.loggers import instantiate_loggers

    class Timer(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:  # epoch 0 is the warm-up
                self.t0, self.s0 = time.perf_counter(), trainer.global_step

        def on_train_end(self, trainer, pl_module):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.dt, self.steps = time.perf_counter() - self.t0, trainer.global_step - self.s0

    dm, model = _build(cfg)
    timer = Timer()
    ckpt = instantiate(cfg.callbacks.model_checkpoint, dirpath=tmp, monitor=None)
    trainer = instantiate(cfg.trainer, max_epochs=epochs + 1, limit_val_batches=0, enable_progress_bar=False,
                          callbacks=[ckpt, timer], logger=instantiate_loggers(cfg.logger))
    trainer.fit(model, datamodule=dm)
    return timer.dt, timer.steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", default="vae_mnist")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rates = {"plain": [], "lightning": []}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = "trainer=gpu" if args.device == "cuda" else "trainer=cpu"
        cfg = compose_train(tmp, f"experiment={args.experiment}", "logger=csv", trainer)
        for r in range(args.rounds):
            dt, n = plain_loop(cfg, args.epochs, args.device, f"{tmp}/plain{r}")
            rates["plain"].append(n / dt)
            dt, n = lightning_recipe(cfg, args.epochs, f"{tmp}/ckpt{r}")
            rates["lightning"].append(n / dt)
            print(f"round {r}: plain {rates['plain'][-1]:.1f} steps/s, lightning {rates['lightning'][-1]:.1f} steps/s", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    # Rounds are paired (plain then Lightning, back to back), so the median of per-round ratios is
    # robust to the machine's load drifting between rounds.
    paired = [lt / pl for pl, lt in zip(rates["plain"], rates["lightning"])]
    out = {"experiment": args.experiment, "device": args.device, "threads": args.threads, "batch_size": cfg.data.batch_size,
           "steps_per_s": rates, "median_steps_per_s": med, "per_round_ratio": paired,
           "ratio_lightning_over_plain": statistics.median(paired)}
    path = Path(args.out or Path(__file__).parent / "results" / f"vae_throughput_{args.experiment}_{args.device}.json")
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
