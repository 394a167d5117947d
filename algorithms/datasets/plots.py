"""Dataset plots: a return histogram and a violin plot per tier (matplotlib, imported here)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _matplotlib():
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the installed extras
        raise ImportError(
            "dataset plots need matplotlib: pip install 'jaxmarl-envs[eval]'"
        ) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _violin_data(r: np.ndarray) -> np.ndarray:
    """A constant (or empty, or one-episode) tier has no density: draw it as a thin line."""
    if r.size >= 2 and np.ptp(r) > 0:
        return r
    c = float(r.mean()) if r.size else 0.0
    return np.array([c - 1e-6, c + 1e-6])


def plot_returns(
    returns: dict[str, np.ndarray], out_dir: str | os.PathLike, title: str = ""
) -> list[str]:
    """Writes `returns_histogram.png` (one panel per tier) and `returns_violin.png` (all
    tiers side by side) into `out_dir`; returns their paths."""
    plt = _matplotlib()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = list(returns)
    values = [np.asarray(returns[n], np.float64) for n in names]
    everything = np.concatenate(values) if values else np.zeros(0)
    lo, hi = (float(everything.min()), float(everything.max())) if everything.size else (0, 1)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    bins = np.linspace(lo, hi, 31)

    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 2.8), squeeze=False)
    for ax, name, r in zip(axes[0], names, values, strict=True):
        ax.hist(r, bins=bins, color="tab:blue", alpha=0.8)
        if r.size:
            ax.axvline(r.mean(), color="k", lw=1, ls="--", label=f"mean {r.mean():.3g}")
            ax.legend(fontsize=7)
        ax.set_title(f"{name} ({r.size} episodes)", fontsize=9)
        ax.set_xlabel("episode return")
    axes[0][0].set_ylabel("episodes")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    hist_path = out / "returns_histogram.png"
    fig.savefig(hist_path, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(1.6 * len(names) + 2, 3.2))
    parts = ax.violinplot([_violin_data(r) for r in values], showmeans=True, showextrema=True)
    for body in parts["bodies"]:
        body.set_alpha(0.6)
    ax.set_xticks(range(1, len(names) + 1), names)
    ax.set_ylabel("episode return")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    violin_path = out / "returns_violin.png"
    fig.savefig(violin_path, dpi=110)
    plt.close(fig)
    return [str(hist_path), str(violin_path)]
