"""Matplotlib figures (Agg backend, imported lazily): intervals, profiles, P(X > Y), curves."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from jaxmarl_envs.algorithms.evaluation.statistics import Interval

METRIC_LABELS = {
    "mean": "Mean",
    "median": "Median",
    "iqm": "IQM",
    "optimality_gap": "Optimality gap",
    "probability": "Probability",
}


def _pyplot():
    """Imports pyplot, selecting the non-interactive Agg backend unless pyplot is loaded."""
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - optional extra
        raise ImportError("plotting needs matplotlib: pip install matplotlib") from e
    if "matplotlib.pyplot" not in sys.modules:
        # Files only: no display needed. A session that already chose a backend keeps it.
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colours(names: Sequence[str]) -> dict[str, Any]:
    plt = _pyplot()
    cycle = plt.get_cmap("tab10")
    return {name: cycle(i % 10) for i, name in enumerate(names)}


# No creation date in PDF and SVG files (and fixed SVG element ids, below), so a figure rebuilt
# from the same results is the same file: committed reports otherwise change at every rebuild.
# PNG carries no date.
_REPRODUCIBLE: dict[str, dict[str, Any]] = {".pdf": {"CreationDate": None}, ".svg": {"Date": None}}


def _save(fig, paths: Sequence[str | os.PathLike]) -> list[Path]:
    """Saves `fig` to each path (format from the suffix), each written to a temporary file in
    the same folder and renamed over the path: a reader or a crash never sees half a figure."""
    from jaxmarl_envs.algorithms.evaluation.results import atomic_open

    plt = _pyplot()
    written = []
    try:
        for path in paths:
            path = Path(path)
            suffix = path.suffix.lower()
            with atomic_open(path, "wb", suffix=suffix) as f:
                with plt.rc_context({"svg.hashsalt": "jaxmarl_envs"}):
                    fig.savefig(
                        f,
                        format=suffix.lstrip(".") or None,
                        bbox_inches="tight",
                        dpi=150,
                        metadata=_REPRODUCIBLE.get(suffix),
                    )
            written.append(path)
    finally:
        plt.close(fig)
    return written


def _as_paths(path: str | os.PathLike | Sequence[str | os.PathLike]) -> list:
    if isinstance(path, (str, os.PathLike)):
        return [path]
    return list(path)


def plot_aggregate_intervals(
    results: Mapping[str, Mapping[str, Interval]],
    path: str | os.PathLike | Sequence[str | os.PathLike],
    metrics: Sequence[str] | None = None,
    xlabel: str = "Normalised score",
    confidence: float = 0.95,
    no_interval_note: str = "no confidence interval",
) -> list[Path]:
    """One panel per aggregate metric: each algorithm's CI as a bar, its point estimate as a tick.

    An interval with NaN bounds (e.g. one run per task) is drawn as its point only, and the axis
    label says so with `no_interval_note`.

    Args:
        results: algorithm -> metric -> Interval (from ``aggregate_metrics``).
        path: output file(s); the format follows the suffix (.png, .pdf, .svg).
        metrics: which metrics to draw (default: all in the first algorithm).
        no_interval_note: why some intervals are missing, e.g. "one seed: no confidence
            interval".

    Returns:
        The files written.
    """
    plt = _pyplot()
    algorithms = list(results)
    if not algorithms:
        raise ValueError("nothing to plot")
    metrics = list(metrics or next(iter(results.values())))
    colours = _colours(algorithms)
    fig, axes = plt.subplots(
        1,
        len(metrics),
        figsize=(3.2 * len(metrics), 0.45 * len(algorithms) + 1.4),
        squeeze=False,
        layout="constrained",
    )
    missing: list[str] = []
    for ax, metric in zip(axes[0], metrics, strict=True):
        for row, algorithm in enumerate(algorithms):
            interval = results[algorithm][metric]
            lower, upper = interval.lower, interval.upper
            if _has_interval(interval):
                ax.barh(
                    row,
                    upper - lower,
                    left=lower,
                    height=0.6,
                    color=colours[algorithm],
                    alpha=0.75,
                )
            else:
                ax.plot([interval.point], [row], "o", color=colours[algorithm], markersize=7)
                if algorithm not in missing:
                    missing.append(algorithm)
            ax.vlines(interval.point, row - 0.3, row + 0.3, color="black", linewidth=1.5)
        ax.set_yticks(range(len(algorithms)))
        ax.set_yticklabels(algorithms if ax is axes[0][0] else [])
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.grid(axis="x", alpha=0.3)
        ax.invert_yaxis()
    fig.supxlabel(_interval_label(xlabel, confidence, algorithms, missing, no_interval_note))
    return _save(fig, _as_paths(path))


def _has_interval(interval: Interval) -> bool:
    return bool(np.isfinite(interval.lower) and np.isfinite(interval.upper))


def _interval_label(
    text: str, confidence: float, names: Sequence[str], missing: Sequence[str], note: str
) -> str:
    """`text (95% CI)`, or which entries are points only and why."""
    if not missing:
        return f"{text} ({confidence:.0%} CI)"
    if len(missing) == len(names):
        return f"{text} (point estimates; {note})"
    return f"{text} ({confidence:.0%} CI; {', '.join(missing)}: {note})"


def plot_performance_profiles(
    taus: np.ndarray,
    profiles: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: str | os.PathLike | Sequence[str | os.PathLike],
    xlabel: str = r"Normalised score ($\tau$)",
    no_interval_note: str = "no confidence interval",
) -> list[Path]:
    """Fraction of runs with score > tau, one line per algorithm with its CI band (none where
    the bounds are NaN; the legend then adds `no_interval_note`)."""
    plt = _pyplot()
    colours = _colours(list(profiles))
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    for name, (point, lower, upper) in profiles.items():
        _line_with_band(ax, taus, point, lower, upper, colours[name], name, no_interval_note)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(r"Fraction of runs with score $> \tau$")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, _as_paths(path))


def plot_probability_of_improvement(
    pairs: Mapping[tuple[str, str], Interval],
    path: str | os.PathLike | Sequence[str | os.PathLike],
    confidence: float = 0.95,
    no_interval_note: str = "no confidence interval",
) -> list[Path]:
    """P(X > Y) per pair as an interval bar with its point estimate; 0.5 marked. A pair with
    NaN bounds is drawn as its point only (the axis label says why: `no_interval_note`)."""
    plt = _pyplot()
    if not pairs:
        raise ValueError("no pairs to plot")
    labels = [f"P({x} > {y})" for x, y in pairs]
    fig, ax = plt.subplots(figsize=(5.5, 0.45 * len(pairs) + 1.2), layout="constrained")
    missing = []
    for row, (label, interval) in enumerate(zip(labels, pairs.values(), strict=True)):
        if _has_interval(interval):
            ax.barh(row, interval.width, left=interval.lower, height=0.6, alpha=0.75)
        else:
            ax.plot([interval.point], [row], "o", color="tab:blue", markersize=7)
            missing.append(label)
        ax.vlines(interval.point, row - 0.3, row + 0.3, color="black", linewidth=1.5)
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(range(len(pairs)))
    ax.set_yticklabels(labels)
    ax.set_xlim(0, 1)
    ax.invert_yaxis()
    ax.set_xlabel(
        _interval_label("Probability of improvement", confidence, labels, missing, no_interval_note)
    )
    ax.grid(axis="x", alpha=0.3)
    return _save(fig, _as_paths(path))


def plot_curves(
    step_counts: Mapping[str, np.ndarray],
    curves: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    path: str | os.PathLike | Sequence[str | os.PathLike],
    ylabel: str,
    title: str | None = None,
    xlabel: str = "Environment steps",
    no_interval_note: str = "no confidence interval",
) -> list[Path]:
    """Curves with CI bands (sample-efficiency or single-task curves).

    Args:
        step_counts: algorithm -> (S,) x values.
        curves: algorithm -> (point (S,), lower (S,), upper (S,)); NaN bounds draw no band,
            and a curve without any band gets `no_interval_note` in its legend entry.
    """
    plt = _pyplot()
    colours = _colours(list(curves))
    fig, ax = plt.subplots(figsize=(5.5, 4), layout="constrained")
    for name, (point, lower, upper) in curves.items():
        x = step_counts[name]
        _line_with_band(ax, x, point, lower, upper, colours[name], name, no_interval_note)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, _as_paths(path))


def plot_curve_grid(
    panels: Mapping[str, tuple[Mapping[str, np.ndarray], Mapping[str, tuple]]],
    path: str | os.PathLike | Sequence[str | os.PathLike],
    ylabel: str,
    ncols: int = 3,
    xlabel: str = "Environment steps",
    no_interval_note: str = "no confidence interval",
) -> list[Path]:
    """Several `plot_curves` panels in one figure (one per task), each algorithm in the same
    colour everywhere, one legend below.

    Args:
        panels: title -> (step_counts, curves) as `plot_curves` takes them.
        ncols: panels per row.
    """
    if not panels:
        raise ValueError("no panels")
    plt = _pyplot()
    names = list(dict.fromkeys(n for _, curves in panels.values() for n in curves))
    colours = _colours(names)
    ncols = min(ncols, len(panels))
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(4.2 * ncols, 3.3 * nrows), layout="constrained", squeeze=False
    )
    handles: dict[str, Any] = {}
    for ax, (title, (step_counts, curves)) in zip(
        list(axes.flat)[: len(panels)], panels.items(), strict=True
    ):
        for name, (point, lower, upper) in curves.items():
            x = step_counts[name]
            _line_with_band(ax, x, point, lower, upper, colours[name], name, no_interval_note)
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.legend(
        list(handles.values()),
        list(handles),
        loc="outside lower center",
        ncols=min(len(handles), 5),
    )
    return _save(fig, _as_paths(path))


def _line_with_band(ax, x, point, lower, upper, colour, name: str, note: str) -> None:
    """A line with its CI band where the bounds are finite; the legend names a missing band."""
    band = np.isfinite(lower) & np.isfinite(upper)
    label = name if band.any() else f"{name} ({note})"
    ax.plot(x, point, color=colour, label=label, linewidth=2)
    if band.any():
        ax.fill_between(x, lower, upper, where=band, color=colour, alpha=0.2)
