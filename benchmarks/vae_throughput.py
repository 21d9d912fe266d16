"""Training throughput: the Lightning VAE recipe vs a plain PyTorch loop, same model and data.

Both sides build the model from the same experiment config (seeded identically), read batches
from the same DataModule loader, compute the same objective, and take Adam steps. The Lightning
side is the recipe as users run it (term logging, a checkpoint at every epoch end; validation and
the progress bar off); the plain loop writes the same checkpoint at every epoch end. Steps/s are timed after one warm-up epoch,
sides alternated over several rounds; the median of the per-round ratios Lightning/plain is
reported (goal >= 0.9). Each side is timed by the wall clock and by the process's CPU time
(``time.process_time``): on a machine shared with other jobs the wall clock measures the load
as much as the code, while the CPU time of a one-thread run counts only the work done.

Both sides write one checkpoint (model + optimizer state) per epoch: the Lightning side's
ModelCheckpoint keeps only the latest (``filename=last, save_top_k=1, save_last=False``). The
recipe's default (``conf/callbacks/default.yaml``: best-by-val/loss and last.ckpt) writes a second
file whenever the monitored metric improves; ``--costs`` measures that as ``two_ckpt_files``.

    .venv/bin/python benchmarks/vae_throughput.py                       # vae_mnist (conv, 28x28)
    .venv/bin/python benchmarks/vae_throughput.py --experiment vae_digits
    .venv/bin/python benchmarks/vae_throughput.py --experiment vae_digits --costs --threads 1   # end to end, one part off at a time
    .venv/bin/python benchmarks/vae_throughput.py --experiment vae_digits --micro --threads 1   # each cost timed on its own
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


class _Clock:
    """Wall-clock and process CPU seconds since ``start()``."""

    def start(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def stop(self) -> tuple[float, float]:
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


def plain_loop(cfg, epochs: int, device: str, ckpt_dir: str) -> tuple[float, float, int]:
    """A hand-written loop doing the recipe's work with no framework: the same objective and
    optimizer steps, and a checkpoint (model + optimizer state) written at every epoch end."""
    dm, model = _build(cfg)
    model = model.to(device)
    # The trainer sets this global flag from its config; the plain loop runs under the same one.
    torch.use_deterministic_algorithms(bool(cfg.trainer.deterministic))
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
    clock = _Clock()
    clock.start()
    steps = sum(epoch() for _ in range(epochs))
    return (*clock.stop(), steps)


# --costs: the recipe with one part removed (or added: "+") at a time; the per-step difference to
# the recipe is that part's cost. "bare" is Lightning's own loop alone: the plain loop's step as
# training_step, no logging, no logger, no checkpoint.
VARIANTS = ("recipe", "no_step_log", "no_logger", "no_checkpoint", "not_deterministic", "one_generator", "bare",
            "+two_ckpt_files", "+progress_bar")


def _bare_step(self, batch, batch_idx):
    x = batch[0]
    return self.objective(x, self.encoder(x), self.decoder, self.prior(), generator=self._bench_g)["loss"].mean()


def lightning_recipe(cfg, epochs: int, tmp: str, variant: str = "recipe") -> tuple[float, float, int]:
    import types

    from hydra.utils import instantiate
    import lightning as L

    from mathml_recipes.loggers import instantiate_loggers, silence_lightning_tips

    silence_lightning_tips()

    class Timer(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:  # epoch 0 is the warm-up
                self.clock, self.s0 = _Clock(), trainer.global_step
                self.clock.start()

        def on_train_end(self, trainer, pl_module):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.times, self.steps = self.clock.stop(), trainer.global_step - self.s0

    dm, model = _build(cfg)
    timer = Timer()
    callbacks = [timer]
    if variant == "+two_ckpt_files":  # the default's best-* and last.ckpt (best = latest without a monitor)
        callbacks.append(instantiate(cfg.callbacks.model_checkpoint, dirpath=tmp, monitor=None))
    elif variant not in ("no_checkpoint", "bare"):  # one file per epoch, as the plain loop
        callbacks.append(instantiate(cfg.callbacks.model_checkpoint, dirpath=tmp, monitor=None, filename="last",
                                     save_top_k=1, save_last=False))
    if variant == "+progress_bar":
        callbacks.append(instantiate(cfg.callbacks.progress_bar))
    loggers = [] if variant in ("no_logger", "bare") else instantiate_loggers(cfg.logger)
    extra = {}
    if variant == "no_step_log":
        extra["log_every_n_steps"] = 10**9  # the recipe logs step values only every n steps
    if variant == "not_deterministic":
        extra["deterministic"] = False
    if variant in ("one_generator", "bare"):
        model._bench_g = torch.Generator().manual_seed(0)
        model._generator = lambda stage: model._bench_g  # one generator, as the plain loop
    if variant == "bare":
        model.training_step = types.MethodType(_bare_step, model)
        model.on_train_epoch_end = lambda: None
    trainer = instantiate(cfg.trainer, max_epochs=epochs + 1, limit_val_batches=0,
                          enable_progress_bar=variant == "+progress_bar",
                          enable_checkpointing=variant not in ("no_checkpoint", "bare"),
                          callbacks=callbacks, logger=loggers or False, **extra)
    trainer.fit(model, datamodule=dm)
    return (*timer.times, timer.steps)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--experiment", default="vae_mnist")
    ap.add_argument("--epochs", type=int, default=2, help="timed epochs per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--out", default=None)
    ap.add_argument("--costs", action="store_true", help="time the recipe with each part removed or added")
    ap.add_argument("--micro", action="store_true", help="time each per-step cost on its own (CPU time)")
    args = ap.parse_args()
    if args.costs:
        return costs(args)
    if args.micro:
        return micro(args)
    torch.set_num_threads(args.threads)
    rates = {clock: {"plain": [], "lightning": []} for clock in ("wall", "cpu")}
    with tempfile.TemporaryDirectory() as tmp:
        trainer = "trainer=gpu" if args.device == "cuda" else "trainer=cpu"
        cfg = compose_train(tmp, f"experiment={args.experiment}", "logger=csv", trainer)
        for r in range(args.rounds):
            for side, run in (("plain", lambda: plain_loop(cfg, args.epochs, args.device, f"{tmp}/plain{r}")),
                              ("lightning", lambda: lightning_recipe(cfg, args.epochs, f"{tmp}/ckpt{r}"))):
                wall, cpu, n = run()
                rates["wall"][side].append(n / wall)
                rates["cpu"][side].append(n / cpu)
            print(f"round {r}: " + "; ".join(f"{c}: plain {v['plain'][-1]:.1f}, lightning {v['lightning'][-1]:.1f} steps/s"
                                             for c, v in rates.items()), flush=True)
    # Rounds are paired (plain then Lightning, back to back), so the median of per-round ratios is
    # robust to the machine's load drifting between rounds.
    paired = {c: [lt / pl for pl, lt in zip(v["plain"], v["lightning"])] for c, v in rates.items()}
    out = {"experiment": args.experiment, "device": args.device, "threads": args.threads, "batch_size": cfg.data.batch_size,
           "steps_per_s": rates["wall"], "median_steps_per_s": {k: statistics.median(v) for k, v in rates["wall"].items()},
           "per_round_ratio": paired["wall"], "ratio_lightning_over_plain": statistics.median(paired["wall"]),
           "cpu_steps_per_s": rates["cpu"], "cpu_per_round_ratio": paired["cpu"],
           "cpu_ratio_lightning_over_plain": statistics.median(paired["cpu"])}
    path = Path(args.out or Path(__file__).parent / "results" / f"vae_throughput_{args.experiment}_{args.device}.json")
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


def costs(args) -> None:
    """Per-step cost of each part of the recipe, in wall and CPU milliseconds: the recipe's time per
    step minus the time with that part removed (or, for "+" variants, the time with it added minus
    the recipe's), paired within a round (all variants back to back), median over rounds."""
    torch.set_num_threads(args.threads)
    ms = {clock: {v: [] for v in ("plain", *VARIANTS)} for clock in ("wall", "cpu")}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_train(tmp, f"experiment={args.experiment}", "logger=csv", "trainer=cpu")
        for r in range(args.rounds):
            runs = [("plain", lambda: plain_loop(cfg, args.epochs, "cpu", f"{tmp}/plain{r}"))]
            runs += [(v, lambda v=v: lightning_recipe(cfg, args.epochs, f"{tmp}/{v}{r}", v)) for v in VARIANTS]
            for name, run in runs:
                wall, cpu, n = run()
                ms["wall"][name].append(1e3 * wall / n)
                ms["cpu"][name].append(1e3 * cpu / n)
            print(f"round {r} (cpu ms/step): " + ", ".join(f"{k} {x[-1]:.2f}" for k, x in ms["cpu"].items()), flush=True)
    med = statistics.median
    out = {"experiment": args.experiment, "threads": args.threads, "epochs_per_round": args.epochs, "ms_per_step": ms}
    for clock, t in ms.items():
        sign = {v: (-1 if v.startswith("+") else 1) for v in VARIANTS[1:]}
        out[clock] = {
            "median_ms_per_step": {k: med(x) for k, x in t.items()},
            "cost_ms_per_step": {v: sign[v] * med([a - b for a, b in zip(t["recipe"], t[v])]) for v in VARIANTS[1:]},
            "lightning_loop_ms_per_step": med([a - b for a, b in zip(t["bare"], t["plain"])]),
            "recipe_minus_plain_ms_per_step": med([a - b for a, b in zip(t["recipe"], t["plain"])]),
            "ratio_recipe_over_plain": med([p / a for a, p in zip(t["recipe"], t["plain"])]),
        }
    path = Path(args.out or Path(__file__).parent / "results" / f"vae_throughput_costs_{args.experiment}.json")
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps({k: v for k, v in out.items() if k != "ms_per_step"}, indent=2))


