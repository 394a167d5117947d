"""Sebulba against Anakin: IPPO learning curves on our `lbf-8x8-2p-2f-coop`, same PPO config,
equal step counts, IQM over seeds with stratified-bootstrap CIs (`algorithms.evaluation`).

Anakin trains its seeds together (`--seeds N`, vmapped, one jitted loop); Sebulba trains one
seed per run, stepping the environment through our Gymnasium vector adapter (one jitted call
per batch step) in actor threads while the learner runs the same `PPOLearner` update. Both
derive the same evaluation points from the same config, so step k of one is step k of the other.

Usage:
    nice -n 5 python benchmarks/sebulba_vs_anakin.py run --out /tmp/sva --seeds 3 --anakin-seeds 5
    python benchmarks/sebulba_vs_anakin.py analyse /tmp/sva \
        --plot benchmarks/sebulba_vs_anakin.png --json benchmarks/sebulba_vs_anakin.json

`run` trains Anakin (all seeds in one process) and then Sebulba (one process per seed), one at
a time, recording wall time and load averages in `<out>/runs.json`; `--arch` runs one side only.
`analyse` groups the Sebulba runs by `max_staleness` (`--max-staleness` of `run`; 1 by
default), prints the IQM and 95% CIs per evaluation step and the acceptance check "Sebulba's
IQM lies within Anakin's bootstrap CI" at every step, and draws the figure.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ENV = "lbf-8x8-2p-2f-coop"

#: The PPO config both architectures train with. Under Anakin it took all 5 seeds tried to
#: 0.99 by 600k steps; the time-to-learn flags of RESULTS.md (lr 1e-3 annealed, entropy
#: 0.003 or 0.01) left seed 1 at 0.0 for 1.2M steps (one seed in 3, and in 5).
PPO_FLAGS = [
    "--num-envs", "64",
    "--rollout-length", "32",
    "--hidden-sizes", "64,64",
    "--lr", "5e-4",
    "--ent-coef", "0.01",
    "--total-steps", "1e6",
    "--num-evaluations", "10",
    "--eval-episodes", "128",
]  # fmt: skip
COMMON = ["--no-gif", "--no-plots", "--checkpoint-keep", "0", "--quiet"]
SEBULBA_FLAGS = ["--architecture", "sebulba", "--actor-threads", "2"]


def _jaxmarl() -> list[str]:
    return [sys.executable, "-m", "jaxmarl_envs.algorithms.cli"]


def _timed(cmd: list[str]) -> dict:
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}):\n{res.stderr[-4000:]}")
    return {
        "command": " ".join(cmd[2:]),
        "wall_seconds": wall,
        "load_before": load_before,
        "load_after": os.getloadavg(),
    }


def run(args: argparse.Namespace) -> None:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "runs.json"
    log = json.loads(log_path.read_text()) if log_path.exists() else []
    flags = PPO_FLAGS + COMMON + list(args.extra)
    if args.arch in ("both", "anakin"):
        cmd = _jaxmarl() + ["train", "ippo", "--env", ENV, *flags]
        seeds = args.anakin_seeds or args.seeds
        cmd += ["--seeds", str(seeds), "--seed", "0", "--out", str(out / "anakin")]
        entry = {"arch": "anakin", **_timed(cmd)}
        log.append(entry)
        log_path.write_text(json.dumps(log, indent=2))
        print(entry, flush=True)
    if args.arch in ("both", "sebulba"):
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            cmd = _jaxmarl() + ["train", "ippo", "--env", ENV, *flags, *SEBULBA_FLAGS]
            cmd += ["--max-staleness", str(args.max_staleness)]
            name = (
                f"sebulba_{seed}"
                if args.max_staleness == 1
                else f"sebulba_lag{args.max_staleness}_{seed}"
            )
            cmd += ["--seed", str(seed), "--out", str(out / name)]
            entry = {"arch": "sebulba", "seed": seed, "max_staleness": args.max_staleness}
            entry.update(_timed(cmd))
            log.append(entry)
            log_path.write_text(json.dumps(log, indent=2))
            print(entry, flush=True)


# ---------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------


def _runs(metrics: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{run name: (step counts (S,), mean episode return (S,))} of a one-task metrics.json."""
    from jaxmarl_envs.algorithms.evaluation import load_results
    from jaxmarl_envs.algorithms.evaluation.results import sorted_step_keys

    data = load_results(metrics, complete=False)
    out = {}
    for env in data.values():
        for task in env.values():
            for algo in task.values():
                for name, run_data in algo.items():
                    keys = sorted_step_keys(run_data)
                    steps = np.array([run_data[k]["step_count"] for k in keys], np.float64)
                    ret = np.array([np.mean(run_data[k]["episode_return"]) for k in keys])
                    out[f"{metrics.parent.name}/{name}"] = (steps, ret)
    return out


