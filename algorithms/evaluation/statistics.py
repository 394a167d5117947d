"""Aggregate metrics with stratified-bootstrap confidence intervals (rliable's estimators).

Scores come as (num_runs, num_tasks) matrices, one per algorithm. Definitions (as rliable):

- mean: mean over tasks of the per-task mean over runs;
- median: median over tasks of the per-task mean over runs;
- IQM: 25% trimmed mean of all run x task scores pooled, i.e.
  ``scipy.stats.trim_mean(scores.flatten(), 0.25)``: sort the n pooled scores, drop
  ``int(0.25 * n)`` from each end, average the rest;
- optimality gap: ``gamma - mean(minimum(scores, gamma))`` (gamma = 1);
- probability of improvement P(X > Y): per task, the Mann-Whitney U statistic of X over Y divided
  by n_x * n_y (ties count one half), averaged over tasks;
- performance profile at tau: the fraction of all run x task scores strictly greater than tau.

Confidence intervals come from the stratified bootstrap: each replicate draws, independently for
every task, num_runs runs with replacement from that task's runs (tasks are never mixed; for
P(X > Y) the two algorithms are resampled independently). Intervals are percentile (default) or
BCa (bias-corrected and accelerated, acceleration from the stratified jackknife that leaves out
one run of one task at a time, as scipy.stats.bootstrap does for several samples).

Reproducibility: an integer seed is combined with the algorithm names through
``numpy.random.SeedSequence``, so each algorithm's interval depends only on the seed and its own
scores (not on which other algorithms are compared), and runs are put in a canonical order
inside each task first, so permuting runs changes nothing.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import numpy as np

AGGREGATE_METRICS = ("mean", "median", "iqm", "optimality_gap")
Method = Literal["percentile", "bca"]
_MAX_ELEMENTS = 1 << 22  # elements per bootstrap chunk (bounds memory, ~32 MiB of float64)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval [lower, upper]."""

    point: float
    lower: float
    upper: float

    @property
    def width(self) -> float:
        """upper - lower."""
        return self.upper - self.lower


# ---------------------------------------------------------------------------------------------
# Point estimates; every function accepts leading batch axes: scores (..., num_runs, num_tasks).
# ---------------------------------------------------------------------------------------------


def trim_mean(x: np.ndarray, proportion: float = 0.25) -> np.ndarray:
    """Trimmed mean along the last axis, as ``scipy.stats.trim_mean``.

    Args:
        x: (..., n) values.
        proportion: fraction cut from each end; ``int(proportion * n)`` values are dropped.

    Returns:
        (...) trimmed means.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    cut = int(proportion * n)
    if n == 0 or cut >= n - cut:
        raise ValueError(f"trim_mean: cannot cut {cut} values from each end of {n}")
    if cut == 0:
        return x.mean(axis=-1)
    part = np.partition(x, (cut, n - cut - 1), axis=-1)
    return part[..., cut : n - cut].mean(axis=-1)


def _check_scores(scores: np.ndarray, name: str = "scores") -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim < 2:
        raise ValueError(f"{name}: expected (num_runs, num_tasks), got shape {scores.shape}")
    if scores.shape[-2] == 0 or scores.shape[-1] == 0:
        raise ValueError(f"{name}: empty score matrix of shape {scores.shape}")
    if not np.all(np.isfinite(scores)):
        raise ValueError(f"{name}: scores must be finite")
    return scores


def aggregate_mean(scores: np.ndarray) -> np.ndarray:
    """Mean over tasks of per-task mean scores: (..., R, T) -> (...)."""
    return np.asarray(scores, dtype=np.float64).mean(axis=-2).mean(axis=-1)


def aggregate_median(scores: np.ndarray) -> np.ndarray:
    """Median over tasks of per-task mean scores: (..., R, T) -> (...)."""
    return np.median(np.asarray(scores, dtype=np.float64).mean(axis=-2), axis=-1)


def aggregate_iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean of all run x task scores pooled: (..., R, T) -> (...)."""
    scores = np.asarray(scores, dtype=np.float64)
    return trim_mean(scores.reshape(*scores.shape[:-2], -1), 0.25)


def aggregate_optimality_gap(scores: np.ndarray, gamma: float = 1.0) -> np.ndarray:
    """``gamma - mean(minimum(scores, gamma))`` over all runs and tasks: (..., R, T) -> (...)."""
    scores = np.asarray(scores, dtype=np.float64)
    return gamma - np.minimum(scores, gamma).mean(axis=(-2, -1))


