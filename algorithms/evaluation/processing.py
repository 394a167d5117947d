"""Turns marl-eval results into per-run means, normalised scores and score matrices."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from jaxmarl_envs.algorithms.evaluation.results import (
    ABSOLUTE_METRICS,
    RESERVED_STEP_KEYS,
    STEP_COUNT,
    Results,
    natural_key,
    sorted_step_keys,
)

TaskKey = tuple[str, str]  # (environment, task)
Ranges = dict[TaskKey, tuple[float, float]]  # (environment, task) -> (min, max)
Normalisation = Literal["observed", "none"] | Mapping[TaskKey, tuple[float, float]] | None
Source = Literal["absolute", "final_step"]


def task_label(key: TaskKey) -> str:
    """``env/task`` label for plots and tables."""
    return f"{key[0]}/{key[1]}"


def _tasks(data: Results, environment: str | None) -> list[TaskKey]:
    if environment is not None and environment not in data:
        raise ValueError(f"environment {environment!r} not in results (have {sorted(data)})")
    envs = [environment] if environment is not None else sorted(data, key=natural_key)
    return [(env, task) for env in envs for task in sorted(data[env], key=natural_key)]


def tasks_with_metric(data: Results, metric: str, environment: str | None = None) -> list[TaskKey]:
    """The (env, task) pairs (sorted) where any run logged ``metric`` at a step or as absolute."""
    keys = []
    for env, task in _tasks(data, environment):
        if any(
            metric in block
            for runs in data[env][task].values()
            for run in runs.values()
            for block in run.values()
            if isinstance(block, dict)
        ):
            keys.append((env, task))
    return keys


def metric_means(
    data: Results,
    metric: str,
    source: Source = "absolute",
    tasks: Sequence[TaskKey] | None = None,
) -> dict:
    """Per-run mean of a metric's per-episode values.

    Args:
        data: validated results.
        metric: metric name.
        source: "absolute" reads ``absolute_metrics``; "final_step" reads the last ``step_<k>``.
        tasks: (env, task) pairs to read (default: every task that logs the metric); every run
            of these tasks must hold the metric.

    Returns:
        {env: {task: {algorithm: {run: mean}}}}.
    """
    if source not in ("absolute", "final_step"):
        raise ValueError(f"source must be 'absolute' or 'final_step', got {source!r}")
    keys = list(tasks) if tasks is not None else tasks_with_metric(data, metric)
    out: dict = {}
    for env, task in keys:
        if env not in data or task not in data[env]:
            raise ValueError(f"environment {env!r} / task {task!r} not in results")
        for algorithm, runs in data[env][task].items():
            for run_name, run in runs.items():
                where = f"environment {env!r} / task {task!r} / algorithm {algorithm!r}"
                where += f" / run {run_name!r}"
                if source == "absolute":
                    block = run.get(ABSOLUTE_METRICS, {})
                    label = ABSOLUTE_METRICS
                else:
                    label = sorted_step_keys(run)[-1]
                    block = run[label]
                if metric not in block:
                    raise ValueError(
                        f"{where}: metric {metric!r} missing from {label!r} "
                        f"(has {sorted(k for k in block if k not in RESERVED_STEP_KEYS)})"
                    )
                mean = float(np.mean(block[metric]))
                out.setdefault(env, {}).setdefault(task, {}).setdefault(algorithm, {})
                out[env][task][algorithm][run_name] = mean
    return out


def observed_ranges(data: Results, metric: str) -> Ranges:
    """Observed (min, max) of a metric per task, over every per-episode value of every
    algorithm, run, logged step and ``absolute_metrics`` (marl-eval's normalisation range).

    Returns:
        {(env, task): (min, max)} for the tasks that log the metric.
    """
    ranges: Ranges = {}
    for env, tasks in data.items():
        for task, algorithms in tasks.items():
            values = []
            for runs in algorithms.values():
                for run in runs.values():
                    for key, block in run.items():
                        if metric in block and (key == ABSOLUTE_METRICS or key.startswith("step_")):
                            values.append(np.asarray(block[metric], dtype=np.float64))
            if not values:
                continue  # the task does not log this metric
            flat = np.concatenate(values)
            # min and max are computed independently, so one block can set both at once.
            ranges[(env, task)] = (float(flat.min()), float(flat.max()))
    return ranges


def load_reference_scores(path: str | os.PathLike) -> Ranges:
    """Reads per-task reference scores ``{env: {task: {"min": x, "max": y}}}`` from JSON
    (e.g. min = random policy return, max = expert return)."""
    with open(Path(path)) as f:
        raw = json.load(f)
    return _parse_references(raw, str(path))


def _parse_references(raw: object, origin: str) -> Ranges:
    if not isinstance(raw, dict):
        raise ValueError(f"{origin}: expected {{env: {{task: {{'min': x, 'max': y}}}}}}")
    ranges: Ranges = {}
    for env, tasks in raw.items():
        if not isinstance(tasks, dict):
            raise ValueError(f"{origin}: environment {env!r}: expected an object of tasks")
        for task, ref in tasks.items():
            where = f"{origin}: environment {env!r} / task {task!r}"
            if not isinstance(ref, dict) or set(ref) != {"min", "max"}:
                raise ValueError(f"{where}: expected {{'min': x, 'max': y}}, got {ref!r}")
            lo, hi = ref["min"], ref["max"]
            for value in (lo, hi):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{where}: reference scores must be numbers, got {ref!r}")
            if not np.isfinite(lo) or not np.isfinite(hi) or hi == lo:
                raise ValueError(f"{where}: need finite min != max, got {ref!r}")
            ranges[(env, task)] = (float(lo), float(hi))
    return ranges


def resolve_ranges(
    data: Results, metric: str, normalisation: Normalisation, tasks: Sequence[TaskKey]
) -> Ranges | None:
    """Normalisation ranges for ``tasks`` (None: no normalisation)."""
    if normalisation is None or (isinstance(normalisation, str) and normalisation == "none"):
        return None
    if isinstance(normalisation, str):
        if normalisation != "observed":
            raise ValueError(
                "normalisation must be 'observed', 'none' or reference scores, "
                f"got {normalisation!r}"
            )
        ranges = observed_ranges(data, metric)
        for key in tasks:
            if key not in ranges:
                raise ValueError(f"{task_label(key)}: metric {metric!r} is never logged")
            lo, hi = ranges[key]
            if lo == hi:
                raise ValueError(
                    f"environment {key[0]!r} / task {key[1]!r}: every value of {metric!r} equals "
                    f"{lo!r}, so observed min/max normalisation is undefined; supply reference "
                    "scores or use no normalisation"
                )
        return ranges
    ranges = dict(normalisation)
    missing = [task_label(key) for key in tasks if key not in ranges]
    if missing:
        raise ValueError(f"reference scores missing for tasks {missing}")
    for key in tasks:
        lo, hi = ranges[key]
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo == hi:
            raise ValueError(f"reference scores for {task_label(key)}: need finite min != max")
    return ranges


def _normalise(values: np.ndarray, key: TaskKey, ranges: Ranges | None) -> np.ndarray:
    if ranges is None:
        return values
    lo, hi = ranges[key]
    return (values - lo) / (hi - lo)


@dataclass(frozen=True)
class ScoreMatrices:
    """Final scores as rliable-style matrices.

    Attributes:
        tasks: the (environment, task) column order, shared by every algorithm.
        scores: algorithm -> (num_runs, num_tasks) array; runs within a column are sorted by name.
        runs: algorithm -> per task, the run names in row order.
        ranges: the normalisation ranges used (None when not normalised).
    """

    tasks: tuple[TaskKey, ...]
    scores: dict[str, np.ndarray]
    runs: dict[str, tuple[tuple[str, ...], ...]]
    ranges: Ranges | None

    @property
    def algorithms(self) -> list[str]:
        """Algorithm names in insertion (sorted) order."""
        return list(self.scores)

    @property
    def task_labels(self) -> list[str]:
        """``env/task`` labels of the columns."""
        return [task_label(key) for key in self.tasks]


def _check_complete(data: Results, tasks: Sequence[TaskKey]) -> list[str]:
    algorithms = sorted({alg for env, task in tasks for alg in data[env][task]}, key=natural_key)
    problems = []
    for env, task in tasks:
        missing = [alg for alg in algorithms if alg not in data[env][task]]
        if missing:
            problems.append(f"environment {env!r} / task {task!r}: no runs for {missing}")
    if problems:
        raise ValueError(
            "every algorithm needs runs on every task to build score matrices:\n  "
            + "\n  ".join(problems)
        )
    return algorithms


def _check_rectangular(algorithm: str, counts: Mapping[TaskKey, int], what: str) -> int:
    distinct = sorted(set(counts.values()))
    if len(distinct) > 1:
        detail = ", ".join(f"{task_label(key)}: {n}" for key, n in counts.items())
        raise ValueError(
            f"algorithm {algorithm!r} has different numbers of {what} per task ({detail}); "
            "a (runs x tasks) matrix needs the same number for every task - select the tasks "
            "or runs to compare, or use the per-task curves"
        )
    return distinct[0]


def score_matrices(
    data: Results,
    metric: str,
    normalisation: Normalisation = None,
    source: Source = "absolute",
    environment: str | None = None,
    tasks: Sequence[TaskKey] | None = None,
) -> ScoreMatrices:
    """Builds (num_runs x num_tasks) score matrices, one per algorithm.

    Each entry is the mean over episodes of one run's metric (``absolute_metrics`` by default),
    optionally normalised per task as (score - min) / (max - min).

    Args:
        data: validated results.
        metric: metric name.
        normalisation: None or "none"; "observed" (per-task min/max over all algorithms, runs,
            steps and episodes); or a mapping (env, task) -> (min, max) of reference scores.
        source: "absolute" or "final_step" (see :func:`metric_means`).
        environment: restrict to one environment (default: every task of every environment).
        tasks: restrict to these (env, task) pairs (default: every task that logs the metric).

    Raises:
        ValueError: when an algorithm lacks a task or has different run counts across tasks.
    """
    keys = list(tasks) if tasks is not None else tasks_with_metric(data, metric, environment)
    if not keys:
        raise ValueError(f"no task logs metric {metric!r}")
    for env, task in keys:
        if env not in data or task not in data[env]:
            raise ValueError(f"environment {env!r} / task {task!r} not in results")
    algorithms = _check_complete(data, keys)
    ranges = resolve_ranges(data, metric, normalisation, keys)
    means = metric_means(data, metric, source, keys)
    scores, runs = {}, {}
    for algorithm in algorithms:
        columns, names = [], []
        for key in keys:
            per_run = means[key[0]][key[1]][algorithm]
            run_names = tuple(sorted(per_run, key=natural_key))
            column = np.array([per_run[name] for name in run_names], dtype=np.float64)
            columns.append(_normalise(column, key, ranges))
            names.append(run_names)
        _check_rectangular(
            algorithm, {k: len(c) for k, c in zip(keys, columns, strict=True)}, "runs"
        )
        scores[algorithm] = np.stack(columns, axis=1)
        runs[algorithm] = tuple(names)
    return ScoreMatrices(tasks=tuple(keys), scores=scores, runs=runs, ranges=ranges)


def _run_curve(run: dict, metric: str, where: str) -> tuple[np.ndarray, np.ndarray]:
    steps = sorted_step_keys(run)
    counts = np.array([run[s][STEP_COUNT] for s in steps], dtype=np.float64)
    try:
        values = np.array([np.mean(run[s][metric]) for s in steps], dtype=np.float64)
    except KeyError:
        raise ValueError(f"{where}: metric {metric!r} missing at some step") from None
    return counts, values


@dataclass(frozen=True)
class CurveData:
    """Learning curves of one or more tasks.

    Attributes:
        tasks: (environment, task) order of the task axis.
        values: algorithm -> (num_runs, num_tasks, num_steps) per-run means at each logged step
            (for a single task: (num_runs, 1, num_steps)).
        step_counts: algorithm -> (num_steps,) mean environment step count at each logged step.
        ranges: normalisation ranges used (None when not normalised).
    """

    tasks: tuple[TaskKey, ...]
    values: dict[str, np.ndarray]
    step_counts: dict[str, np.ndarray]
    ranges: Ranges | None


def curve_tensors(
    data: Results,
    metric: str,
    normalisation: Normalisation = None,
    environment: str | None = None,
    tasks: Sequence[TaskKey] | None = None,
) -> CurveData:
    """Builds (num_runs x num_tasks x num_steps) tensors for sample-efficiency curves.

    The x axis of step k is the mean ``step_count`` of step k over the algorithm's runs and tasks.

    Raises:
        ValueError: when an algorithm lacks a task, or has different numbers of runs per task or
            of logged steps per run.
    """
    keys = list(tasks) if tasks is not None else tasks_with_metric(data, metric, environment)
    if not keys:
        raise ValueError(f"no task logs metric {metric!r}")
    algorithms = _check_complete(data, keys)
    ranges = resolve_ranges(data, metric, normalisation, keys)
    values, step_counts = {}, {}
    for algorithm in algorithms:
        per_task, counts_per_task, steps_per_run = [], [], {}
        for key in keys:
            runs = data[key[0]][key[1]][algorithm]
            rows, counts = [], []
            for name in sorted(runs, key=natural_key):
                where = f"environment {key[0]!r} / task {key[1]!r} / algorithm {algorithm!r}"
                where += f" / run {name!r}"
                c, v = _run_curve(runs[name], metric, where)
                steps_per_run[f"{task_label(key)}:{name}"] = len(v)
                rows.append(_normalise(v, key, ranges))
                counts.append(c)
            per_task.append(rows)
            counts_per_task.append(counts)
        num_steps = set(steps_per_run.values())
        if len(num_steps) > 1:
            detail = ", ".join(f"{k}: {n}" for k, n in steps_per_run.items())
            raise ValueError(
                f"algorithm {algorithm!r}: runs logged different numbers of steps ({detail}); "
                "curves need the same number of evaluations in every run"
            )
        _check_rectangular(
            algorithm, {k: len(r) for k, r in zip(keys, per_task, strict=True)}, "runs"
        )
        # (num_tasks, num_runs, num_steps) -> (num_runs, num_tasks, num_steps)
        values[algorithm] = np.transpose(np.array(per_task, dtype=np.float64), (1, 0, 2))
        counts = np.array(counts_per_task, dtype=np.float64)  # (T, R, S)
        step_counts[algorithm] = counts.mean(axis=(0, 1))
        spread = counts.max(axis=(0, 1)) - counts.min(axis=(0, 1))
        if np.any(spread > 0.05 * np.maximum(step_counts[algorithm], 1.0)):
            warnings.warn(
                f"algorithm {algorithm!r}: step_count at the same evaluation index differs by "
                f"more than 5% across runs/tasks (up to {spread.max():g} steps); the curve's x "
                "axis is their mean",
                UserWarning,
                stacklevel=2,
            )
    return CurveData(tasks=tuple(keys), values=values, step_counts=step_counts, ranges=ranges)


def task_curves(
    data: Results,
    environment: str,
    task: str,
    metric: str,
    normalisation: Normalisation = None,
) -> CurveData:
    """Learning curves of every algorithm on one task, each with its own number of runs.

    Returns:
        CurveData with values[algorithm] of shape (num_runs_of_algorithm, 1, num_steps).
    """
    if environment not in data or task not in data[environment]:
        raise ValueError(f"environment {environment!r} / task {task!r} not in results")
    key = (environment, task)
    ranges = resolve_ranges(data, metric, normalisation, [key])
    values, step_counts = {}, {}
    for algorithm in sorted(data[environment][task], key=natural_key):
        runs = data[environment][task][algorithm]
        rows, counts = [], []
        for name in sorted(runs, key=natural_key):
            where = f"environment {environment!r} / task {task!r} / algorithm {algorithm!r}"
            c, v = _run_curve(runs[name], metric, f"{where} / run {name!r}")
            rows.append(_normalise(v, key, ranges))
            counts.append(c)
        lengths = {len(r) for r in rows}
        if len(lengths) > 1:
            raise ValueError(
                f"environment {environment!r} / task {task!r} / algorithm {algorithm!r}: runs "
                f"logged different numbers of steps {sorted(lengths)}"
            )
        values[algorithm] = np.array(rows, dtype=np.float64)[:, None, :]
        step_counts[algorithm] = np.array(counts, dtype=np.float64).mean(axis=0)
    return CurveData(tasks=(key,), values=values, step_counts=step_counts, ranges=ranges)
