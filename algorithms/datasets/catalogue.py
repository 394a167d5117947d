"""The dataset catalogue: one command per environment trains an online policy, then records the
`good`, `medium`, `poor` and `replay` tiers from its checkpoints, describes and combines them.

    python -m jaxmarl_envs.algorithms.datasets.catalogue --env lbf-8x8-2p-2f-coop --out data

writes `data/<env>/{run,good,medium,poor,replay,all,plots}` and `data/<env>/catalogue.json`.

Tiers (every checkpoint is an evaluation interval of one training run, re-evaluated on 256
sampled episodes; `q` is a checkpoint's mean return normalised to [0, 1] between the run's
worst and best checkpoint):
  good    the best checkpoint (highest evaluation return),
  medium  the checkpoint with `q` closest to 0.5 (earliest on ties),
  poor    the checkpoint with `q` closest to 0.1, trained before `medium`,
  replay  every checkpoint of the run in training order, an equal share of episodes each
          (see `record.py` for why this is the honest replay we can record).
All tiers act with sampled actions (as during training). The command fails (exit 1) unless the
recorded mean returns satisfy good > medium > poor.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: Per environment: algorithm and `jaxmarl train` config overrides (full and `--small`).
PRESETS: dict[str, dict[str, Any]] = {
    "rware-tiny-2ag": {
        # IPPO at the default lr stays ~0.1 through 1M steps here (a 1M small run gave tiers
        # 0.13 / 0.14 / 0.06, unordered) and reaches ~5 at 3M; at lr 5e-4 every one of 5
        # seeds learns, IQM 12.0 at 3M (RESULTS.md, MAPPO vs IPPO on the warehouse).
        "algorithm": "ippo",
        "full": {"total_steps": 3_000_000, "num_envs": 64, "num_evaluations": 20, "lr": 5e-4},
        "small": {"total_steps": 3_000_000, "num_envs": 64, "num_evaluations": 10, "lr": 5e-4},
    },
    "rware-tiny-4ag": {
        "algorithm": "ippo",
        "full": {"total_steps": 3_000_000, "num_envs": 64, "num_evaluations": 20},
        "small": {"total_steps": 1_000_000, "num_envs": 64, "num_evaluations": 10},
    },
    "lbf-8x8-2p-2f-coop": {
        "algorithm": "ippo",
        "full": {"total_steps": 1_500_000, "num_envs": 64, "num_evaluations": 20},
        "small": {
            "total_steps": 600_000,
            "num_envs": 64,
            "num_evaluations": 12,
            "rollout_length": 32,
            "hidden_sizes": "64,64",
            "lr": 0.001,
        },
    },
    "smax-3m": {
        # The PPO settings of tests/test_smax_learning.py (IPPO wins ~0.8 by 1M steps).
        "algorithm": "ippo",
        "full": {
            "total_steps": 3_000_000,
            "num_envs": 128,
            "rollout_length": 128,
            "lr": 0.002,
            "anneal_lr": True,
            "num_minibatches": 4,
            "num_evaluations": 20,
        },
        "small": {
            "total_steps": 1_000_000,
            "num_envs": 128,
            "rollout_length": 128,
            "lr": 0.002,
            "anneal_lr": True,
            "num_minibatches": 4,
            "num_evaluations": 10,
        },
    },
    "mpe-simple_spread-continuous": {
        "algorithm": "ippo",
        "full": {"total_steps": 3_000_000, "num_envs": 64, "num_evaluations": 20},
        "small": {"total_steps": 500_000, "num_envs": 64, "num_evaluations": 10},
    },
}
#: Normalised evaluation return each tier aims at (good takes the best checkpoint).
TIER_TARGETS = {"medium": 0.5, "poor": 0.1}


def train_run(env_id: str, out: Path, small: bool, seed: int, algorithm: str | None) -> Path:
    """Trains (or resumes) the catalogue's online run into `out/run`; returns the run folder."""
    from jaxmarl_envs.algorithms.cli import main as jaxmarl

    preset = PRESETS.get(env_id, PRESETS["lbf-8x8-2p-2f-coop"])
    algo = algorithm or preset["algorithm"]
    settings = dict(preset["small" if small else "full"])
    settings.update(
        env_id=env_id,
        seed=seed,
        out=str(out),
        run_name="run",
        gif=False,
        checkpoint_keep=settings["num_evaluations"],
    )
    run = out / "run"
    summary = run / "summary.json"
    if summary.exists() and json.loads(summary.read_text()).get("finished"):
        return run
    argv = ["train", algo, "--no-plots"]
    for key, value in settings.items():
        argv += ["--set", f"{key}={str(value).lower() if isinstance(value, bool) else value}"]
    if (run / "checkpoints").exists():
        argv.append("--resume")
    code = jaxmarl(argv)
    if code != 0:
        raise RuntimeError(f"training failed (exit {code}): jaxmarl {' '.join(argv)}")
    return run