def probability_of_improvement(scores_x: np.ndarray, scores_y: np.ndarray) -> np.ndarray:
    """P(X > Y): per-task Mann-Whitney U / (n_x n_y), ties counting half, averaged over tasks.

    Args:
        scores_x: (..., Rx, T) scores of algorithm X.
        scores_y: (..., Ry, T) scores of algorithm Y (same tasks, any number of runs).

    Returns:
        (...) probabilities; exactly 0.5 when X and Y have the same scores.
    """
    return _poi_per_task(np.asarray(scores_x, float), np.asarray(scores_y, float)).mean(axis=-1)


def _poi_counts(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """2 * #(x > y) + #(x == y) per (x run, task): (..., Rx, Ry, T) summed over Ry."""
    xe, ye = x[..., :, None, :], y[..., None, :, :]
    return 2 * (xe > ye).sum(axis=-2) + (xe == ye).sum(axis=-2)


def _poi_per_task(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    rx, ry = x.shape[-2], y.shape[-2]
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(f"P(X > Y): task counts differ ({x.shape[-1]} vs {y.shape[-1]})")
    return _poi_counts(x, y).sum(axis=-2) / (2.0 * rx * ry)


# ---------------------------------------------------------------------------------------------
# Statistics as objects the bootstrap and the jackknife can evaluate.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistic:
    """A statistic of a (num_runs, num_tasks) score matrix.

    Attributes:
        fn: reduces the last axis, (..., n) -> (...) or (..., K); applied to the pooled run x task
            scores, or to the per-task means when ``on_task_means`` is True.
        on_task_means: whether ``fn`` sees the T per-task means instead of the pooled scores.
        cost: temporary elements ``fn`` makes per input element (bounds bootstrap chunk sizes).
    """

    fn: Callable[[np.ndarray], np.ndarray]
    on_task_means: bool = False
    cost: int = 1

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """(..., R, T) -> (...) or (..., K)."""
        if self.on_task_means:
            return self.fn(scores.mean(axis=-2))
        return self.fn(scores.reshape(*scores.shape[:-2], -1))

    def ragged(self, columns: Sequence[np.ndarray]) -> np.ndarray:
        """The statistic of per-task columns (..., R_t) with possibly different R_t."""
        if self.on_task_means:
            return self.fn(np.stack([c.mean(axis=-1) for c in columns], axis=-1))
        return self.fn(np.concatenate(columns, axis=-1))


@dataclass(frozen=True)
class StackedStatistic:
    """Several statistics evaluated together, stacked on a new last axis."""

    parts: tuple[Statistic, ...]

    @property
    def cost(self) -> int:
        """The largest cost of the parts."""
        return max(part.cost for part in self.parts)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        """(..., R, T) -> (..., len(parts))."""
        return np.stack([part(scores) for part in self.parts], axis=-1)

    def ragged(self, columns: Sequence[np.ndarray]) -> np.ndarray:
        """See :meth:`Statistic.ragged`."""
        return np.stack([part.ragged(columns) for part in self.parts], axis=-1)


def metric_statistic(name: str, gamma: float = 1.0) -> Statistic:
    """The :class:`Statistic` of an aggregate metric named in ``AGGREGATE_METRICS``."""
    if name == "mean":
        return Statistic(lambda m: m.mean(axis=-1), on_task_means=True)
    if name == "median":
        return Statistic(lambda m: np.median(m, axis=-1), on_task_means=True)
    if name == "iqm":
        return Statistic(lambda x: trim_mean(x, 0.25))
    if name == "optimality_gap":
        return Statistic(lambda x: gamma - np.minimum(x, gamma).mean(axis=-1))
    raise ValueError(f"unknown aggregate metric {name!r}; choose from {AGGREGATE_METRICS}")


def profile_statistic(taus: np.ndarray) -> Statistic:
    """Fraction of pooled scores strictly above each tau: (..., R, T) -> (..., K)."""
    taus = np.asarray(taus, dtype=np.float64)
    return Statistic(lambda x: (x[..., :, None] > taus).mean(axis=-2), cost=max(1, taus.size))


# ---------------------------------------------------------------------------------------------
# Stratified bootstrap engine
# ---------------------------------------------------------------------------------------------


def make_rng(seed: int | np.random.Generator, *names: str) -> np.random.Generator:
    """A Generator from an int seed and names (stable across processes), or ``seed`` itself."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int or a numpy Generator, got {seed!r}")
    key = tuple(zlib.crc32(name.encode("utf-8")) for name in names)
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=key))


def _canonical_order(scores: np.ndarray) -> np.ndarray:
    """Orders runs inside each task canonically (lexicographic over any leading axes)."""
    lead = scores.shape[:-2]
    num_runs, num_tasks = scores.shape[-2:]
    out = np.empty_like(scores)
    for t in range(num_tasks):
        rows = np.moveaxis(scores[..., t], -1, 0).reshape(num_runs, -1)  # (R, prod(lead))
        order = np.lexsort(rows.T[::-1]) if rows.shape[1] else np.arange(num_runs)
        out[..., t] = scores[..., t][..., order] if lead else scores[order, t]
    return out


def _check_reps(reps: int, confidence: float, method: str) -> None:
    if isinstance(reps, bool) or not isinstance(reps, (int, np.integer)) or reps < 1:
        raise ValueError(f"reps must be a positive int, got {reps!r}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    if method not in ("percentile", "bca"):
        raise ValueError(f"method must be 'percentile' or 'bca', got {method!r}")


def _draw_indices(rng: np.random.Generator, size: int, num_runs: int, num_tasks: int):
    """(size, num_runs, num_tasks) run indices, drawn independently within each task."""
    return rng.integers(0, num_runs, size=(size, num_runs, num_tasks))


def _chunks(reps: int, elements_per_rep: int):
    chunk = max(1, _MAX_ELEMENTS // max(1, elements_per_rep))
    done = 0
    while done < reps:
        size = min(chunk, reps - done)
        yield size
        done += size


def _resample(scores: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """scores (*E, R, T), idx (b, R, T) -> (b, *E, R, T), column t drawn from column t only."""
    sample = scores[..., idx, np.arange(scores.shape[-1])]  # (*E, b, R, T)
    return np.moveaxis(sample, scores.ndim - 2, 0)


def stratified_resample(
    scores: np.ndarray, reps: int, seed: int | np.random.Generator = 0
) -> np.ndarray:
    """Stratified bootstrap replicates of a score matrix (the engine's resampling, exposed).

    Args:
        scores: (num_runs, num_tasks).
        reps: number of replicates.
        seed: int seed or numpy Generator.

    Returns:
        (reps, num_runs, num_tasks); column t of every replicate holds runs of task t only.
    """
    scores = _check_scores(scores)
    rng = make_rng(seed)
    idx = _draw_indices(rng, reps, *scores.shape[-2:])
    return _resample(scores, idx)


def _bootstrap_distribution(
    scores: np.ndarray, statistic: Statistic | StackedStatistic, reps: int, rng: np.random.Generator
) -> np.ndarray:
    """(reps, *statistic output) under the stratified bootstrap of scores (*E, R, T)."""
    num_runs, num_tasks = scores.shape[-2:]
    out = []
    for size in _chunks(reps, scores.size * statistic.cost):
        out.append(statistic(_resample(scores, _draw_indices(rng, size, num_runs, num_tasks))))
    return np.concatenate(out, axis=0)


def _jackknife(statistic, scores: np.ndarray) -> np.ndarray:
    """Leave-one-run-out values per task: scores (*E, R, T) -> (T, R, *statistic output)."""
    num_runs, num_tasks = scores.shape[-2:]
    if num_runs < 2:
        raise ValueError("BCa intervals need at least 2 runs per task")
    columns = [scores[..., t] for t in range(num_tasks)]
    values = []
    for t in range(num_tasks):
        row = []
        for r in range(num_runs):
            reduced = list(columns)
            reduced[t] = np.delete(columns[t], r, axis=-1)
            row.append(statistic.ragged(reduced))
        values.append(row)
    return np.asarray(values, dtype=np.float64)


def _acceleration(*jackknives: np.ndarray) -> np.ndarray:
    """BCa acceleration from per-stratum jackknife values, each (strata, n, ...)."""
    num = den = 0.0
    for jack in jackknives:
        n = jack.shape[1]
        u = (n - 1) * (jack.mean(axis=1, keepdims=True) - jack)
        num = num + (u**3).sum(axis=(0, 1)) / n**3
        den = den + (u**2).sum(axis=(0, 1)) / n**2
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    scale = max(float(np.max(np.abs(np.concatenate([j.ravel() for j in jackknives])))), 1.0)
    flat = den <= (1e-12 * scale) ** 2  # jackknife values all equal: no skewness to correct
    with np.errstate(divide="ignore", invalid="ignore"):
        accel = np.where(flat, 0.0, num / (6.0 * np.where(flat, 1.0, den) ** 1.5))
    return accel


_NORMAL = NormalDist()


def _bca_bounds(
    point: np.ndarray, boots: np.ndarray, accel: np.ndarray, confidence: float
) -> tuple[np.ndarray, np.ndarray]:
    alpha = 1.0 - confidence
    z_lo, z_hi = _NORMAL.inv_cdf(alpha / 2), _NORMAL.inv_cdf(1 - alpha / 2)
    reps = boots.shape[0]
    frac = ((boots < point).sum(axis=0) + (boots <= point).sum(axis=0)) / (2.0 * reps)
    lower = np.full(point.shape, np.nan)
    upper = np.full(point.shape, np.nan)
    degenerate = []
    for i in np.ndindex(point.shape):
        if not 0.0 < frac[i] < 1.0:
            degenerate.append(i)
            continue
        z0 = _NORMAL.inv_cdf(float(frac[i]))
        qs = []
        for z in (z_lo, z_hi):
            denom = 1.0 - accel[i] * (z0 + z)
            qs.append(_NORMAL.cdf(z0 + (z0 + z) / denom) if denom > 0 else np.nan)
        if not np.all(np.isfinite(qs)):
            degenerate.append(i)
            continue
        column = boots[(slice(None), *i)]
        lower[i], upper[i] = np.quantile(column, qs)
    if degenerate:
        warnings.warn(
            f"BCa interval undefined for {len(degenerate)} component(s) (the point estimate lies "
            "outside the bootstrap distribution or the acceleration is too large); returned NaN. "
            "Use method='percentile' or more runs.",
            RuntimeWarning,
            stacklevel=3,
        )
    return lower, upper


def _interval_bounds(
    point: np.ndarray,
    boots: np.ndarray,
    confidence: float,
    method: Method,
    jackknife: Callable[[], tuple[np.ndarray, ...]],
) -> tuple[np.ndarray, np.ndarray]:
    if method == "percentile":
        alpha = 1.0 - confidence
        lower, upper = np.percentile(boots, [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0)
        return lower, upper
    return _bca_bounds(point, boots, _acceleration(*jackknife()), confidence)


def bootstrap_interval(
    scores: np.ndarray,
    statistic: Statistic | StackedStatistic,
    reps: int = 50_000,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Point estimate and stratified-bootstrap confidence interval of a statistic.

    Args:
        scores: (num_runs, num_tasks), or (*E, num_runs, num_tasks) for statistics evaluated at
            several points E at once (e.g. logged steps), resampling whole runs across E.
        statistic: a :class:`Statistic` (see :func:`metric_statistic`).
        reps: bootstrap replicates.
        confidence: interval coverage, e.g. 0.95.
        method: "percentile" or "bca".
        seed: int seed or numpy Generator.

    Returns:
        (point, lower, upper), each of the statistic's output shape; the bounds are NaN with a
        single run per task (resampling one run cannot vary, so there is no interval).
    """
    _check_reps(reps, confidence, method)
    scores = _canonical_order(_check_scores(scores))
    rng = make_rng(seed)
    point = np.asarray(statistic(scores[None])[0], dtype=np.float64)
    if scores.shape[-2] == 1:
        return point, np.full(point.shape, np.nan), np.full(point.shape, np.nan)
    boots = _bootstrap_distribution(scores, statistic, reps, rng)
    lower, upper = _interval_bounds(
        point, boots, confidence, method, lambda: (_jackknife(statistic, scores),)
    )
    return point, np.asarray(lower), np.asarray(upper)


# ---------------------------------------------------------------------------------------------
# Public aggregate APIs over {algorithm: scores}
# ---------------------------------------------------------------------------------------------


def _check_score_dict(scores: Mapping[str, np.ndarray], ndim: int = 2) -> dict[str, np.ndarray]:
    if not scores:
        raise ValueError("no algorithms given")
    out = {}
    num_tasks = None
    for name, value in scores.items():
        value = _check_scores(value, f"scores[{name!r}]")
        if value.ndim != ndim:
            raise ValueError(f"scores[{name!r}]: expected {ndim} axes, got shape {value.shape}")
        task_axis = 1
        if num_tasks is None:
            num_tasks = value.shape[task_axis]
        elif value.shape[task_axis] != num_tasks:
            raise ValueError(
                f"scores[{name!r}] has {value.shape[task_axis]} tasks, others have {num_tasks}"
            )
        out[name] = value
    return out


def aggregate_metrics(
    scores: Mapping[str, np.ndarray],
    metrics: Sequence[str] = AGGREGATE_METRICS,
    reps: int = 50_000,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: int = 0,
    gamma: float = 1.0,
) -> dict[str, dict[str, Interval]]:
    """Aggregate metrics with stratified-bootstrap CIs for every algorithm.

    Args:
        scores: algorithm -> (num_runs, num_tasks) scores (normalised for optimality gap).
        metrics: names from ``AGGREGATE_METRICS``.
        reps: bootstrap replicates (one shared resample per replicate for all metrics).
        confidence: interval coverage.
        method: "percentile" or "bca".
        seed: base seed (combined with each algorithm's name).
        gamma: optimality-gap threshold.

    Returns:
        algorithm -> metric -> Interval (NaN bounds for an algorithm with one run per task).
    """
    scores = _check_score_dict(scores)
    if not metrics:
        raise ValueError("no metrics requested")
    statistic = StackedStatistic(tuple(metric_statistic(m, gamma) for m in metrics))
    out = {}
    for name, matrix in scores.items():
        point, lower, upper = bootstrap_interval(
            matrix, statistic, reps, confidence, method, make_rng(seed, "aggregate", name)
        )
        out[name] = {
            m: Interval(float(point[i]), float(lower[i]), float(upper[i]))
            for i, m in enumerate(metrics)
        }
    return out


def performance_profile(
    scores: Mapping[str, np.ndarray],
    taus: np.ndarray | None = None,
    reps: int = 2_000,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Score distributions: fraction of run x task scores above tau, with CIs.

    Args:
        scores: algorithm -> (num_runs, num_tasks).
        taus: (K,) thresholds (default: 101 points spanning every algorithm's scores).

    Returns:
        (taus (K,), algorithm -> (point (K,), lower (K,), upper (K,))).
    """
    scores = _check_score_dict(scores)
    if taus is None:
        pooled = np.concatenate([s.ravel() for s in scores.values()])
        taus = np.linspace(pooled.min(), pooled.max(), 101)
    taus = np.asarray(taus, dtype=np.float64)
    if taus.ndim != 1 or taus.size == 0:
        raise ValueError(f"taus must be a non-empty 1-D array, got shape {taus.shape}")
    statistic = profile_statistic(taus)
    out = {}
    for name, matrix in scores.items():
        rng = make_rng(seed, "profile", name)
        out[name] = bootstrap_interval(matrix, statistic, reps, confidence, method, rng)
    return taus, out


def sample_efficiency_curves(
    values: Mapping[str, np.ndarray],
    metric: str = "iqm",
    reps: int = 2_000,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: int = 0,
) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """An aggregate metric (IQM by default) at every logged step, with CIs.

    Whole runs are resampled (stratified by task) once per replicate and shared by all steps, so
    every step's interval is a valid stratified-bootstrap interval.

    Args:
        values: algorithm -> (num_runs, num_tasks, num_steps).

    Returns:
        algorithm -> (point (S,), lower (S,), upper (S,)).
    """
    values = _check_score_dict(values, ndim=3)
    statistic = metric_statistic(metric)
    out = {}
    for name, tensor in values.items():
        stepwise = np.moveaxis(tensor, -1, 0)  # (S, R, T)
        rng = make_rng(seed, "curve", metric, name)
        out[name] = bootstrap_interval(stepwise, statistic, reps, confidence, method, rng)
    return out


def _poi_jackknife(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-run-out P(X > Y) per task of X and of Y: (T, Rx) and (T, Ry)."""
    rx, ry, num_tasks = x.shape[0], y.shape[0], x.shape[1]
    if rx < 2 or ry < 2:
        raise ValueError("BCa intervals need at least 2 runs per task")
    per_task = _poi_per_task(x, y)  # (T,)
    total = per_task.mean()
    row_counts = _poi_counts(x, y)  # (Rx, T): 2 * #(x_i > y) + #(x_i == y)
    col_counts = 2 * rx - _poi_counts(y, x)  # (Ry, T): contribution of each y_j
    task_counts = row_counts.sum(axis=0)  # (T,)
    jack_x = total + ((task_counts - row_counts) / (2.0 * (rx - 1) * ry) - per_task) / num_tasks
    jack_y = total + ((task_counts - col_counts) / (2.0 * rx * (ry - 1)) - per_task) / num_tasks
    return jack_x.T, jack_y.T


def probability_of_improvement_interval(
    scores_x: np.ndarray,
    scores_y: np.ndarray,
    reps: int = 2_000,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: int | np.random.Generator = 0,
) -> Interval:
    """P(X > Y) with a CI from independent stratified bootstraps of X and of Y.

    Args:
        scores_x: (Rx, T) scores of X.
        scores_y: (Ry, T) scores of Y.

    Returns:
        Interval of P(X > Y); NaN bounds when X or Y has a single run per task (no interval).
    """
    _check_reps(reps, confidence, method)
    x = _canonical_order(_check_scores(scores_x, "scores_x"))
    y = _canonical_order(_check_scores(scores_y, "scores_y"))
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"P(X > Y): task counts differ ({x.shape[1]} vs {y.shape[1]})")
    rng = make_rng(seed)
    point = np.asarray(probability_of_improvement(x, y))
    if min(x.shape[0], y.shape[0]) == 1:
        return Interval(float(point), float("nan"), float("nan"))
    boots = []
    for size in _chunks(reps, x.shape[0] * y.shape[0] * x.shape[1]):
        bx = _resample(x, _draw_indices(rng, size, *x.shape))
        by = _resample(y, _draw_indices(rng, size, *y.shape))
        boots.append(probability_of_improvement(bx, by))
    boots_arr = np.concatenate(boots)
    lower, upper = _interval_bounds(
        point, boots_arr, confidence, method, lambda: _poi_jackknife(x, y)
    )
    return Interval(float(point), float(lower), float(upper))


def probability_of_improvement_pairs(
    scores: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]] | None = None,
    reps: int = 2_000,
    confidence: float = 0.95,
    method: Method = "percentile",
    seed: int = 0,
) -> dict[tuple[str, str], Interval]:
    """P(X > Y) with CIs for pairs of algorithms (default: every ordered pair X before Y)."""
    scores = _check_score_dict(scores)
    names = list(scores)
    if pairs is None:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    out = {}
    for a, b in pairs:
        if a not in scores or b not in scores:
            raise ValueError(f"unknown algorithm in pair {(a, b)}; have {names}")
        rng = make_rng(seed, "poi", a, b)
        out[(a, b)] = probability_of_improvement_interval(
            scores[a], scores[b], reps, confidence, method, rng
        )
    return out


def single_task_curve(
    values: np.ndarray,
    confidence: float = 0.95,
    method: Literal["t", "bootstrap"] = "t",
    reps: int = 2_000,
    seed: int | np.random.Generator = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over runs at each logged step with a CI over the task's actual runs.

    Args:
        values: (num_runs, num_steps) per-run means.
        confidence: interval coverage.
        method: "t": mean +- t_{(1+confidence)/2, n-1} * s / sqrt(n) with the sample standard
            deviation s (ddof=1) of the n runs; "bootstrap": percentile interval of the mean
            with runs resampled with replacement.
        reps: bootstrap replicates (method "bootstrap").
        seed: int seed or Generator (method "bootstrap").

    Returns:
        (mean (S,), lower (S,), upper (S,)); the bounds are NaN with a single run.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] == 0:
        raise ValueError(f"values: expected (num_runs, num_steps), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError("values must be finite")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}")
    n = values.shape[0]
    mean = values.mean(axis=0)
    if n == 1:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan.copy()
    if method == "t":
        from scipy import stats

        half = stats.t.ppf((1 + confidence) / 2, df=n - 1) * values.std(axis=0, ddof=1)
        half = half / np.sqrt(n)
        return mean, mean - half, mean + half
    if method == "bootstrap":
        values = np.asarray(sorted(values.tolist()), dtype=np.float64)  # canonical run order
        _check_reps(reps, confidence, "percentile")
        rng = make_rng(seed)
        boots = []
        for size in _chunks(reps, values.size):
            idx = rng.integers(0, n, size=(size, n))
            boots.append(values[idx].mean(axis=1))
        alpha = 1.0 - confidence
        lower, upper = np.percentile(
            np.concatenate(boots), [100 * alpha / 2, 100 * (1 - alpha / 2)], axis=0
        )
        return mean, lower, upper
    raise ValueError(f"method must be 't' or 'bootstrap', got {method!r}")
