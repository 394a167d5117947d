"""`jaxmarl offline <algorithm>`: train an offline learner on a dataset vault and evaluate it
online (argparse only at import; the learners are imported when a run starts)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

#: `{algorithm: (module under jaxmarl_envs.algorithms.offline, one-line description)}`: a light
#: copy of the modules' `ALGORITHMS` tables (a test keeps them equal).
ALGORITHMS = {
    "bc": ("bc", "behaviour cloning (discrete or continuous actions)"),
    "iql-cql": ("iql", "independent Q-learning with conservative Q-learning (discrete)"),
    "iql-bcq": ("iql", "independent Q-learning with a BCQ action filter (discrete)"),
    "maicq": ("maicq", "multi-agent implicit constraint Q-learning, QMIX/VDN mixer (discrete)"),
    "omar": ("omar", "offline multi-agent RL with actor rectification (continuous)"),
    "matd3-bc": ("matd3_bc", "multi-agent TD3 with a BC term, centralised critics (continuous)"),
}

_EPILOG = """\
Every config field can be set with `--set key=value` (repeatable), e.g.
`--set cql_alpha=2.0 --set hidden_sizes=64,64`. Examples:

  jaxmarl offline bc --dataset data/rware-tiny-2ag/good --env rware-tiny-2ag --total-steps 2e4
  jaxmarl offline iql-cql --dataset data/lbf/good --env lbf-8x8-2p-2f-coop --seeds 3
  jaxmarl offline matd3-bc --dataset data/spread/good --env mpe-simple_spread-continuous

Exit status: 0 success, 1 the run failed, 2 usage error (bad options, a missing dataset or
one whose structure does not match the environment).
"""

# Options every algorithm takes (config field, option strings, parser name, help).
_COMMON = (
    ("dataset", ("--dataset",), "str", "vault directory of the dataset (required)"),
    ("env_id", ("--env", "--env-id"), "str", "registered environment id (required)"),
    ("total_steps", ("--total-steps", "--steps"), "int", "gradient steps (default 20000)"),
    ("seed", ("--seed",), "int", "base seed (default 0)"),
    ("num_seeds", ("--seeds", "--num-seeds"), "int", "seeds trained together (default 1)"),
    ("out", ("--out",), "str", "output root; the run goes to <out>/<run_name> (default results)"),
    ("run_name", ("--run-name",), "str", "run folder name"),
    ("batch_size", ("--batch-size",), "int", "transitions per gradient step (default 256)"),
    ("lr", ("--lr",), "float", "learning rate (default 3e-4)"),
    ("num_evaluations", ("--num-evaluations",), "int", "online evaluations (default 10)"),
    ("eval_episodes", ("--eval-episodes",), "int", "episodes per evaluation (default 32)"),
    ("max_transitions", ("--max-transitions",), "int", "use at most this many dataset steps"),
)


def _int(text: str) -> int:
    from jaxmarl_envs.algorithms.config import parse_int

    try:
        return parse_int(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


_TYPES = {"str": str, "int": _int, "float": float}


def add_subparser(subparsers: Any) -> None:
    """Registers `offline` (one sub-command per algorithm) on the `jaxmarl` subparsers."""
    from jaxmarl_envs.algorithms.cli import add_algorithm_parsers

    parsers = add_algorithm_parsers(
        subparsers,
        "offline",
        {name: description for name, (_, description) in ALGORITHMS.items()},
        help="train an offline learner on a dataset: " + ", ".join(ALGORITHMS),
        description="Train an offline multi-agent learner on a recorded dataset (a vault from "
        "`jaxmarl record`), evaluating it online in the environment at regular intervals. "
        "Results (marl-eval JSON), checkpoints and the config go to <out>/<run_name>.",
        epilog=_EPILOG,
        name_prefix="offline ",
    )
    for _, a in parsers:
        for dest, flags, kind, help_text in _COMMON:
            a.add_argument(
                *flags, dest=dest, type=_TYPES[kind], default=argparse.SUPPRESS, help=help_text
            )
        a.add_argument("--plots", action="store_true", help="also write learning-curve plots")
        a.add_argument("--gif", action="store_true", help="render a greedy episode at the end")
        a.set_defaults(func=_cmd_offline)


def module_for(name: str):
    """The `jaxmarl_envs.algorithms.offline.<module>` of an offline algorithm."""
    import importlib

    if name not in ALGORITHMS:
        raise ValueError(f"unknown offline algorithm {name!r}; choose from {', '.join(ALGORITHMS)}")
    return importlib.import_module(f"jaxmarl_envs.algorithms.offline.{ALGORITHMS[name][0]}")


def build_config(args: argparse.Namespace):
    """The config of `jaxmarl offline <algorithm>` options (ValueError on bad values)."""
    from jaxmarl_envs.algorithms.config import parse_overrides

    module = module_for(args.algorithm)
    cls, preset = module.ALGORITHMS[args.algorithm]
    overrides = dict(preset)
    overrides.update({dest: getattr(args, dest) for dest, *_ in _COMMON if hasattr(args, dest)})
    overrides["gif"] = bool(getattr(args, "gif", False))
    overrides.update(parse_overrides(cls, args.set_pairs))
    if not overrides.get("dataset"):
        raise ValueError("--dataset <vault-dir> is required")
    if not overrides.get("env_id"):
        raise ValueError("--env <id> is required (the environment the dataset was recorded in)")
    return module, cls(**overrides)


def _cmd_offline(args: argparse.Namespace) -> int:
    from jaxmarl_envs.algorithms.cli import usage_error

    try:
        module, config = build_config(args)
        import jaxmarl_envs

        if config.env_id not in jaxmarl_envs.list_envs():
            raise ValueError(f"unknown environment id {config.env_id!r} (see `jaxmarl list`)")
        learner = module.make_learner(config)
    except ValueError as err:
        return usage_error(f"offline {args.algorithm}", str(err))
    from jaxmarl_envs.algorithms import training

    info = learner.data_info
    out = training.run_dir(config)
    if not args.quiet:
        behaviour = info.get("behaviour_return_mean")
        print(
            f"dataset {info['path']}: {info['transitions']:,} transitions, "
            f"{info['episodes_ended']:,} episode ends"
            + (f", behaviour return {behaviour:.4g}" if behaviour is not None else "")
        )
    try:
        summary = training.run_experiment(learner, out, resume=args.resume, verbose=not args.quiet)
    except Exception as err:  # the run itself failed (not a usage error)
        print(
            f"jaxmarl offline {args.algorithm}: run failed: {type(err).__name__}: {err}",
            file=sys.stderr,
        )
        return 1
    record = {
        "dataset": info["path"],
        "behaviour_return_mean": info.get("behaviour_return_mean"),
        "transitions": info["transitions"],
        "absolute_return_per_seed": summary.get("absolute_return_per_seed"),
        "gradient_steps_per_second": summary.get("sps_mean"),
    }
    with open(f"{out}/offline.json", "w") as f:
        json.dump(record, f, indent=2)
    if args.plots and summary["finished"]:
        from jaxmarl_envs.algorithms.train_cli import _write_plots

        _write_plots(out, quiet=args.quiet)
    if not args.quiet:
        print(f"results in {out}")
    return 0 if summary["finished"] else 1