def _cpu_ms(fn, n: int, repeats: int = 5) -> float:
    """Median over ``repeats`` of the CPU milliseconds per call of ``fn`` (n calls each)."""
    out = []
    for _ in range(repeats):
        t = time.process_time()
        for _ in range(n):
            fn()
        out.append(1e3 * (time.process_time() - t) / n)
    return statistics.median(out)


def micro(args) -> None:
    """Each per-step cost of the recipe timed on its own, in CPU ms (robust to a shared machine):
    Lightning's loop around a trivial step, one ``self.log`` call, the checkpoint each side writes
    per epoch, the recipe's per-step generator and term accumulation, deterministic algorithms."""
    import hydra.utils
    import lightning as L

    from mathml_recipes.loggers import silence_lightning_tips
    from mathml_recipes.term_means import TermMeans

    silence_lightning_tips()

    torch.set_num_threads(args.threads)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        cfg = compose_train(tmp, f"experiment={args.experiment}", "logger=csv", "trainer=cpu")
        steps_per_epoch = len(_build(cfg)[0].train_dataloader())

        # 1. Lightning's loop: a 1-parameter model, 1 batch of 1 number per step, 400 steps, vs the same plain loop.
        class Tiny(L.LightningModule):
            def __init__(self, n_logs: int = 0):
                super().__init__()
                self.w, self.n_logs = torch.nn.Parameter(torch.zeros(1)), n_logs

            def training_step(self, batch, batch_idx):
                loss = (self.w * batch[0]).pow(2).mean()
                for i in range(self.n_logs):
                    self.log(f"m{i}", loss.detach(), on_step=True, on_epoch=False)
                return loss

            def configure_optimizers(self):
                return torch.optim.Adam(self.parameters())

        data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(400, 1)), batch_size=1)

        def fit(n_logs: int, bar: bool = False, epochs: int = 1) -> float:
            callbacks = [hydra.utils.instantiate(cfg.callbacks.progress_bar)] if bar else []
            trainer = L.Trainer(max_epochs=epochs, limit_train_batches=len(data) // epochs, logger=False, enable_checkpointing=False, enable_progress_bar=bar,
                                enable_model_summary=False, accelerator="cpu", deterministic=True,
                                default_root_dir=tmp, log_every_n_steps=1, callbacks=callbacks)
            t = time.process_time()
            trainer.fit(Tiny(n_logs), data)
            return 1e3 * (time.process_time() - t) / len(data)

        def plain_tiny() -> float:
            model = Tiny()
            opt = torch.optim.Adam(model.parameters())
            t = time.process_time()
            for batch in data:
                loss = model.training_step(batch, 0)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            return 1e3 * (time.process_time() - t) / len(data)

        rounds = [(fit(0), plain_tiny(), fit(6), fit(0, bar=True), fit(0, epochs=len(data) // steps_per_epoch))
                  for _ in range(args.rounds)]
        out["lightning_loop_ms_per_step"] = statistics.median(r[0] - r[1] for r in rounds)
        out["self_log_ms_per_call"] = statistics.median((r[2] - r[0]) / 6 for r in rounds)
        out["rich_progress_bar_ms_per_step"] = statistics.median(r[3] - r[0] for r in rounds)
        # The same 400 steps cut into epochs of the VAE's length: Lightning's cost per epoch, per step.
        out["lightning_epoch_ms_per_step"] = statistics.median(r[4] - r[0] for r in rounds)

        # 2. Checkpoints: Lightning's (trainer.save_checkpoint) and the plain loop's, for the VAE.
        dm, model = _build(cfg)
        trainer = L.Trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=0, logger=False,
                            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                            accelerator="cpu", default_root_dir=tmp)
        trainer.fit(model, datamodule=dm)
        opt = trainer.optimizers[0]
        out["lightning_checkpoint_ms"] = _cpu_ms(lambda: trainer.save_checkpoint(f"{tmp}/l.ckpt"), 10)
        out["plain_checkpoint_ms"] = _cpu_ms(
            lambda: torch.save({"state_dict": model.state_dict(), "optimizer": opt.state_dict()}, f"{tmp}/p.ckpt"), 10)
        out["checkpoint_bytes"] = {"lightning": os.path.getsize(f"{tmp}/l.ckpt"), "plain": os.path.getsize(f"{tmp}/p.ckpt")}

        # 3. The recipe's per-step extras.
        out["generator_ms"] = _cpu_ms(lambda: model._generator(0), 2000)
        x = next(iter(dm.train_dataloader()))[0]
        terms = {k: v.detach() for k, v in model._terms(x, model._generator(0)).items()}
        means = TermMeans()
        out["term_means_update_ms"] = _cpu_ms(lambda: means.update(terms), 2000)

        # 4. Deterministic algorithms on a VAE step (forward, backward, Adam).
        def step():
            loss = model._terms(x, model._generator(0))["loss"].mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        det = []
        for _ in range(args.rounds):
            torch.use_deterministic_algorithms(True)
            on = _cpu_ms(step, 50, 1)
            torch.use_deterministic_algorithms(False)
            det.append(on - _cpu_ms(step, 50, 1))
        out["deterministic_ms_per_step"] = statistics.median(det)
        out["vae_step_ms"] = _cpu_ms(step, 50, 3)
    out["steps_per_epoch"] = steps_per_epoch
    out["per_step_ms"] = {
        "lightning_loop": out["lightning_loop_ms_per_step"],
        "extra_checkpoint_bytes_and_state": (out["lightning_checkpoint_ms"] - out["plain_checkpoint_ms"]) / steps_per_epoch,
        "generator": out["generator_ms"],
        "term_means": out["term_means_update_ms"],
        "deterministic": out["deterministic_ms_per_step"],
        "six_self_log_calls_every_10_steps": 6 * out["self_log_ms_per_call"] / 10,
        "lightning_epoch_turnover": out["lightning_epoch_ms_per_step"],
        "five_epoch_self_log_calls_per_epoch": 5 * out["self_log_ms_per_call"] / steps_per_epoch,
        "rich_progress_bar": out["rich_progress_bar_ms_per_step"],
        "second_checkpoint_file_each_epoch": out["lightning_checkpoint_ms"] / steps_per_epoch,
    }
    out.update(experiment=args.experiment, threads=args.threads, rounds=args.rounds)
    path = Path(args.out or Path(__file__).parent / "results" / f"vae_throughput_micro_{args.experiment}.json")
    path.write_text(json.dumps(out, indent=2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