def load_curves(folder: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"anakin" | "sebulba max_staleness=k": (step counts (S,), per-run returns (R, S))}:
    Sebulba runs grouped by their `max_staleness` (from each run's config.json)."""
    groups: dict[str, dict] = {}
    for metrics in sorted(folder.glob("*/**/metrics.json")):
        if not (metrics.parent / "summary.json").exists():
            continue  # still running
        config = json.loads((metrics.parent / "config.json").read_text())
        if config.get("architecture") == "sebulba":
            name = f"sebulba max_staleness={config['sebulba']['max_staleness']}"
        else:
            name = "anakin"
        groups.setdefault(name, {}).update(_runs(metrics))
    if "anakin" not in groups or len(groups) < 2:
        raise ValueError(f"need Anakin and Sebulba runs under {folder}, found {sorted(groups)}")
    curves = {}
    for name in sorted(groups):
        steps = [st for st, _ in groups[name].values()]
        if any(len(st) != len(steps[0]) or np.any(st != steps[0]) for st in steps):
            raise ValueError(f"{name}: runs logged different step counts")
        curves[name] = (steps[0], np.stack([r for _, r in groups[name].values()]))
        if np.any(curves[name][0] != curves["anakin"][0]):
            raise ValueError(f"{name}: step counts differ from Anakin's")
    return curves


def analyse(args: argparse.Namespace) -> dict:
    from jaxmarl_envs.algorithms.evaluation.statistics import sample_efficiency_curves

    folder = Path(args.folder)
    curves = load_curves(folder)
    steps = curves["anakin"][0]
    stats = sample_efficiency_curves(
        {k: v[1][:, None, :] for k, v in curves.items()}, "iqm", reps=args.reps, seed=0
    )
    a, a_lo, a_hi = stats["anakin"]
    names = [k for k in curves if k != "anakin"]
    inside = {}
    header = f"{'steps':>9} | {'Anakin IQM [95% CI]':<22}"
    for name in names:
        s = stats[name][0]
        inside[name] = (s >= a_lo - 1e-12) & (s <= a_hi + 1e-12)
        header += f" | {name + ' IQM [95% CI]':<30}"
    print(header)
    for k in range(len(steps)):
        row = f"{int(steps[k]):>9} | {a[k]:.3f} [{a_lo[k]:.3f}, {a_hi[k]:.3f}]  "
        for name in names:
            s, lo, hi = (x[k] for x in stats[name])
            row += f" | {s:.3f} [{lo:.3f}, {hi:.3f}] {'in ' if inside[name][k] else 'OUT'}"
            row += " " * 7
        print(row)
    for name in names:
        print(
            f"{name}: IQM inside Anakin's CI at {int(inside[name].sum())} of {len(steps)} "
            f"steps; final {stats[name][0][-1]:.3f} vs Anakin {a[-1]:.3f}"
        )
    runs_log = folder / "runs.json"
    result = {
        "env": ENV,
        "ppo_flags": PPO_FLAGS,
        "seeds": {k: int(v[1].shape[0]) for k, v in curves.items()},
        "steps": steps.tolist(),
        "per_run": {k: v[1].tolist() for k, v in curves.items()},
        "iqm": {
            name: {"point": p.tolist(), "lower": lo.tolist(), "upper": hi.tolist()}
            for name, (p, lo, hi) in stats.items()
        },
        "inside_anakin_ci": {k: v.tolist() for k, v in inside.items()},
        "runs": json.loads(runs_log.read_text()) if runs_log.exists() else [],
    }
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    if args.plot:
        plot(result, args.plot)
    return result


def plot(result: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.asarray(result["steps"]) / 1e6
    names = list(result["iqm"])
    colours = dict(zip(names, ("tab:blue", "tab:orange", "tab:green", "tab:red"), strict=False))
    fig, axes = plt.subplots(1, len(names) - 1, figsize=(4.6 * (len(names) - 1), 3.4), dpi=80)
    axes = np.atleast_1d(axes)
    for ax, other in zip(axes, [n for n in names if n != "anakin"], strict=True):
        for name in ("anakin", other):
            iqm, colour = result["iqm"][name], colours[name]
            label = f"{name} (IQM, 95% CI, {result['seeds'][name]} seeds)"
            ax.plot(steps, iqm["point"], color=colour, label=label, linewidth=2)
            ax.fill_between(steps, iqm["lower"], iqm["upper"], color=colour, alpha=0.2)
            for run in result["per_run"][name]:
                ax.plot(steps, run, color=colour, alpha=0.35, linewidth=0.8)
        ax.set_xlabel("environment steps (millions, per seed)")
        ax.set_ylabel("evaluation return")
        ax.set_title(f"IPPO on {result['env']}: Anakin vs {other}", fontsize=9)
        ax.set_ylim(-0.02, 1.05)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train both architectures")
    r.add_argument("--out", required=True)
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--anakin-seeds", type=int, help="Anakin's seeds (default: --seeds)")
    r.add_argument("--first-seed", type=int, default=0, help="Sebulba's first seed")
    r.add_argument("--max-staleness", type=int, default=1, help="Sebulba's policy-lag bound")
    r.add_argument("--arch", choices=("both", "anakin", "sebulba"), default="both")
    r.add_argument("extra", nargs="*", help="extra `jaxmarl train` flags (after --)")
    a = sub.add_parser("analyse", help="IQM curves, CIs, acceptance check, figure")
    a.add_argument("folder")
    a.add_argument("--plot")
    a.add_argument("--json")
    a.add_argument("--reps", type=int, default=20_000)
    args = parser.parse_args(argv)
    if args.cmd == "run":
        run(args)
    else:
        analyse(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
