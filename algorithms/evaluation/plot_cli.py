"""The ``jaxmarl plot`` subcommand: every plot and table of marl-eval result files."""

from __future__ import annotations

import argparse
import fnmatch
import json
import math
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from jaxmarl_envs.algorithms.evaluation import plots, statistics, tables
from jaxmarl_envs.algorithms.evaluation.processing import (
    Normalisation,
    curve_tensors,
    load_reference_scores,
    score_matrices,
    task_curves,
    task_label,
    tasks_with_metric,
)
from jaxmarl_envs.algorithms.evaluation.results import (
    _atomic_write_text,
    load_results,
    merge_results,
    natural_key,
)
from jaxmarl_envs.algorithms.evaluation.statistics import Interval

AGGREGATE_REPS = 50_000
OTHER_REPS = 2_000


def add_subparser(subparsers: Any) -> None:
    """Registers ``plot`` on an ``argparse`` subparsers object (``set_defaults(func=run)``)."""
    parser = subparsers.add_parser(
        "plot",
        help="statistics, plots and tables from marl-eval JSON results",
        description=(
            "Reads marl-eval JSON result files (merged in memory), computes aggregate metrics "
            "(mean, median, IQM, optimality gap) with stratified-bootstrap confidence intervals, "
            "performance profiles, probability of improvement, sample-efficiency and per-task "
            "curves, and writes figures and CSV/LaTeX tables into --out."
        ),
    )
    parser.add_argument("results", nargs="+", help="marl-eval JSON result file(s)")
    parser.add_argument("--metric", required=True, help="metric name, e.g. episode_return")
    parser.add_argument("--out", default="figures", help="output folder (default: figures)")
    parser.add_argument(
        "--reps",
        type=int,
        default=None,
        help=f"bootstrap replicates for everything (default: {AGGREGATE_REPS} for aggregate "
        f"metrics, {OTHER_REPS} for profiles, P(X > Y) and curves)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    parser.add_argument(
        "--normalise",
        default="observed",
        help="'observed' (per-task min/max over all algorithms; default), 'none', or a JSON "
        "file {env: {task: {min: x, max: y}}} of reference scores",
    )
    parser.add_argument("--confidence", type=float, default=0.95, help="CI level (default 0.95)")
    parser.add_argument(
        "--method",
        choices=("percentile", "bca"),
        default="percentile",
        help="bootstrap interval method (default: percentile)",
    )
    parser.add_argument(
        "--source",
        choices=("absolute", "final_step"),
        default="absolute",
        help="final scores from absolute_metrics (default) or the last logged step",
    )
    parser.add_argument("--environment", default=None, help="only this environment's tasks")
    parser.add_argument(
        "--task",
        action="append",
        default=None,
        metavar="PATTERN",
        help="only tasks matching this glob, on the task name or 'environment/task' "
        "(repeatable), e.g. for the finished part of a sweep",
    )
    parser.add_argument(
        "--formats", default="png,pdf", help="figure formats, comma-separated (default png,pdf)"
    )
    parser.set_defaults(func=run)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "task"


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _interval_json(interval: Interval) -> dict[str, float | None]:
    return {
        "point": _finite(interval.point),
        "lower": _finite(interval.lower),
        "upper": _finite(interval.upper),
    }


def _normalisation(arg: str) -> Normalisation:
    if arg in ("observed", "none"):
        return arg  # type: ignore[return-value]
    path = Path(arg)
    if not path.is_file():
        raise ValueError(f"--normalise: expected 'observed', 'none' or a JSON file, got {arg!r}")
    return load_reference_scores(path)


def _load(paths: list[str]) -> dict:
    for path in paths:
        if not Path(path).is_file():
            raise ValueError(f"no such results file: {path}")
    if len(paths) == 1:
        return load_results(paths[0])
    return merge_results(paths)


