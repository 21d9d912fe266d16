"""mathml-report: gather the ``metrics.json`` of a sweep into one table (Markdown and CSV) and a plot.

    mathml-train -m seed=0,1,2 objective.beta=1,4      # a sweep: multirun/<date>/<time>_<uid>/<job>/
    mathml-report multirun/<date>/<time>_<uid>           # report.md, report.csv, report.png there
    mathml-report SWEEP --out reports/ --metrics test/nll_nats,test/bits_per_dim --group-by objective.beta

Every job folder under the sweep folder (a folder holding ``.hydra/overrides.yaml`` or
``metrics.json``) is one run. Runs are grouped by their command-line overrides minus ``seed`` (or
by the values of the ``--group-by`` keys, read from the overrides, else from the job's
``.hydra/config.yaml``), and each metric is reported per group as mean ± sd over the runs (the
seeds) with n: the sample standard deviation (ddof = 1); a group of one run has no sd ("–").
Runs without ``metrics.json`` (failed or unfinished) are listed as such. Bad arguments, a missing
folder or a folder with no runs stop with a one-line error and exit code 2.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mathml_scripts.sample import OneLineParser, UsageError

DASH = "–"


@dataclass
class Run:
    """One job of a sweep: its folder, its overrides (``key=value`` strings, ``seed`` included) and
    its final metrics (``None`` when the job wrote no ``metrics.json``)."""

    folder: Path
    overrides: list[str]
    metrics: dict[str, float] | None


@dataclass
class Group:
    """Runs that differ only in their seed: ``label`` names the setting, ``stats`` maps each
    metric to ``(n, mean, sd)`` with ``sd = None`` when ``n < 2``, ``values`` to the per-run values."""

    label: str
    runs: list[Run]
    stats: dict[str, tuple[int, float, float | None]] = field(default_factory=dict)
    values: dict[str, list[float]] = field(default_factory=dict)


def _key(override: str) -> str:
    """The config key of an override string: ``+a.b=1`` / ``++a.b=1`` / ``~a.b`` -> ``a.b``."""
    return override.split("=", 1)[0].lstrip("+~")


def _load_yaml(path: Path):
    from omegaconf import OmegaConf

    return OmegaConf.load(path)


def collect_runs(sweep_dir: str | os.PathLike) -> list[Run]:
    """Every run under ``sweep_dir``, sorted by folder: a folder holding ``metrics.json`` or
    ``.hydra/overrides.yaml`` (Hydra multirun: ``multirun/<date>/<time>_<uid>/<job num>/``)."""
    root = Path(sweep_dir)
    if not root.is_dir():
        raise UsageError(f"sweep dir {str(root)!r} does not exist or is not a folder "
                         f"(expected a Hydra multirun folder such as multirun/<date>/<time>_<uid>)")
    folders = {p.parent for p in root.rglob("metrics.json")}
    folders |= {p.parent.parent for p in root.rglob(".hydra/overrides.yaml")}
    runs = []
    for folder in sorted(folders, key=lambda f: [int(s) if s.isdigit() else s for s in f.relative_to(root).parts]):
        overrides_file = folder / ".hydra" / "overrides.yaml"
        overrides = [str(o) for o in _load_yaml(overrides_file)] if overrides_file.is_file() else []
        metrics = None
        if (folder / "metrics.json").is_file():
            summary = json.loads((folder / "metrics.json").read_text())
            metrics = {k: float(v) for k, v in summary.get("metrics", {}).items()}
        runs.append(Run(folder, overrides, metrics))
    return runs


def _lookup(run: Run, key: str) -> str | None:
    """The value of config key ``key`` for ``run``: from its overrides, else its saved config."""
    for o in run.overrides:
        if _key(o) == key and "=" in o:
            return o.split("=", 1)[1]
    config = run.folder / ".hydra" / "config.yaml"
    if config.is_file():
        from omegaconf import OmegaConf

        value = OmegaConf.select(_load_yaml(config), key, default=None, throw_on_resolution_failure=False)
        if value is not None:
            return str(OmegaConf.to_container(value) if OmegaConf.is_config(value) else value)
    return None


def group_runs(runs: list[Run], group_by: list[str] | None = None) -> list[Group]:
    """Group ``runs``: by their overrides minus ``seed`` (labelled by the overrides that differ
    between groups), or by the values of the ``group_by`` config keys. Groups keep the order of
    their first run."""
    if group_by:
        for key in group_by:
            if all(_lookup(r, key) is None for r in runs):
                raise UsageError(f"--group-by: no run sets the config key {key!r} (in its overrides or .hydra/config.yaml)")
        keyed = [(tuple(f"{k}={_lookup(r, k)}" for k in group_by), r) for r in runs]
    else:
        keyed = [(tuple(sorted(o for o in r.overrides if _key(o) != "seed")), r) for r in runs]
    common = set.intersection(*(set(k) for k, _ in keyed)) if keyed and not group_by else set()
    groups: dict[tuple, Group] = {}
    for k, r in keyed:
        if k not in groups:
            label = " ".join(o for o in k if o not in common) or "all runs"
            groups[k] = Group(label, [])
        groups[k].runs.append(r)
    return list(groups.values())


def summarize(groups: list[Group], metrics: list[str]) -> None:
    """Fill each group's ``values`` and ``stats`` (n, mean, sd with ddof = 1) for ``metrics``,
    over the runs of the group that report the metric (non-finite values included as they are)."""
    for g in groups:
        for m in metrics:
            xs = [r.metrics[m] for r in g.runs if r.metrics is not None and m in r.metrics]
            g.values[m] = xs
            n = len(xs)
            mean = math.fsum(xs) / n if n else math.nan
            sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else None
            g.stats[m] = (n, mean, sd)


def _fmt(x: float | None) -> str:
    return DASH if x is None else f"{x:.6g}"


def write_report(groups: list[Group], metrics: list[str], runs: list[Run], out_dir: str | os.PathLike,
                 *, sweep_dir: str | os.PathLike = "") -> dict[str, str]:
    """Write ``report.md``, ``report.csv`` and ``report.png`` into ``out_dir``; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": str(out / "report.md"), "csv": str(out / "report.csv"), "plot": str(out / "report.png")}

    header = ["setting", "runs"] + [f"{m} (mean ± sd, n)" for m in metrics]
    lines = [f"# Sweep report: {sweep_dir}", "",
             f"{len(runs)} runs, {sum(r.metrics is None for r in runs)} without metrics.json; "
             "mean ± sd over the runs of each setting (sd with ddof = 1; – for a single run).", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for g in groups:
        cells = [g.label.replace("|", "\\|"), str(len(g.runs))]
        for m in metrics:
            n, mean, sd = g.stats[m]
            cells.append(f"{_fmt(mean)} ± {_fmt(sd)} (n={n})" if n else f"{DASH} (n=0)")
        lines.append("| " + " | ".join(cells) + " |")
    failed = [r for r in runs if r.metrics is None]
    if failed:
        lines += ["", "## Runs without metrics.json (failed or unfinished)", ""]
        lines += [f"- `{r.folder}`: {' '.join(r.overrides) or '(no overrides)'}" for r in failed]
    Path(paths["markdown"]).write_text("\n".join(lines) + "\n")

    with open(paths["csv"], "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["setting", "runs", "failed"] + [f"{m}_{s}" for m in metrics for s in ("n", "mean", "sd")])
        for g in groups:
            row = [g.label, len(g.runs), sum(r.metrics is None for r in g.runs)]
            for m in metrics:
                n, mean, sd = g.stats[m]
                row += [n, "" if not n else repr(mean), "" if sd is None else repr(sd)]
            w.writerow(row)

    _plot(groups, metrics, paths["plot"])
    return paths


def _plot(groups: list[Group], metrics: list[str], path: str) -> None:
    """One panel per metric: each setting's runs as dots and its mean ± sd as an error bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(metrics), 1, figsize=(max(4.0, 1.2 * len(groups) + 2), 2.6 * len(metrics)),
                             squeeze=False, dpi=100)
    for ax, m in zip(axes[:, 0], metrics):
        for i, g in enumerate(groups):
            n, mean, sd = g.stats[m]
            if not n:
                continue
            ax.plot([i] * n, g.values[m], "o", ms=3, color="0.6", zorder=1)
            ax.errorbar([i], [mean], yerr=[sd or 0.0], fmt="s", color="C0", capsize=4, zorder=2)
        ax.set_ylabel(m, fontsize=8)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([g.label for g in groups], fontsize=7, rotation=20, ha="right")
        ax.set_xlim(-0.5, len(groups) - 0.5)
    axes[0, 0].set_title("mean ± sd over seeds (grey: single runs)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _parser() -> OneLineParser:
    p = OneLineParser(prog="mathml-report", description="Mean ± sd over seeds of a sweep's metrics: report.md, "
                      "report.csv and report.png.", epilog="Example: mathml-report multirun/<date>/<time>_<uid> "
                      "--metrics test/nll_nats --group-by objective.beta")
    p.add_argument("sweep_dir", help="a sweep folder written by `mathml-train -m ...` (multirun/<date>/<time>_<uid>)")
    p.add_argument("--out", default=None, help="folder for report.md/.csv/.png (default: the sweep folder)")
    p.add_argument("--metrics", default=None, help="comma-separated metrics (default: every metric of the runs)")
    p.add_argument("--group-by", default=None, help="comma-separated config keys to group by "
                   "(default: the overrides minus seed)")
    return p


def report(argv: list[str] | None = None) -> dict[str, str]:
    """Run mathml-report on ``argv`` (the command-line arguments); return the paths written."""
    args = _parser().parse_args(argv)
    runs = collect_runs(args.sweep_dir)
    if not runs:
        raise UsageError(f"no runs under {args.sweep_dir!r}: no metrics.json or .hydra/overrides.yaml in any "
                         f"folder below it (is it the folder `mathml-train -m` printed?)")
    done = [r for r in runs if r.metrics is not None]
    available = sorted({m for r in done for m in r.metrics})
    if args.metrics:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        unknown = [m for m in metrics if m not in available]
        if unknown:
            raise UsageError(f"--metrics: {', '.join(unknown)} not reported by any run; available: "
                             f"{', '.join(available) or '(none: no run wrote metrics.json)'}")
    else:
        metrics = available
    if not metrics:
        raise UsageError(f"no run under {args.sweep_dir!r} finished: {len(runs)} runs, none wrote metrics.json")
    group_by = [k.strip() for k in args.group_by.split(",") if k.strip()] if args.group_by else None
    groups = group_runs(runs, group_by)
    summarize(groups, metrics)
    paths = write_report(groups, metrics, runs, args.out or args.sweep_dir, sweep_dir=args.sweep_dir)
    print(Path(paths["markdown"]).read_text())
    for name, path in paths.items():
        print(f"{name}: {path}")
    return paths


def main(argv: list[str] | None = None) -> None:
    """Console entry point: errors are one line on stderr with exit code 2."""
    try:
        report(argv)
    except UsageError as e:
        print(f"mathml-report: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