def checkpoint_returns(
    run: Path, eval_episodes: int = 256, seed: int = 0
) -> list[tuple[int, int, float]]:
    """`(interval, env steps, mean return)` of every saved checkpoint, in training order.

    The training evaluations (32 episodes by default) are too noisy to rank checkpoints whose
    returns are close, so each checkpoint is re-evaluated here on `eval_episodes` sampled
    episodes (the same key for all, so the ranking compares policies, not luck).
    """
    import jax
    import numpy as np

    from jaxmarl_envs.algorithms.train_cli import load_policy

    folder = run / "checkpoints"
    steps = sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())
    if len(steps) < 3:
        raise ValueError(f"{run}: {len(steps)} checkpoints; the tiers need at least 3")
    evaluate, out = None, []
    key = jax.random.PRNGKey(seed + 0xE7A1)
    for step in steps:
        learner, params, meta = load_policy(str(folder / str(step)))
        if evaluate is None:  # one compiled evaluation for every checkpoint
            evaluate = jax.jit(learner.make_evaluate(eval_episodes, greedy=False))
        ret = np.asarray(jax.device_get(evaluate(params, key).episode_return))
        out.append((int(step), int(meta["steps"]), float(ret.mean())))
    return out


def pick_tiers(checkpoints: list[tuple[int, int, float]]) -> dict[str, int]:
    """`{tier: checkpoint interval}` for good, medium and poor (see the module docstring)."""
    returns = [r for _, _, r in checkpoints]
    lo, hi = min(returns), max(returns)
    span = max(hi - lo, 1e-12)
    q = [(r - lo) / span for r in returns]
    good = max(range(len(q)), key=lambda i: (q[i], -i))
    medium = min((i for i in range(len(q)) if i != good), key=lambda i: (abs(q[i] - 0.5), i))
    before = [i for i in range(medium) if i != good] or [
        i for i in range(len(q)) if i not in (good, medium)
    ]
    poor = min(before, key=lambda i: (abs(q[i] - TIER_TARGETS["poor"]), i))
    return {
        name: checkpoints[i][0] for name, i in (("good", good), ("medium", medium), ("poor", poor))
    }


def make_catalogue(
    env_id: str,
    out: str | Path,
    episodes: int = 1000,
    small: bool = False,
    seed: int = 0,
    algorithm: str | None = None,
    plots: bool = True,
) -> dict:
    """Trains, records the four tiers, describes and combines them; returns the summary that
    is also written to `<out>/<env_id>/catalogue.json`."""
    from jaxmarl_envs.algorithms.datasets.record import record_dataset
    from jaxmarl_envs.algorithms.datasets.tools import (
        combine_datasets,
        coverage_summary,
        describe_dataset,
    )

    root = Path(out) / env_id
    root.mkdir(parents=True, exist_ok=True)
    run = train_run(env_id, root, small, seed, algorithm)
    checkpoints = checkpoint_returns(run)
    chosen = pick_tiers(checkpoints)
    by_interval = {c[0]: c for c in checkpoints}
    summary: dict[str, Any] = {
        "env_id": env_id,
        "run": str(run),
        "episodes_per_tier": episodes,
        "seed": seed,
        "checkpoints": [{"interval": i, "steps": s, "eval_return": r} for i, s, r in checkpoints],
        "tiers": {},
    }
    for k, tier in enumerate(("good", "medium", "poor", "replay")):
        if tier == "replay":
            policy = str(run)
        else:
            policy = str(run / "checkpoints" / str(chosen[tier]))
        rec = record_dataset(
            env_id,
            policy,
            episodes,
            root / tier,
            seed=seed + 1000 * (k + 1),
            tier=tier,
            greedy=False,
        )
        entry = {
            "vault": str(root / tier),
            "returns": rec["returns"],
            "steps": rec["steps"],
            "coverage": coverage_summary(root / tier),
        }
        if tier != "replay":
            i, s, r = by_interval[chosen[tier]]
            entry.update(checkpoint_interval=i, checkpoint_steps=s, checkpoint_eval_return=r)
        summary["tiers"][tier] = entry
        print(
            f"{env_id} {tier}: {rec['episodes']} episodes, mean return "
            f"{rec['returns']['mean']:.4g} (std {rec['returns']['std']:.4g})",
            file=sys.stderr,
        )
    combined = root / "all"
    if not combined.exists():  # written under a temporary name, so "all" is always whole
        import shutil

        partial = root / ".all.partial"
        shutil.rmtree(partial, ignore_errors=True)
        combine_datasets([root / t for t in ("good", "medium", "poor", "replay")], partial)
        partial.rename(combined)
    described = describe_dataset(combined, plot_dir=root / "plots" if plots else None)
    summary["describe"] = described
    means = {t: summary["tiers"][t]["returns"]["mean"] for t in ("good", "medium", "poor")}
    summary["ordered"] = bool(means["good"] > means["medium"] > means["poor"])
    (root / "catalogue.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m jaxmarl_envs.algorithms.datasets.catalogue",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("--env", required=True, help=f"environment id ({', '.join(PRESETS)})")
    parser.add_argument("--out", default="data", help="output root (default data)")
    parser.add_argument("--episodes", type=int, default=1000, help="episodes per tier")
    parser.add_argument("--small", action="store_true", help="short training (minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--algorithm", default=None, help="override the preset (ippo, isac, ...)")
    parser.add_argument("--no-plots", action="store_true")
    args = parser.parse_args(argv)
    try:
        summary = make_catalogue(
            args.env,
            args.out,
            episodes=args.episodes,
            small=args.small,
            seed=args.seed,
            algorithm=args.algorithm,
            plots=not args.no_plots,
        )
    except ValueError as err:
        print(f"catalogue: error: {err}", file=sys.stderr)
        return 2
    for tier, entry in summary["tiers"].items():
        r = entry["returns"]
        print(
            f"{args.env:30s} {tier:7s} mean {r['mean']:.4g} std {r['std']:.4g} "
            f"n {r['num_episodes']}"
        )
    if not summary["ordered"]:
        print("catalogue: the tiers are not ordered good > medium > poor", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
