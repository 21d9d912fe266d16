"""mathml-plan: solve a tabular MDP from a Hydra config and write plots and metrics.

    mathml-plan                                             # FrozenLake 8x8, value iteration
    mathml-plan mdp=slippery_gridworld mdp.L=100 algorithm=modified_policy_iteration
    mathml-plan mdp=random_sparse mdp.num_states=100000 algorithm=policy_iteration
    mathml-plan algorithm=soft_value_iteration algorithm.tau=0.1 logger=many
    mathml-plan --help

``plan(cfg) -> dict`` is a plain function; ``main`` is its ``@hydra.main`` wrapper. Writes into
the run dir: metrics.json, convergence.png (residual history, log scale) and, for grid worlds,
values.png (value heatmap with greedy-policy arrows).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hydra
from omegaconf import DictConfig, OmegaConf

import mathml_recipes.cluster  # noqa: F401 - registers ${mathml.uid:} (run folders, conf/hydra) before Hydra composes

if TYPE_CHECKING:  # torch is imported where used, so `mathml-plan --help` answers without loading it
    import torch


def seeded_generator(seed: int, device: str = "cpu") -> torch.Generator:
    """A torch.Generator seeded with ``seed`` (for configs: randomness is injected, never global)."""
    import torch

    return torch.Generator(device).manual_seed(int(seed))


def _plot_convergence(residuals: list[float], path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.semilogy(range(1, len(residuals) + 1), [max(r, 1e-300) for r in residuals])
    ax.set_xlabel("iteration")
    ax.set_ylabel("residual (span / bound)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_values(V: torch.Tensor, policy: torch.Tensor, shape, moves, path: str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    rows, cols = shape
    v = V[: rows * cols].reshape(rows, cols).cpu().numpy()
    fig, ax = plt.subplots(figsize=(min(2 + cols * 0.6, 12), min(1.5 + rows * 0.6, 10)))
    im = ax.imshow(v, cmap="viridis")
    fig.colorbar(im, ax=ax, label="V*(s)")
    if rows * cols <= 1600:  # arrows only while readable
        pi = policy[: rows * cols].reshape(rows, cols).cpu()
        d = torch.tensor(moves, dtype=torch.float64)[pi]  # (rows, cols, 2) as (d_row, d_col)
        yy, xx = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
        ax.quiver(xx, yy, d[..., 1], -d[..., 0], color="white", pivot="middle", scale=1.6 * max(rows, cols), width=0.004)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plan(cfg: DictConfig) -> dict[str, Any]:
    """Build the MDP and the algorithm from ``cfg``, solve, log, plot; return the metrics."""
    from hydra.utils import instantiate

    from mathml_recipes.loggers import instantiate_loggers

    out_dir = cfg.paths.output_dir
    os.makedirs(out_dir, exist_ok=True)
    mdp = instantiate(cfg.mdp)
    if cfg.get("device", "cpu") != "cpu":
        mdp = mdp.to(cfg.device)
    algorithm = instantiate(cfg.algorithm)
    name = cfg.algorithm._target_.rsplit(".", 1)[-1]
    t0 = time.perf_counter()
    res = algorithm(mdp)
    wall = time.perf_counter() - t0
    metrics = {
        "S": mdp.num_states, "A": mdp.num_actions, "gamma": float(mdp.gamma.max()), "algorithm": name,
        "iterations": res.iterations, "wall_s": wall, "error_bound": res.max_error_bound,
        "policy_error_bound": res.max_policy_error_bound,
        "converged": res.converged, "V_mean": float(res.V.mean()), "V_max": float(res.V.max()),
    }
    paths = {"metrics": os.path.join(out_dir, "metrics.json")}
    paths["convergence"] = os.path.join(out_dir, "convergence.png")
    _plot_convergence(res.residuals, paths["convergence"], f"{name} on S={mdp.num_states}")
    if mdp.grid_shape is not None and mdp.num_states <= cfg.get("max_heatmap_states", 250_000):
        paths["values"] = os.path.join(out_dir, "values.png")
        policy = res.policy[0] if res.policy.dim() > 1 else res.policy  # stage 0 for backward induction
        _plot_values(res.V, policy, mdp.grid_shape, mdp.grid_moves, paths["values"], f"V* and greedy policy ({name})")
    with open(paths["metrics"], "w") as f:
        json.dump({**metrics, "paths": paths}, f, indent=1)
    for logger in instantiate_loggers(cfg.get("logger")):
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        for step, r in enumerate(res.residuals):
            logger.log_metrics({"residual": r}, step=step)
        logger.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
                           step=len(res.residuals))
        logger.save()
        logger.finalize("success")
    _print_summary(metrics, paths)
    return {**metrics, "paths": paths}


def _print_summary(metrics: dict[str, Any], paths: dict[str, str]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="mathml-plan")
    table.add_column("quantity")
    table.add_column("value")
    for key in ("S", "A", "gamma", "algorithm", "iterations", "wall_s", "error_bound", "policy_error_bound"):
        v = metrics[key]
        table.add_row(key, f"{v:.4g}" if isinstance(v, float) else str(v))
    for key, p in paths.items():
        table.add_row(key, p)
    Console().print(table)


# conf_plan/ holds only the planning groups (mdp, algorithm) and links to the shared ones (logger,
# paths, hydra) in conf/, so `mathml-plan --help` lists planning groups and `mathml-train --help` none
# of them. An absolute path: "../conf_plan" would resolve as a Python module when run as the console script.
_CONF = str(Path(__file__).resolve().parents[1] / "conf_plan")


@hydra.main(version_base="1.3", config_path=_CONF, config_name="plan")
def main(cfg: DictConfig) -> None:
    plan(cfg)


if __name__ == "__main__":
    main()
