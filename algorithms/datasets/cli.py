"""`jaxmarl record` and `jaxmarl dataset list|info|describe|subsample|combine|import|export|check`.

Only argparse at import time (`jaxmarl --help` stays fast); JAX and the tools are imported by
the command functions. Exit status: 0 success, 2 usage errors and bad input, 1 a failed run.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

_TIERS = ("good", "medium", "poor", "replay")

_RECORD_EPILOG = """\
Examples:
  jaxmarl record --env lbf-8x8-2p-2f-coop --policy random --episodes 1000 --out data/lbf/poor
  jaxmarl record --policy results/ippo_run --episodes 1000 --out data/lbf/good --tier good
  jaxmarl record --policy results/ippo_run --episodes 1000 --epsilon 0.3 --out data/lbf/mix
  jaxmarl record --policy results/ippo_run --tier replay --episodes 2000 --out data/lbf/replay

Re-running the same command continues an interrupted recording (or extends it to a larger
--episodes); the result is byte-identical to an uninterrupted run. Only whole episodes are
ever committed.
"""


def _err(command: str, message: str) -> int:
    from jaxmarl_envs.algorithms.cli import usage_error

    return usage_error(command, message)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


# ---------------------------------------------------------------------------------------------
# record
# ---------------------------------------------------------------------------------------------


def _cmd_record(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        return _err("record", f"--episodes must be >= 1, got {args.episodes}")
    if not 0.0 <= args.epsilon <= 1.0:
        return _err("record", f"--epsilon must be in [0, 1], got {args.epsilon}")
    if args.num_envs is not None and args.num_envs < 1:
        return _err("record", f"--num-envs must be >= 1, got {args.num_envs}")
    if args.policy == "random" and args.env is None:
        return _err("record", "--env is required with --policy random")
    from jaxmarl_envs.algorithms.datasets.record import record_dataset

    greedy = True if args.greedy else False if args.sample else None
    try:
        if args.env is not None:
            import jaxmarl_envs

            jaxmarl_envs.make(args.env)  # unknown ids: a usage error naming close matches
        summary = record_dataset(
            args.env,
            args.policy,
            args.episodes,
            args.out,
            epsilon=args.epsilon,
            seed=args.seed,
            tier=args.tier,
            num_envs=args.num_envs,
            greedy=greedy,
            params=args.params,
            run_index=args.run_index,
            verbose=not args.quiet,
        )
    except ValueError as err:
        return _err("record", str(err))
    r = summary["returns"]
    print(
        f"{'continued' if summary['resumed'] else 'wrote'} {summary['path']}: "
        f"{summary['env_id']}, {summary['episodes']} episodes, {summary['steps']} steps, "
        f"return mean {r.get('mean', float('nan')):.4g} std {r.get('std', float('nan')):.4g} "
        f"min {r.get('min', float('nan')):.4g} max {r.get('max', float('nan')):.4g}"
    )
    return 0


# ---------------------------------------------------------------------------------------------
# dataset
# ---------------------------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace) -> int:
    from jaxmarl_envs.algorithms.datasets.tools import list_datasets

    try:
        rows = list_datasets(args.root)
    except ValueError as err:
        return _err("dataset list", str(err))
    if args.json:
        _print_json(rows)
        return 0
    if not rows:
        print(f"no vaults under {args.root}")
        return 0
    header = ("path", "env", "tier", "episodes", "steps", "mean return")
    table = [
        (
            r["path"],
            str(r["env_id"]),
            str(r["tier"]),
            str(r["episodes"]),
            str(r["steps"]),
            "-" if r["mean_return"] is None else f"{r['mean_return']:.4g}",
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in [header, *table]) for i in range(len(header))]
    for row in [header, *table]:
        print("  ".join(f"{c:<{w}}" for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from jaxmarl_envs.algorithms.datasets.tools import dataset_info

    try:
        info = dataset_info(args.vault)
    except ValueError as err:
        return _err("dataset info", str(err))
    _print_json(info)
    return 0


def _fmt_stats(name: str, s: dict) -> str:
    if not s.get("count"):
        return f"  {name}: no episodes"
    return (
        f"  {name}: {s['count']} episodes, mean {s['mean']:.4g} std {s['std']:.4g} "
        f"min {s['min']:.4g} p5 {s['p5']:.4g} p25 {s['p25']:.4g} median {s['p50']:.4g} "
        f"p75 {s['p75']:.4g} p95 {s['p95']:.4g} max {s['max']:.4g}"
    )


def _cmd_describe(args: argparse.Namespace) -> int:
    from jaxmarl_envs.algorithms.datasets.tools import describe_dataset

    try:
        out = describe_dataset(args.vault, plot_dir=args.plots, coverage=not args.no_coverage)
    except ValueError as err:
        return _err("dataset describe", str(err))
    except ImportError as err:
        print(f"jaxmarl dataset describe: {err}", file=sys.stderr)
        return 1
    if args.json:
        _print_json(out)
        return 0
    print(f"{out['path']} ({out['env_id']}): episode returns per tier")
    for name, stats in out["returns"].items():
        print(_fmt_stats(name, stats))
    for problem in out.get("problems", []):
        print(f"  warning: {problem}")
    cov = out.get("coverage")
    if cov:
        print(
            f"  coverage: {cov['distinct_observations']} distinct agent observations "
            f"({cov['distinct_observation_ratio']:.3f} of {cov['samples_agent_steps']} agent "
            f"steps), {cov['distinct_state_actions']} distinct observation-action pairs "
            f"({cov['distinct_state_action_ratio']:.3f})"
            + (
                f", {cov['distinct_global_states']} distinct global states"
                if "distinct_global_states" in cov
                else ""
            )
        )
        if "action_entropy_normalised" in cov:
            print(f"  action entropy per agent (1 = uniform): {cov['action_entropy_normalised']}")
        if "action_grid_occupancy" in cov:
            print(f"  action grid occupancy (10 bins/dim): {cov['action_grid_occupancy']:.3f}")
    for path in out.get("plots", []):
        print(f"  wrote {path}")
    return 0


def _cmd_subsample(args: argparse.Namespace) -> int:
    if args.episodes is None and args.percentile is None:
        return _err("dataset subsample", "give --episodes and/or --percentile LO HI")
    from jaxmarl_envs.algorithms.datasets.tools import subsample_dataset

    try:
        out = subsample_dataset(
            args.vault,
            args.out,
            episodes=args.episodes,
            percentile=None if args.percentile is None else tuple(args.percentile),
            seed=args.seed,
        )
    except ValueError as err:
        return _err("dataset subsample", str(err))
    print(f"wrote {out['path']}: {out['episodes']} episodes")
    return 0


def _cmd_combine(args: argparse.Namespace) -> int:
    from jaxmarl_envs.algorithms.datasets.tools import combine_datasets

    tiers = None if args.tiers is None else [t.strip() for t in args.tiers.split(",")]
    try:
        out = combine_datasets(args.vaults, args.out, tiers=tiers)
    except ValueError as err:
        return _err("dataset combine", str(err))
    print(f"wrote {out['path']}: {out['episodes']} episodes, tiers {', '.join(out['tier_names'])}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    from jaxmarl_envs.algorithms.datasets.flashbax_io import import_flashbax

    meta = {"env_id": args.env} if args.env else None
    try:
        out = import_flashbax(args.source, args.out, layout=args.layout, metadata=meta)
    except ValueError as err:
        return _err("dataset import", str(err))
    except ImportError as err:
        print(f"jaxmarl dataset import: {err}", file=sys.stderr)
        return 1
    extra = ""
    if out["layout"] == "recorder":
        extra = (
            f", {out['episodes']} episodes ({out['dropped_unfinished_episodes']} unfinished "
            "dropped)"
        )
    print(f"wrote {out['path']}: {out['steps']} steps x {out['rows']} rows, {out['layout']}{extra}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from jaxmarl_envs.algorithms.datasets.flashbax_io import export_flashbax

    try:
        path = export_flashbax(args.vault, args.out, vault_name=args.name, vault_uid=args.uid)
    except ValueError as err:
        return _err("dataset export", str(err))
    except ImportError as err:
        print(f"jaxmarl dataset export: {err}", file=sys.stderr)
        return 1
    print(f"wrote Flashbax vault {path}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    import jaxmarl_envs
    from jaxmarl_envs.algorithms.datasets.core import check_dataset_matches_env, check_integrity

    try:
        env = jaxmarl_envs.make(args.env)
        check_dataset_matches_env(args.vault, env)
        integrity = check_integrity(args.vault)
    except ValueError as err:
        return _err("dataset check", str(err))
    if integrity.problems:
        print(
            f"{args.vault} matches {args.env}, but: {'; '.join(integrity.problems)}; "
            f"{integrity.num_episodes} complete episodes readable (last episode id "
            f"{integrity.last_episode_id}, up to step {integrity.usable_steps})"
        )
        return 1
    print(f"{args.vault} matches {args.env}: {integrity.num_episodes} complete episodes")
    return 0


def add_subparser(subparsers: Any) -> None:
    """Registers `record` and `dataset` on the `jaxmarl` command's subparsers."""
    p = subparsers.add_parser(
        "record",
        help="record a policy's episodes into a dataset vault",
        description="Roll out a saved policy (any online family), a random policy or an "
        "epsilon mixture in an environment, natively under jit/vmap, and write whole episodes "
        "into a vault.",
        epilog=_RECORD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--env", default=None, help="environment id (default: the policy's own)")
    p.add_argument(
        "--policy",
        required=True,
        help="'random', a `jaxmarl train` run folder, or one of its checkpoints/<step> or "
        "best/<step> folders",
    )
    p.add_argument("--episodes", type=int, required=True, help="episodes in the vault when done")
    p.add_argument("--out", required=True, help="vault directory (continued if it exists)")
    p.add_argument(
        "--epsilon",
        type=float,
        default=0.0,
        help="per-agent, per-step probability of a uniformly random legal action (default 0)",
    )
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p.add_argument(
        "--tier",
        choices=_TIERS,
        default=None,
        help="quality label; 'replay' records every saved checkpoint of the run in --policy",
    )
    p.add_argument(
        "--num-envs",
        type=int,
        default=None,
        help="episodes recorded in parallel per wave (default min(episodes, 64); fixed per vault)",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--greedy", action="store_true", help="argmax/mean actions")
    mode.add_argument("--sample", action="store_true", help="sampled actions")
    p.add_argument(
        "--params",
        choices=("best", "latest"),
        default="best",
        help="for a run folder: best or latest parameters (default best)",
    )
    p.add_argument("--run-index", type=int, default=0, help="which trained seed (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=_cmd_record)

    d = subparsers.add_parser(
        "dataset",
        help="dataset tools: list, info, describe, subsample, combine, import, export, check",
        description="Inspect and transform dataset vaults.",
    )
    sub = d.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    a = sub.add_parser("list", help="list the vaults under a folder")
    a.add_argument("root", nargs="?", default=".", help="folder to search (default .)")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=_cmd_list)

    a = sub.add_parser("info", help="metadata, fields and integrity of a vault (JSON)")
    a.add_argument("vault")
    a.set_defaults(func=_cmd_info)

    a = sub.add_parser(
        "describe",
        help="return statistics per tier, coverage, histogram and violin plots",
    )
    a.add_argument("vault")
    a.add_argument("--plots", default=None, metavar="DIR", help="write the PNG plots here")
    a.add_argument("--no-coverage", action="store_true", help="skip the coverage summary")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=_cmd_describe)

    a = sub.add_parser("subsample", help="keep episodes by count and/or return percentile")
    a.add_argument("vault")
    a.add_argument("--out", required=True, help="new vault directory")
    a.add_argument("--episodes", type=int, default=None, help="keep this many episodes")
    a.add_argument(
        "--percentile",
        type=float,
        nargs=2,
        metavar=("LO", "HI"),
        default=None,
        help="keep episodes with returns between these percentiles (inclusive)",
    )
    a.add_argument(
        "--seed", type=int, default=None, help="random choice of --episodes (default: first)"
    )
    a.set_defaults(func=_cmd_subsample)

    a = sub.add_parser("combine", help="concatenate vaults, keeping a tier label per episode")
    a.add_argument("vaults", nargs="+")
    a.add_argument("--out", required=True, help="new vault directory")
    a.add_argument(
        "--tiers", default=None, help="comma-separated label per vault (default: their tiers)"
    )
    a.set_defaults(func=_cmd_combine)

    a = sub.add_parser("import", help="import a Flashbax 0.1.3 vault (e.g. OG-MARL datasets)")
    a.add_argument("source", help="Flashbax vault folder <rel_dir>/<vault_name>/<vault_uid>")
    a.add_argument("--out", required=True, help="new vault directory")
    a.add_argument(
        "--layout",
        choices=("auto", "raw", "recorder"),
        default="auto",
        help="raw: leaves as they are; recorder: OG-MARL fields converted to our layout",
    )
    a.add_argument("--env", default=None, help="environment id to store in the metadata")
    a.set_defaults(func=_cmd_import)

    a = sub.add_parser("export", help="export a vault to another format (flashbax)")
    a.add_argument("vault")
    a.add_argument("--format", choices=("flashbax",), required=True)
    a.add_argument("--out", required=True, help="rel_dir of the Flashbax vault")
    a.add_argument("--name", default=None, help="Flashbax vault_name (default: folder name)")
    a.add_argument("--uid", default="0", help="Flashbax vault_uid (default 0)")
    a.set_defaults(func=_cmd_export)

    a = sub.add_parser("check", help="check a vault against an environment and its integrity")
    a.add_argument("vault")
    a.add_argument("--env", required=True, help="environment id")
    a.set_defaults(func=_cmd_check)
