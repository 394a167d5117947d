"""Offline baselines on one environment: datasets of four quality tiers -> every offline learner
on every tier -> one marl-eval results file with the behaviour policies next to the learners
-> aggregate plots, probability of improvement and tables.

    # 1. datasets: online IPPO, then good/medium/poor/replay tiers (skip if data/<env> exists)
    python -m jaxmarl_envs.algorithms.datasets.catalogue --env rware-tiny-4ag --out data --small
    # 2. offline learners on every tier, 3 seeds each, then the plots
    python examples/offline/run_offline_baselines.py --env rware-tiny-4ag --data data \
        --seeds 3 --total-steps 20000 --out results/offline

Writes `<out>/<tier>/<algorithm>/` (one `jaxmarl offline` run each, its seeds vmapped),
`<out>/results.json` (task `<env>/<tier>`, algorithms plus `behaviour`: the dataset's episodes
split into as many groups as seeds, each group's mean return one run) and `<out>/plots/`
(`jaxmarl plot`: IQM/mean/median/optimality gap with 95% stratified-bootstrap CIs, performance
profiles, probability of improvement, tables). `--make-data` runs step 1 first. Runs that
finished earlier are reused (rerun with `--rerun`), so an interrupted sweep continues.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

DISCRETE = ("bc", "iql-cql", "iql-bcq", "maicq")
CONTINUOUS = ("bc", "omar", "matd3-bc")
TIERS = ("good", "medium", "poor", "replay")


def behaviour_runs(vault: Path, num_runs: int) -> dict:
    """The behaviour policy as marl-eval runs: complete episodes split into `num_runs` groups
    (storage order), each group's episode returns one run's absolute metric."""
    from jaxmarl_envs.algorithms.datasets import episode_table

    returns = episode_table(vault).episode_return
    runs = {}
    for i, part in enumerate(np.array_split(returns, num_runs)):
        values = [float(x) for x in part]
        runs[f"seed_{i}"] = {
            "step_0": {"step_count": 0, "episode_return": values},
            "absolute_metrics": {"episode_return": values},
        }
    return runs


def _finished(metrics: Path) -> bool:
    """The run next to `metrics` completed (its `summary.json` says so)."""
    summary = metrics.parent / "summary.json"
    return summary.is_file() and bool(json.loads(summary.read_text()).get("finished"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="rware-tiny-4ag", help="environment id")
    p.add_argument("--data", default="data", help="catalogue root (holds <env>/<tier>)")
    p.add_argument("--algorithms", default="", help="comma-separated (default: all that fit)")
    p.add_argument("--tiers", default=",".join(TIERS), help="comma-separated tiers")
    p.add_argument("--seeds", type=int, default=3, help="seeds per run (vmapped)")
    p.add_argument("--total-steps", default="20000", help="gradient steps per run")
    p.add_argument("--out", default="results/offline", help="output folder")
    p.add_argument("--make-data", action="store_true", help="run the dataset catalogue first")
    p.add_argument("--small", action="store_true", help="with --make-data: the small preset")
    p.add_argument("--episodes", type=int, default=None, help="with --make-data: episodes per tier")
    p.add_argument("--rerun", action="store_true", help="rerun runs that finished earlier")
    p.add_argument("--set", dest="set_pairs", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)

    from jaxmarl_envs.algorithms import cli

    data_root = Path(args.data) / args.env
    if args.make_data:
        cmd = [sys.executable, "-m", "jaxmarl_envs.algorithms.datasets.catalogue"]
        cmd += ["--env", args.env, "--out", args.data] + (["--small"] if args.small else [])
        if args.episodes is not None:
            cmd += ["--episodes", str(args.episodes)]
        subprocess.run(cmd, check=True)
    import jaxmarl_envs
    from jaxmarl_envs.algorithms.training import action_info

    continuous = action_info(jaxmarl_envs.make(args.env)).continuous
    algorithms = [a for a in args.algorithms.split(",") if a] or list(
        CONTINUOUS if continuous else DISCRETE
    )
    out = Path(args.out)
    merged: dict = {}
    for tier in [t for t in args.tiers.split(",") if t]:
        vault = data_root / tier
        if not vault.is_dir():
            print(f"skipping tier {tier}: no dataset at {vault}", file=sys.stderr)
            continue
        task = f"{args.env}/{tier}"
        for algo in algorithms:
            argv = ["offline", algo, "--dataset", str(vault), "--env", args.env]
            argv += ["--seeds", str(args.seeds), "--total-steps", args.total_steps]
            argv += ["--out", str(out / tier), "--run-name", algo]
            for pair in args.set_pairs:
                argv += ["--set", pair]
            metrics = out / tier / algo / "metrics.json"
            if args.rerun or not _finished(metrics):
                print(f"== {algo} on {tier}: jaxmarl {' '.join(argv)}", flush=True)
                code = cli.main(argv)
                if code != 0:
                    print(f"{algo} on {tier} failed (exit {code})", file=sys.stderr)
                    return code
            else:
                print(f"== {algo} on {tier}: finished earlier, reusing {metrics}", flush=True)
            with open(metrics) as f:
                results = json.load(f)
            for env_name, tasks in results.items():
                for runs in tasks.values():
                    merged.setdefault(env_name, {}).setdefault(task, {}).update(runs)
        env_name = next(iter(merged)) if merged else args.env.split("-")[0]
        merged.setdefault(env_name, {}).setdefault(task, {})["behaviour"] = behaviour_runs(
            vault, args.seeds
        )
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.json"
    results_path.write_text(json.dumps(merged, indent=1))
    print(f"wrote {results_path}")
    plot = ["plot", str(results_path), "--metric", "episode_return", "--out", str(out / "plots")]
    return cli.main(plot + ["--formats", "png"])


if __name__ == "__main__":
    sys.exit(main())
