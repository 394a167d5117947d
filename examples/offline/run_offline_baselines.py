"""Offline baselines: datasets of four quality tiers -> every offline learner on every tier of
one or more environments -> one marl-eval results file with the behaviour policies next to the
learners -> aggregate plots, probability of improvement and the baselines table.

    # 1. datasets: online IPPO, then good/medium/poor/replay tiers (skip if data/<env> exists)
    python -m jaxmarl_envs.algorithms.datasets.catalogue --env rware-tiny-4ag --out data --small
    # 2. offline learners on every tier, 3 seeds each, then the plots and the table
    python examples/offline/run_offline_baselines.py --env rware-tiny-4ag --data data \
        --seeds 3 --total-steps 20000 --out results/offline
    # the baselines table of benchmarks/RESULTS.md: three environments, 10 seeds
    python examples/offline/run_offline_baselines.py \
        --env rware-tiny-2ag,lbf-8x8-2p-2f-coop,mpe-simple_spread-continuous --data data \
        --seeds 10 --total-steps 2000 --set num_evaluations=4 --out results/offline-table

Writes `<out>/<env>/<tier>/<algorithm>/` (one `jaxmarl offline` run each, its seeds vmapped),
`<out>/results.json` (task `<env>/<tier>`, algorithms plus `behaviour`: the dataset's episodes
split into as many groups as seeds, each group's mean return one run), `<out>/plots/<env>/`
(`jaxmarl plot`: IQM/mean/median/optimality gap with 95% stratified-bootstrap CIs, performance
profiles, probability of improvement, tables) and `<out>/table.md` / `<out>/table.csv` (per
environment and tier: each algorithm's and the behaviour's absolute-metric IQM over seeds
with its 95% stratified-bootstrap CI, raw returns). `--make-data` runs step 1 first. Runs that
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
    """The behaviour policy as marl-eval runs: complete episodes shuffled (fixed seed) and
    split into `num_runs` groups, each group's episode returns one run's absolute metric.

    Shuffled, because a `replay` tier is stored in training order: groups in storage order
    would be different checkpoints, not samples of the same behaviour mixture.
    """
    from jaxmarl_envs.algorithms.datasets import episode_table

    returns = np.asarray(episode_table(vault).episode_return)
    returns = returns[np.random.default_rng(0).permutation(len(returns))]
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


def baselines_table(results: dict, reps: int = 20_000) -> list[dict]:
    """Per environment and tier (task), every algorithm's absolute-metric IQM over its runs
    with a 95% stratified-bootstrap CI (raw returns, the evaluation module's statistics).

    Returns rows `{"env", "task", "algorithm", "runs", "iqm", "lower", "upper"}`, tasks in
    file order, algorithms in results order with `behaviour` first.
    """
    from jaxmarl_envs.algorithms.evaluation import statistics
    from jaxmarl_envs.algorithms.evaluation.processing import score_matrices

    rows = []
    for env_name, tasks in results.items():
        for task, algos in tasks.items():
            matrices = score_matrices(
                {env_name: {task: algos}}, "episode_return", normalisation=None
            ).scores
            intervals = statistics.aggregate_metrics(matrices, metrics=("iqm",), reps=reps)
            names = sorted(matrices, key=lambda a: (a != "behaviour", list(algos).index(a)))
            for algo in names:
                iqm = intervals[algo]["iqm"]
                rows.append(
                    {
                        "env": env_name,
                        "task": task,
                        "algorithm": algo,
                        "runs": int(matrices[algo].shape[0]),
                        "iqm": float(iqm.point),
                        "lower": float(iqm.lower),
                        "upper": float(iqm.upper),
                    }
                )
    return rows


def write_table(rows: list[dict], out: Path) -> tuple[Path, Path]:
    """`out/table.csv` (one row per task and algorithm) and `out/table.md` (one row per task,
    one column per algorithm: `IQM [lower, upper]`); both written atomically."""
    algos: list[str] = []
    for row in rows:
        if row["algorithm"] not in algos:
            algos.append(row["algorithm"])
    csv_lines = ["env,task,algorithm,runs,iqm,lower,upper"]
    csv_lines += [
        f"{r['env']},{r['task']},{r['algorithm']},{r['runs']},{r['iqm']:.6g},"
        f"{r['lower']:.6g},{r['upper']:.6g}"
        for r in rows
    ]
    cells: dict[str, dict[str, str]] = {}
    for r in rows:
        cell = f"{r['iqm']:.3g} [{r['lower']:.3g}, {r['upper']:.3g}]"
        cells.setdefault(r["task"], {})[r["algorithm"]] = cell
    md = ["| task | " + " | ".join(algos) + " |", "|---|" + "---|" * len(algos)]
    md += [
        f"| {task} | " + " | ".join(cells[task].get(a, "-") for a in algos) + " |" for task in cells
    ]
    paths = (out / "table.csv", out / "table.md")
    for path, lines in zip(paths, (csv_lines, md), strict=True):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text("\n".join(lines) + "\n")
        tmp.replace(path)
    return paths


def _overrides(pairs: list[str], flag: str, what: str) -> dict[str, list[str]]:
    """`NAME:KEY=VALUE` -> {NAME: [KEY=VALUE, ...]}; a malformed entry is a usage error."""
    out: dict[str, list[str]] = {}
    for pair in pairs:
        name, sep, setting = pair.partition(":")
        if not sep or "=" not in setting or not name:
            raise SystemExit(f"{flag} expects {what}:KEY=VALUE, got {pair!r}")
        out.setdefault(name, []).append(setting)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="rware-tiny-4ag", help="environment id(s), comma-separated")
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
    p.add_argument(
        "--algo-set",
        dest="algo_pairs",
        action="append",
        default=[],
        metavar="ALGO:KEY=VALUE",
        help="config override for one algorithm's runs only (repeatable)",
    )
    p.add_argument(
        "--env-set",
        dest="env_pairs",
        action="append",
        default=[],
        metavar="ENV:KEY=VALUE",
        help="config override for one environment's runs only (repeatable)",
    )
    args = p.parse_args(argv)
    env_ids = [e for e in args.env.split(",") if e]
    env_sets = _overrides(args.env_pairs, "--env-set", "ENV")
    algo_sets = _overrides(args.algo_pairs, "--algo-set", "ALGO")
    unknown = sorted(set(env_sets) - set(env_ids))
    if unknown:
        p.error(f"--env-set names environments not in --env: {', '.join(unknown)}")
    unknown = sorted(set(algo_sets) - set(DISCRETE) - set(CONTINUOUS))
    if unknown:
        p.error(f"--algo-set names unknown algorithms: {', '.join(unknown)}")

    import jaxmarl_envs
    from jaxmarl_envs.algorithms import cli
    from jaxmarl_envs.algorithms.evaluation import save_results
    from jaxmarl_envs.algorithms.training import action_info

    out = Path(args.out)
    merged: dict = {}
    for env_id in env_ids:
        if env_id not in jaxmarl_envs.list_envs():
            p.error(f"unknown environment {env_id!r}")
        data_root = Path(args.data) / env_id
        if args.make_data:
            cmd = [sys.executable, "-m", "jaxmarl_envs.algorithms.datasets.catalogue"]
            cmd += ["--env", env_id, "--out", args.data] + (["--small"] if args.small else [])
            if args.episodes is not None:
                cmd += ["--episodes", str(args.episodes)]
            subprocess.run(cmd, check=True)
        continuous = action_info(jaxmarl_envs.make(env_id)).continuous
        algorithms = [a for a in args.algorithms.split(",") if a] or list(
            CONTINUOUS if continuous else DISCRETE
        )
        for tier in [t for t in args.tiers.split(",") if t]:
            vault = data_root / tier
            if not vault.is_dir():
                print(f"skipping tier {tier}: no dataset at {vault}", file=sys.stderr)
                continue
            task = f"{env_id}/{tier}"
            env_name = None
            for algo in algorithms:
                argv = ["offline", algo, "--dataset", str(vault), "--env", env_id]
                argv += ["--seeds", str(args.seeds), "--total-steps", args.total_steps]
                argv += ["--out", str(out / env_id / tier), "--run-name", algo]
                for pair in args.set_pairs + env_sets.get(env_id, []) + algo_sets.get(algo, []):
                    argv += ["--set", pair]
                metrics = out / env_id / tier / algo / "metrics.json"
                if args.rerun or not _finished(metrics):
                    print(f"== {algo} on {task}: jaxmarl {' '.join(argv)}", flush=True)
                    code = cli.main(argv)
                    if code != 0:
                        print(f"{algo} on {task} failed (exit {code})", file=sys.stderr)
                        return code
                else:
                    print(f"== {algo} on {task}: finished earlier, reusing {metrics}", flush=True)
                with open(metrics) as f:
                    results = json.load(f)
                for env_name, tasks in results.items():
                    for runs in tasks.values():
                        merged.setdefault(env_name, {}).setdefault(task, {}).update(runs)
            if env_name is None:
                continue
            merged[env_name][task]["behaviour"] = behaviour_runs(vault, args.seeds)
    if not merged:
        print("no runs: no dataset found for the environments and tiers given", file=sys.stderr)
        return 1
    results_path = out / "results.json"
    save_results(merged, results_path)  # validated, written atomically
    print(f"wrote {results_path}")
    table_csv, table_md = write_table(baselines_table(merged), out)
    print(table_md.read_text(), end="")
    print(f"wrote {table_md} and {table_csv}")
    for env_name in merged:
        plot = ["plot", str(results_path), "--metric", "episode_return", "--formats", "png"]
        code = cli.main(plot + ["--environment", env_name, "--out", str(out / "plots" / env_name)])
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
