"""Throughput against batch size for each environment family (issue 18), under the strict
protocol of `common.make_strict_run`: every timed call resets the whole batch, then runs
100 random legal steps in one `lax.scan`, reducing every observation array and the reward
into a checksum every step.

Run: `python benchmarks/plot_scaling.py` (writes docs/scaling.png and docs/scaling.csv and
prints a markdown table; `--help` for the options). `benchmarks/test_scaling.py` runs the
same sweep as a benchmark.

Absolute numbers depend on the machine and on what else runs on it: the load average
before and after the sweep is recorded with the figures.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import SCAN_STEPS, make_strict_run, ours, uniform_action  # noqa: E402

#: One representative id per family (where a family has a peer benchmark, the id it uses).
FAMILIES = {
    "rware": "rware-tiny-4ag",
    "lbf": "lbf-8x8-2p-2f-coop",
    "mpe": "mpe-simple_spread",
    "matrix": "matrix-climbing",
    "smax": "smax-3m",
    "cleaner": "Cleaner-v0",
    "connector": "Connector-v3",
    "multicvrp": "MultiCVRP-v0",
    "sar": "SearchAndRescue-v0",
}
BATCHES = (1, 4, 16, 64, 256, 1024, 4096, 16384)
ROOT = Path(__file__).resolve().parent.parent


def rounds_for(batch: int) -> int:
    """Timed calls per point: fewer at big batches, where one call takes seconds on 2 cores."""
    return 7 if batch <= 1024 else 5 if batch <= 4096 else 3


def strict_run(env_id: str, batch: int):
    """The strict-protocol call of `env_id` at `batch`: random legal actions from the action
    mask for discrete actions, uniform within the action spec's bounds for continuous ones
    (Search-and-Rescue's steering)."""
    import jaxmarl_envs

    reset, step, mask_of = ours(env_id)
    spec = jaxmarl_envs.make(env_id).action_spec
    if not np.issubdtype(spec.dtype, np.floating):
        return make_strict_run(reset, step, mask_of, batch=batch)
    return make_strict_run(reset, step, None, batch=batch, sample_action=uniform_action(spec))


#: Each timed sample repeats the call until it has run at least this long (small batches take
#: well under a millisecond per call, where one call's timing is mostly scheduling noise).
MIN_SAMPLE_S = 0.2


def measure_family(env_id: str, batches=BATCHES, log=print) -> list[dict]:
    """Env-steps/s of the strict-protocol call for `env_id` at every batch size.

    Every point is compiled first and its calls per sample chosen so that a sample lasts at
    least `MIN_SAMPLE_S`; then the samples go round-robin over the batch sizes (round r
    takes a sample of every point that has more than r rounds), so a slow spell of the machine
    spreads over the points instead of sinking the one measured during it. Median seconds
    per call over the samples, with the fastest and slowest sample.
    """
    runs, first_call, calls = {}, {}, {}
    for batch in batches:
        runs[batch] = strict_run(env_id, batch)
        start = time.perf_counter()
        jax.block_until_ready(runs[batch](jax.random.PRNGKey(0)))  # compiles
        first_call[batch] = time.perf_counter() - start
        start = time.perf_counter()
        jax.block_until_ready(runs[batch](jax.random.PRNGKey(1)))
        calls[batch] = max(1, math.ceil(MIN_SAMPLE_S / (time.perf_counter() - start)))
    times = {batch: [] for batch in batches}
    for r in range(max(rounds_for(b) for b in batches)):
        for batch in batches:
            if r < rounds_for(batch):
                keys = list(jax.random.split(jax.random.PRNGKey(r + 2), calls[batch]))
                start = time.perf_counter()
                for key in keys:
                    out = runs[batch](key)
                jax.block_until_ready(out)
                times[batch].append((time.perf_counter() - start) / calls[batch])
    rows = []
    for batch in batches:
        median = statistics.median(times[batch])
        rows.append(
            {
                "env_id": env_id,
                "batch": batch,
                "env_steps_per_s": batch * SCAN_STEPS / median,
                "median_s": median,
                "min_s": min(times[batch]),
                "max_s": max(times[batch]),
                "rounds": len(times[batch]),
                "calls_per_round": calls[batch],
                "first_call_s": first_call[batch],
            }
        )
        log(
            f"{env_id:22s} batch {batch:6d}: {rows[-1]['env_steps_per_s']:14,.0f} env-steps/s "
            f"({median:.5f} s/call, range {min(times[batch]):.5f}-{max(times[batch]):.5f}, "
            f"{len(times[batch])} x {calls[batch]} calls)"
        )
    return rows


def sweep(
    families: dict[str, str] = FAMILIES, batches=BATCHES, log=print
) -> tuple[list[dict], dict]:
    """Measures every family at every batch size; returns `(rows, context)`."""
    context = {
        "load_before": tuple(round(x, 2) for x in os.getloadavg()),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
    }
    rows = []
    for family, env_id in families.items():
        rows += [{"family": family, **row} for row in measure_family(env_id, batches, log)]
    context["load_after"] = tuple(round(x, 2) for x in os.getloadavg())
    return rows, context


def markdown_table(rows: list[dict], batches=BATCHES) -> str:
    """Env-steps/s per family (rows) and batch size (columns)."""
    families = list(dict.fromkeys(r["family"] for r in rows))
    head = "| family (id) | " + " | ".join(str(b) for b in batches) + " |"
    lines = [head, "|" + "---|" * (len(batches) + 1)]
    for fam in families:
        by_batch = {r["batch"]: r for r in rows if r["family"] == fam}
        env_id = next(r["env_id"] for r in rows if r["family"] == fam)
        cells = [f"{by_batch[b]['env_steps_per_s']:,.0f}" if b in by_batch else "" for b in batches]
        lines.append(f"| {fam} (`{env_id}`) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["family", "env_id", "batch", "env_steps_per_s", "median_s", "min_s", "max_s"]
    fields += ["rounds", "calls_per_round", "first_call_s"]
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for r in rows:
            writer.writerow({k: r[k] for k in fields})


def plot(rows: list[dict], path: Path, context: dict) -> None:
    """Log-log env-steps/s against batch size, one line per family."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    markers = "os^vDPX*hp"
    for i, fam in enumerate(dict.fromkeys(r["family"] for r in rows)):
        pts = sorted((r["batch"], r["env_steps_per_s"]) for r in rows if r["family"] == fam)
        env_id = next(r["env_id"] for r in rows if r["family"] == fam)
        marker = markers[i % len(markers)]
        ax.plot(*zip(*pts, strict=True), marker=marker, label=f"{fam} ({env_id})")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    batches = sorted({r["batch"] for r in rows})
    ax.set_xticks(batches, [f"{b:,}" for b in batches], fontsize=8)
    ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    ax.set_xlabel("batch size (environments stepped together)")
    ax.set_ylabel("env-steps / s")
    ax.set_title(
        f"Throughput vs batch size ({context['cpus']} CPU cores, {context['backend']}, "
        f"jax {context['jax']})",
        fontsize=10,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    note = (
        "strict protocol: reset in each call, 100-step scan, every observation reduced; "
        f"load avg {context['load_before'][0]} -> {context['load_after'][0]}"
    )
    fig.text(0.01, 0.01, note, fontsize=7, alpha=0.7)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "scaling.png")
    parser.add_argument("--csv", type=Path, default=ROOT / "docs" / "scaling.csv")
    parser.add_argument("--families", nargs="*", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--batches", nargs="*", type=int, default=list(BATCHES))
    args = parser.parse_args(argv)
    if any(b < 1 for b in args.batches):
        raise ValueError(f"batch sizes must be >= 1, got {args.batches}.")
    rows, context = sweep({f: FAMILIES[f] for f in args.families}, tuple(args.batches))
    write_csv(rows, args.csv)
    plot(rows, args.out, context)
    print(f"\n{markdown_table(rows, tuple(args.batches))}\n")
    print(f"context: {context}")
    print(f"wrote {args.out} and {args.csv}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
