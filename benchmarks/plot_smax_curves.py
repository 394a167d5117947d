"""SMAX learning curves (issue 21): win rate vs environment steps and vs wall-clock time, per
task and algorithm, as the IQM over seeds with 95% stratified-bootstrap intervals from the
evaluation package; prints the table of final and absolute-metric win rates.

Usage (the `metrics.json` of `jaxmarl train ... --seeds 3` runs):
    python benchmarks/plot_smax_curves.py runs/*/metrics.json --out benchmarks/smax_curves.png
"""

from __future__ import annotations

import argparse

import numpy as np
from plot_learning_curves import mean_elapsed  # benchmarks/ is on sys.path when run

from jaxmarl_envs.algorithms.evaluation import merge_results, task_curves
from jaxmarl_envs.algorithms.evaluation.processing import natural_key
from jaxmarl_envs.algorithms.evaluation.statistics import (
    bootstrap_interval,
    metric_statistic,
    sample_efficiency_curves,
)

#: One colour per algorithm across every panel.
COLOURS = {"ippo": "C0", "mappo": "C1", "rec_ippo": "C2", "rec_mappo": "C3"}


def _absolute(runs: dict, metric: str) -> np.ndarray | None:
    """Per-run mean absolute-metric value `(R, 1)`, or None when not logged."""
    if not all(metric in r.get("absolute_metrics", {}) for r in runs.values()):
        return None
    rows = [np.mean(r["absolute_metrics"][metric]) for r in runs.values()]
    return np.asarray(rows, np.float64)[:, None]


def _fmt(point, lower, upper) -> str:
    if np.isfinite(lower) and np.isfinite(upper):
        return f"{point:.2f} [{lower:.2f}, {upper:.2f}]"
    return f"{point:.2f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="+")
    parser.add_argument("--out", default="benchmarks/smax_curves.png")
    parser.add_argument("--reps", type=int, default=2000)
    parser.add_argument("--metric", default="win_rate", help="win_rate or episode_return")
    parser.add_argument(
        "--save-compact",
        metavar="FILE",
        help="also write the merged results with every per-episode list replaced by its mean "
        "(a few KB, enough to redraw the figure and the table)",
    )
    parser.add_argument(
        "--per-seed",
        action="store_true",
        help="also print each run's value at every evaluation (and its absolute metric)",
    )
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    data = merge_results(args.results)
    if args.save_compact:
        import json

        def compact(x):
            if isinstance(x, dict):
                return {k: compact(v) for k, v in x.items()}
            if isinstance(x, list):
                return [float(np.mean(x))]
            return x

        with open(args.save_compact, "w") as f:
            json.dump(compact(data), f, indent=1)
    tasks = [(env, task) for env in sorted(data) for task in sorted(data[env])]
    fig, axes = plt.subplots(2, len(tasks), figsize=(3.6 * len(tasks), 5.6), squeeze=False)
    iqm = metric_statistic("iqm")
    label = args.metric.replace("_", " ")
    # The table also carries the final evaluation return when the figure shows another metric.
    extra = "episode_return" if args.metric != "episode_return" else None
    extra_head = "| final return IQM [95% CI] " if extra else ""
    print(
        f"| task | algorithm | seeds | steps per seed | final {label} IQM [95% CI] "
        f"| absolute {label} IQM [95% CI] {extra_head}| wall-clock s (first to last evaluation) |"
    )
    print("|---" * (8 if extra else 7) + "|")
    for col, (env, task) in enumerate(tasks):
        curves = task_curves(data, env, task, args.metric)
        bands = sample_efficiency_curves(curves.values, "iqm", reps=args.reps)
        extra_bands = {}
        if extra:
            extra_curves = task_curves(data, env, task, extra)
            extra_bands = sample_efficiency_curves(extra_curves.values, "iqm", reps=args.reps)
        for name, (point, lower, upper) in bands.items():
            runs = data[env][task][name]
            seeds = curves.values[name].shape[0]
            x_steps, x_time = curves.step_counts[name], mean_elapsed(runs)
            for row, x in enumerate((x_steps, x_time)):
                ax = axes[row, col]
                (line,) = ax.plot(
                    x, point, color=COLOURS.get(name), label=f"{name} (IQM of {seeds})", linewidth=2
                )
                ax.fill_between(x, lower, upper, color=line.get_color(), alpha=0.2)
            absolute = _absolute(runs, args.metric)
            abs_text = "-"
            if absolute is not None:
                abs_text = _fmt(*bootstrap_interval(absolute, iqm, reps=args.reps))
            extra_text = ""
            if extra:
                e_point, e_lower, e_upper = extra_bands[name]
                extra_text = f"{_fmt(e_point[-1], e_lower[-1], e_upper[-1])} | "
            print(
                f"| {task} | {name} | {seeds} | {int(x_steps[-1]):,} | "
                f"{_fmt(point[-1], lower[-1], upper[-1])} | {abs_text} | {extra_text}"
                f"{x_time[-1]:.0f} |"
            )
        axes[0, col].set_title(task)
        axes[0, col].set_xlabel("environment steps (per seed)")
        # Millions on the step axis: matplotlib's plain labels of 6-7 digits run into each other.
        axes[0, col].xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x / 1e6:g}M"))
        axes[1, col].set_xlabel("wall-clock s after 1st eval (all seeds)")
        for row in range(2):
            axes[row, col].set_ylabel(label)
            if args.metric == "win_rate":
                axes[row, col].set_ylim(-0.02, 1.02)
            axes[row, col].grid(alpha=0.3)
            axes[row, col].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"SMAX vs heuristic enemy: IQM {label}\n(95% stratified-bootstrap CI)", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=72)
    print(f"wrote {args.out}")
    if args.per_seed:
        for env, task in tasks:
            curves = task_curves(data, env, task, args.metric)
            for name, values in curves.values.items():
                steps = curves.step_counts[name] / 1e6
                every = f" (every {steps[1] - steps[0]:.2f}M)" if len(steps) > 1 else ""
                print(f"    {name} {task}  steps {steps[0]:.2f}M .. {steps[-1]:.2f}M{every}")
                runs = data[env][task][name]
                for run, row in zip(sorted(runs, key=natural_key), values[:, 0], strict=True):
                    absolute = runs[run].get("absolute_metrics", {}).get(args.metric)
                    tail = f" | absolute {np.mean(absolute):.3f}" if absolute is not None else ""
                    print(f"       {run} " + " ".join(f"{v:.2f}" for v in row) + tail)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