def _produce(args: argparse.Namespace) -> list[Path]:
    if args.reps is not None and args.reps < 1:
        raise ValueError(f"--reps must be positive, got {args.reps}")
    if not 0.0 < args.confidence < 1.0:
        raise ValueError(f"--confidence must be in (0, 1), got {args.confidence}")
    formats = [f.strip().lstrip(".") for f in args.formats.split(",") if f.strip()]
    if not formats:
        raise ValueError("--formats: give at least one format")
    agg_reps = args.reps or AGGREGATE_REPS
    other_reps = args.reps or OTHER_REPS
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = _load(list(args.results))
    normalisation = _normalisation(args.normalise)
    tasks = None
    if args.task:
        every = tasks_with_metric(data, args.metric, args.environment)
        tasks = [
            (env, task)
            for env, task in every
            if any(fnmatch.fnmatchcase(n, p) for p in args.task for n in (task, f"{env}/{task}"))
        ]
        if not tasks:
            names = ", ".join(f"{e}/{t}" for e, t in every) or "none"
            raise ValueError(f"--task {' '.join(args.task)}: no task matches (tasks: {names})")
    matrices = score_matrices(
        data,
        args.metric,
        normalisation,
        source=args.source,
        environment=args.environment,
        tasks=tasks,
    )
    normalised = matrices.ranges is not None
    score_label = f"Normalised {args.metric}" if normalised else args.metric
    written: list[Path] = []
    notes: list[str] = []
    common = {"confidence": args.confidence, "method": args.method, "seed": args.seed}

    def figure(name: str) -> list[Path]:
        return [out / f"{name}.{fmt}" for fmt in formats]

    # One run per task: the bootstrap cannot vary, so there is no interval (NaN bounds).
    single = [alg for alg, m in matrices.scores.items() if m.shape[0] == 1]
    no_ci = {"no_interval_note": "one seed: no confidence interval"} if single else {}
    missing = {"missing": "n/a: 1 seed"} if single else {}
    one_seed_caption = " One seed per task: no confidence interval." if single else ""
    if single:
        notes.append(
            f"one seed per task for {', '.join(single)}: point estimates only, "
            "no confidence intervals"
        )

    # Aggregate metrics. The optimality gap (gamma = 1) needs scores on a [0, 1] scale.
    metrics = list(statistics.AGGREGATE_METRICS)
    pooled = np.concatenate([m.ravel() for m in matrices.scores.values()])
    if not normalised and (pooled.min() < 0.0 or pooled.max() > 1.0):
        metrics.remove("optimality_gap")
        notes.append("optimality gap skipped: scores are not normalised to [0, 1]")
    aggregate = statistics.aggregate_metrics(matrices.scores, metrics, reps=agg_reps, **common)
    written += plots.plot_aggregate_intervals(
        aggregate,
        figure("aggregate_scores"),
        xlabel=score_label,
        confidence=args.confidence,
        **no_ci,
    )
    written += tables.write_aggregate_tables(
        aggregate,
        out / "aggregate_scores.csv",
        out / "aggregate_scores.tex",
        markdown_path=out / "aggregate_scores.md",
        caption=(
            f"{score_label}: point estimates over {len(matrices.tasks)} task(s)."
            if len(single) == len(matrices.scores)
            else f"{score_label}: point estimates and {args.confidence:.0%} stratified "
            f"bootstrap confidence intervals over {len(matrices.tasks)} task(s)."
        )
        + one_seed_caption,
        **missing,
    )

    # Performance profiles.
    taus, profiles = statistics.performance_profile(matrices.scores, reps=other_reps, **common)
    written += plots.plot_performance_profiles(
        taus, profiles, figure("performance_profile"), xlabel=rf"{score_label} ($\tau$)", **no_ci
    )

    # Probability of improvement.
    poi = {}
    if len(matrices.algorithms) >= 2:
        poi = statistics.probability_of_improvement_pairs(
            matrices.scores, reps=other_reps, **common
        )
        written += plots.plot_probability_of_improvement(
            poi, figure("probability_of_improvement"), confidence=args.confidence, **no_ci
        )
        written += tables.write_poi_tables(
            poi,
            out / "probability_of_improvement.csv",
            out / "probability_of_improvement.tex",
            **missing,
        )
    else:
        notes.append("probability of improvement skipped: only one algorithm")

    # Sample-efficiency curves (IQM over tasks at each logged step).
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            curves = curve_tensors(data, args.metric, normalisation, tasks=matrices.tasks)
        notes += [f"sample-efficiency curves: {w.message}" for w in caught]
        efficiency = statistics.sample_efficiency_curves(
            curves.values, "iqm", reps=other_reps, **common
        )
        written += plots.plot_curves(
            curves.step_counts,
            efficiency,
            figure("sample_efficiency"),
            f"IQM {score_label}",
            **no_ci,
        )
    except ValueError as e:
        notes.append(f"sample-efficiency curves skipped: {e}")

    # Per-task curves and final scores (raw metric, t intervals over each task's own runs).
    per_task: dict[str, dict[str, Interval]] = {}
    panels = {}
    for key in matrices.tasks:
        label = task_label(key)
        try:
            task = task_curves(data, key[0], key[1], args.metric)
        except ValueError as e:
            notes.append(f"curves for {label} skipped: {e}")
            continue
        lines = {
            alg: statistics.single_task_curve(v[:, 0, :], confidence=args.confidence)
            for alg, v in task.values.items()
        }
        written += plots.plot_curves(
            task.step_counts,
            lines,
            figure(f"single_task/{_slug(key[0])}__{_slug(key[1])}"),
            args.metric,
            title=label,
            **no_ci,
        )
        panels[label] = (task.step_counts, lines)
    if len(panels) > 1:  # every task's curves side by side, for a README
        written += plots.plot_curve_grid(panels, figure("per_task_curves"), args.metric, **no_ci)
    # Per-task tables in raw units: the mean over runs with Student-t intervals, and the IQM
    # over runs with bootstrap intervals (one task: the stratified bootstrap resamples that
    # task's runs), as baselines tables report it.
    raw = score_matrices(data, args.metric, None, source=args.source, tasks=matrices.tasks)
    per_task_iqm: dict[str, dict[str, Interval]] = {}
    for algorithm, matrix in raw.scores.items():
        for j, key in enumerate(raw.tasks):
            column = matrix[:, j : j + 1]
            mean, lower, upper = statistics.single_task_curve(column, confidence=args.confidence)
            per_task.setdefault(task_label(key), {})[algorithm] = Interval(
                float(mean[0]), float(lower[0]), float(upper[0])
            )
            iqm = statistics.aggregate_metrics(
                {algorithm: column}, ["iqm"], reps=other_reps, **common
            )
            per_task_iqm.setdefault(task_label(key), {})[algorithm] = iqm[algorithm]["iqm"]
    captions = {}
    for name, table, what in (
        ("per_task_scores", per_task, "mean over runs with {:.0%} Student-t"),
        ("per_task_iqm", per_task_iqm, "IQM over runs with {:.0%} bootstrap"),
    ):
        captions[name] = (
            f"{args.metric} per task: {what.format(args.confidence)} confidence "
            f"intervals.{one_seed_caption}"
        )
        written += [
            tables.write_interval_csv(table, out / f"{name}.csv", row_label="task"),
            tables.write_interval_latex(
                table, out / f"{name}.tex", row_label="Task", caption=captions[name], **missing
            ),
        ]

    # The baselines table for a README: one row per algorithm, one column per task.
    by_algorithm = {
        alg: {task: per_task_iqm[task][alg] for task in per_task_iqm} for alg in raw.scores
    }
    written.append(
        tables.write_interval_markdown(
            by_algorithm,
            out / "per_task_iqm.md",
            precision={
                task: tables.auto_decimals(iv.point for iv in res.values())
                for task, res in per_task_iqm.items()
            },
            caption=captions["per_task_iqm"],
            **missing,
        )
    )

    summary = {
        "settings": {
            "results": [str(p) for p in args.results],
            "metric": args.metric,
            "normalise": args.normalise,
            "source": args.source,
            "confidence": args.confidence,
            "method": args.method,
            "seed": args.seed,
            "aggregate_reps": agg_reps,
            "other_reps": other_reps,
        },
        "tasks": matrices.task_labels,
        "runs": {
            alg: {task_label(k): list(r) for k, r in zip(matrices.tasks, runs, strict=True)}
            for alg, runs in matrices.runs.items()
        },
        "normalisation_ranges": (
            {task_label(k): list(v) for k, v in matrices.ranges.items() if k in matrices.tasks}
            if normalised
            else None
        ),
        "aggregate": {
            alg: {m: _interval_json(iv) for m, iv in res.items()} for alg, res in aggregate.items()
        },
        "probability_of_improvement": [
            {"x": x, "y": y, **_interval_json(iv)} for (x, y), iv in poi.items()
        ],
        "per_task": {
            task: {alg: _interval_json(iv) for alg, iv in res.items()}
            for task, res in per_task.items()
        },
        "per_task_iqm": {
            task: {alg: _interval_json(iv) for alg, iv in res.items()}
            for task, res in per_task_iqm.items()
        },
        "notes": notes,
    }
    summary_path = out / "statistics.json"
    _atomic_write_text(json.dumps(summary, indent=2) + "\n", summary_path)
    written.append(summary_path)
    for note in notes:
        print(f"note: {note}")
    return written


def run(args: argparse.Namespace) -> int:
    """Runs ``jaxmarl plot``; returns the exit status: 0 on success, 2 on bad input (a usage
    error: missing or invalid results file, unknown metric, bad option value), 1 when writing
    fails."""
    try:
        written = _produce(args)
    except ValueError as e:
        print(f"jaxmarl plot: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"jaxmarl plot: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {len(written)} files to {Path(args.out).resolve()}:")
    for path in sorted(written, key=lambda p: natural_key(str(p))):
        print(f"  {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Standalone entry: ``python -m jaxmarl_envs.algorithms.evaluation.plot_cli plot ...``."""
    parser = argparse.ArgumentParser(prog="jaxmarl", allow_abbrev=False)
    subparsers = parser.add_subparsers(dest="command", required=True)
    add_subparser(subparsers)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
