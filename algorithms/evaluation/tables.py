"""CSV, LaTeX and Markdown tables of point estimates with confidence intervals."""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from jaxmarl_envs.algorithms.evaluation.plots import METRIC_LABELS
from jaxmarl_envs.algorithms.evaluation.results import _atomic_write_text
from jaxmarl_envs.algorithms.evaluation.statistics import Interval

_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def latex_escape(text: str) -> str:
    """Escapes LaTeX special characters (underscores in algorithm names, ...)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def _fmt(value: float, precision: int) -> str:
    return "nan" if not math.isfinite(value) else f"{value:.{precision}f}"


def _bound(value: float) -> str:
    """A CSV bound: ``repr`` of a finite value, empty when there is no interval."""
    return repr(value) if math.isfinite(value) else ""


def format_interval(interval: Interval, precision: int = 3, missing: str = "n/a") -> str:
    """``point [lower, upper]``, or ``point [missing]`` when the bounds are NaN (no interval,
    e.g. one run per task: pass ``missing="n/a: 1 seed"``)."""
    if not (math.isfinite(interval.lower) and math.isfinite(interval.upper)):
        return f"{_fmt(interval.point, precision)} [{missing}]"
    lower, upper = _fmt(interval.lower, precision), _fmt(interval.upper, precision)
    return f"{_fmt(interval.point, precision)} [{lower}, {upper}]"


def _columns(rows: Mapping[str, Mapping[str, Interval]], columns: Sequence[str] | None) -> list:
    """The column order: `columns`, or those of the first row. Refuses an empty table."""
    if not rows:
        raise ValueError("empty table")
    return list(columns or next(iter(rows.values())))


def write_interval_csv(
    rows: Mapping[str, Mapping[str, Interval]],
    path: str | os.PathLike,
    row_label: str = "algorithm",
    columns: Sequence[str] | None = None,
) -> Path:
    """CSV with one row per key and ``<column>``, ``<column>_lower``, ``<column>_upper`` fields
    (bounds left empty where there is no interval).

    Args:
        rows: row name -> column name -> Interval (e.g. ``aggregate_metrics`` output).
        path: output file.
        row_label: header of the first column.
        columns: column order (default: those of the first row).
    """
    columns = _columns(rows, columns)
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    header = [row_label]
    for column in columns:
        header += [column, f"{column}_lower", f"{column}_upper"]
    writer.writerow(header)
    for name, cells in rows.items():
        record = [name]
        for column in columns:
            interval = cells[column]
            record += [repr(interval.point), _bound(interval.lower), _bound(interval.upper)]
        writer.writerow(record)
    path = Path(path)
    _atomic_write_text(text.getvalue(), path, newline="")
    return path


def write_interval_latex(
    rows: Mapping[str, Mapping[str, Interval]],
    path: str | os.PathLike,
    row_label: str = "Algorithm",
    columns: Sequence[str] | None = None,
    precision: int = 3,
    caption: str | None = None,
    label: str | None = None,
    escape_rows: bool = True,
    missing: str = "n/a",
) -> Path:
    """A booktabs LaTeX table with cells ``point [lower, upper]`` (``point [missing]`` where the
    bounds are NaN).

    Args:
        rows: row name -> column name -> Interval.
        path: output file.
        row_label: header of the first column.
        columns: column order (default: those of the first row).
        precision: decimals.
        caption: optional caption (escaped).
        label: optional ``\\label`` key.
        escape_rows: escape LaTeX special characters in row names (False for names that are
            already LaTeX).
        missing: the text for a missing interval (escaped).
    """
    columns = _columns(rows, columns)
    headers = [latex_escape(METRIC_LABELS.get(c, c)) for c in columns]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        r"\begin{tabular}{l" + "c" * len(columns) + "}",
        r"\toprule",
        " & ".join([latex_escape(row_label), *headers]) + r" \\",
        r"\midrule",
    ]
    for name, cells in rows.items():
        values = [format_interval(cells[c], precision, latex_escape(missing)) for c in columns]
        row_name = latex_escape(name) if escape_rows else name
        lines.append(" & ".join([row_name, *values]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(r"\caption{" + latex_escape(caption) + "}")
    if label:
        lines.append(r"\label{" + label + "}")
    lines.append(r"\end{table}")
    path = Path(path)
    _atomic_write_text("\n".join(lines) + "\n", path)
    return path


def auto_decimals(values: Iterable[float], digits: int = 3) -> int:
    """Decimals (0 to 3) that show `digits` significant digits of the largest finite |value|:
    41.19 -> 1 (41.2), 0.998 -> 3, 1234.5 -> 0."""
    finite = [abs(v) for v in values if math.isfinite(v) and v != 0.0]
    if not finite:
        return min(3, digits)
    return int(min(3, max(0, digits - 1 - math.floor(math.log10(max(finite))))))


def write_interval_markdown(
    rows: Mapping[str, Mapping[str, Interval]],
    path: str | os.PathLike,
    row_label: str = "algorithm",
    columns: Sequence[str] | None = None,
    precision: int | Mapping[str, int] = 3,
    caption: str | None = None,
    missing: str = "n/a",
) -> Path:
    """A GitHub Markdown table with cells ``point [lower, upper]`` (``point [missing]`` where the
    bounds are NaN), numbers right-aligned, the caption as a paragraph below it.

    Args:
        rows: row name -> column name -> Interval.
        path: output file.
        row_label: header of the first column.
        columns: column order (default: those of the first row).
        precision: decimals, for every column or per column name (see `auto_decimals`).
        caption: optional text under the table.
        missing: the text for a missing interval.
    """
    columns = _columns(rows, columns)

    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    decimals = {c: precision if isinstance(precision, int) else precision[c] for c in columns}
    headers = [cell(METRIC_LABELS.get(c, c)) for c in columns]
    lines = [
        "| " + " | ".join([cell(row_label), *headers]) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for name, cells in rows.items():
        values = [format_interval(cells[c], decimals[c], missing) for c in columns]
        lines.append("| " + " | ".join([cell(name), *values]) + " |")
    if caption:
        lines += ["", caption]
    path = Path(path)
    _atomic_write_text("\n".join(lines) + "\n", path)
    return path


def write_aggregate_tables(
    results: Mapping[str, Mapping[str, Interval]],
    csv_path: str | os.PathLike,
    latex_path: str | os.PathLike,
    caption: str | None = None,
    precision: int = 3,
    missing: str = "n/a",
    markdown_path: str | os.PathLike | None = None,
) -> list[Path]:
    """Aggregate metrics (algorithm -> metric -> Interval) as CSV and LaTeX (and Markdown)."""
    written = [
        write_interval_csv(results, csv_path),
        write_interval_latex(
            results, latex_path, caption=caption, precision=precision, missing=missing
        ),
    ]
    if markdown_path is not None:
        written.append(
            write_interval_markdown(
                results, markdown_path, caption=caption, precision=precision, missing=missing
            )
        )
    return written


def write_poi_tables(
    pairs: Mapping[tuple[str, str], Interval],
    csv_path: str | os.PathLike,
    latex_path: str | os.PathLike,
    caption: str | None = None,
    precision: int = 3,
    missing: str = "n/a",
) -> list[Path]:
    """P(X > Y) per pair as CSV (columns x, y, probability, lower, upper) and LaTeX."""
    if not pairs:
        raise ValueError("empty table")
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    writer.writerow(["x", "y", "probability", "probability_lower", "probability_upper"])
    for (x, y), interval in pairs.items():
        writer.writerow(
            [x, y, repr(interval.point), _bound(interval.lower), _bound(interval.upper)]
        )
    csv_path = Path(csv_path)
    _atomic_write_text(text.getvalue(), csv_path, newline="")
    rows = {
        f"P({latex_escape(x)} $>$ {latex_escape(y)})": {"probability": iv}
        for (x, y), iv in pairs.items()
    }
    latex = write_interval_latex(
        rows,
        latex_path,
        row_label="Comparison",
        caption=caption,
        precision=precision,
        escape_rows=False,
        missing=missing,
    )
    return [csv_path, latex]
