"""Draws the README's learning curves (return vs environment steps and vs wall-clock time)
from `jaxmarl train` result files, with the evaluation package's statistics.

Usage:
    python benchmarks/plot_learning_curves.py results/*/metrics.json --out docs/curves.png
"""

from __future__ import annotations

import argparse
import re

import numpy as np

from jaxmarl_envs.algorithms.evaluation import merge_results, task_curves


def mean_elapsed(runs: dict) -> np.ndarray:
    """Mean wall-clock seconds at each logged step over runs (x axis of the time panel)."""
    per_run = []
    for run in runs.values():
        steps = sorted((k for k in run if k.startswith("step_")), key=lambda k: int(k[5:]))
        per_run.append([run[k].get("elapsed_time", np.nan) for k in steps])
    return np.nanmean(np.asarray(per_run, np.float64), axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("results", nargs="+")
    parser.add_argument("--metric", default="episode_return")
    parser.add_argument("--out", default="docs/learning_curves.png")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = merge_results(args.results)
    tasks = [(env, task) for env in sorted(data) for task in sorted(data[env])]
    fig, axes = plt.subplots(2, len(tasks), figsize=(4.2 * len(tasks), 6.4), squeeze=False)
    for col, (env, task) in enumerate(tasks):
        curves = task_curves(data, env, task, args.metric)
        for name, values in curves.values.items():
            # With few seeds a t-interval is uninformative (t_{0.975,1} = 12.7): shade the
            # range over seeds instead and say so in the legend.
            per_seed = values[:, 0, :]
            mean, lo, hi = per_seed.mean(0), per_seed.min(0), per_seed.max(0)
            runs = data[env][task][name]
            label = f"{name}: mean of {values.shape[0]} seeds, range shaded"
            for row, x in enumerate((curves.step_counts[name], mean_elapsed(runs))):
                ax = axes[row, col]
                (line,) = ax.plot(x, mean, label=label, linewidth=2)
                ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2)
        axes[0, col].set_title(task)
        axes[0, col].set_xlabel("environment steps (per seed)")
        axes[1, col].set_xlabel("wall-clock seconds (2 CPU cores, all seeds together)")
        for row in range(2):
            axes[row, col].set_ylabel(re.sub("_", " ", args.metric))
            axes[row, col].grid(alpha=0.3)
            axes[row, col].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
