"""`jaxmarl train` and `jaxmarl evaluate`: train any algorithm family, evaluate and render runs."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_ALIASES = {
    "env_id": ["--env"],
    "num_seeds": ["--seeds"],
    "num_envs": ["--envs"],
    "total_steps": ["--steps"],
}

#: Modules of `jaxmarl_envs.algorithms` that define an algorithm family: each has
#: `ALGORITHMS = {name: (config class, preset overrides)}` and `make_learner(config)`.
FAMILIES = ("ppo", "q_learning", "sac")

#: `{algorithm: (family module, one-line description)}`: a light copy of the families'
#: `ALGORITHMS` tables (a test keeps them equal), so `jaxmarl --help`, `jaxmarl train --help`
#: and usage errors list every algorithm without importing the families.
ALGORITHMS = {
    "ippo": ("ppo", "independent PPO (feed-forward; --recurrent for GRU)"),
    "mappo": ("ppo", "multi-agent PPO with a centralised critic (--recurrent for GRU)"),
    "rec_ippo": ("ppo", "independent PPO with GRU networks"),
    "rec_mappo": ("ppo", "multi-agent PPO with GRU networks"),
    "iql": ("q_learning", "recurrent independent Q-learning (double DQN)"),
    "vdn": ("q_learning", "recurrent Q-learning with a sum (VDN) mixer"),
    "qmix": ("q_learning", "recurrent Q-learning with a monotonic QMIX mixer"),
    "isac": ("sac", "independent soft actor-critic (continuous or discrete actions)"),
    "masac": ("sac", "soft actor-critic with a centralised joint-action critic"),
}

_TRAIN_EPILOG = """\
Every config field is an option; `--set key=value` also works. Examples:

  jaxmarl train ippo --env rware-tiny-4ag --total-steps 2e6 --num-envs 64 --seeds 3
  jaxmarl train mappo --env lbf-8x8-2p-2f-coop --recurrent --hidden-sizes 64,64
  jaxmarl train qmix --env lbf-8x8-2p-2f-coop --total-steps 1e6
  jaxmarl train isac --env lbf-8x8-2p-2f-coop
  jaxmarl train ippo --config results/run/config.json --resume

`jaxmarl train <algorithm> --help` lists that algorithm's options and defaults.
"""


def family_module(name: str):
    """The `jaxmarl_envs.algorithms.<name>` module of an algorithm family."""
    import importlib

    return importlib.import_module(f"jaxmarl_envs.algorithms.{name}")


def algorithm_entry(name: str) -> tuple[Any, type, dict]:
    """`(family module, config class, preset overrides)` of one algorithm, importing only its
    family."""
    if name not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {name!r}; choose from {', '.join(ALGORITHMS)}")
    module = family_module(ALGORITHMS[name][0])
    cls, preset = module.ALGORITHMS[name]
    return module, cls, dict(preset)


def algorithm_table() -> dict[str, tuple[Any, type, dict]]:
    """`{algorithm: (family module, config class, preset overrides)}` over every family."""
    table: dict[str, tuple[Any, type, dict]] = {}
    for family in FAMILIES:
        module = family_module(family)
        for name, (cls, preset) in module.ALGORITHMS.items():
            table[name] = (module, cls, dict(preset))
    return table


def config_classes() -> dict[str, tuple[Any, type]]:
    """`{config class name: (family module, class)}`, base classes included (for loading a
    saved `config.json`, which records its class name)."""
    import importlib

    from jaxmarl_envs.algorithms.offline.cli import ALGORITHMS as OFFLINE
    from jaxmarl_envs.algorithms.training import RunConfig

    modules = [(m, c) for m, c, _ in algorithm_table().values()]
    for family in dict.fromkeys(f for f, _ in OFFLINE.values()):  # offline runs evaluate too
        module = importlib.import_module(f"jaxmarl_envs.algorithms.offline.{family}")
        modules += [(module, cls) for cls, _ in module.ALGORITHMS.values()]
    out: dict[str, tuple[Any, type]] = {}
    for module, cls in modules:
        for klass in cls.__mro__:
            if isinstance(klass, type) and issubclass(klass, RunConfig) and klass is not RunConfig:
                out.setdefault(klass.__name__, (module, klass))
    return out


def add_subparser(subparsers: Any, config_options: Iterable[str] | None = None) -> None:
    """Registers `train` (one sub-command per algorithm) and `evaluate` on the `jaxmarl`
    command's subparsers.

    Args:
        subparsers: the `jaxmarl` parser's subparsers.
        config_options: algorithms that get one option per config field (importing their
            families); None: every algorithm. The others accept only the common options, so
            `jaxmarl train --help` imports no family.
    """
    from jaxmarl_envs.algorithms.cli import add_algorithm_parsers

    populate = set(ALGORITHMS if config_options is None else config_options)
    parsers = add_algorithm_parsers(
        subparsers,
        "train",
        {name: description for name, (_, description) in ALGORITHMS.items()},
        help="train an algorithm: " + ", ".join(ALGORITHMS),
        description="Train a multi-agent algorithm; results, checkpoints, plots and a GIF "
        "go to <out>/<run_name>.",
        epilog=_TRAIN_EPILOG,
    )
    for name, a in parsers:
        a.add_argument(
            "--config",
            dest="config_file",
            default=None,
            help="start from a saved config.json (command-line options still override)",
        )
        if name in ("ippo", "mappo"):
            a.add_argument("--recurrent", action="store_true", help="shorthand for --network gru")
        if name in ("ippo", "iql", "vdn"):
            _add_sebulba_arguments(a)
        a.add_argument(
            "--stop-after",
            type=int,
            default=None,
            help="stop after this many evaluation intervals (resume later)",
        )
        _add_distributed_arguments(a)
        a.add_argument(
            "--no-plots",
            dest="plots",
            action="store_false",
            help="skip the learning-curve plots and tables written to <run>/plots",
        )
        if name in populate:
            from jaxmarl_envs.algorithms.config import add_config_arguments

            group = a.add_argument_group("config fields")
            _, cls, preset = algorithm_entry(name)
            add_config_arguments(group, cls, aliases=_ALIASES, skip=("algorithm",), defaults=preset)
        a.set_defaults(func=_cmd_train)

    e = subparsers.add_parser("evaluate", help="evaluate (and render) a saved policy")
    e.add_argument(
        "checkpoint", help="a run folder, or one of its checkpoints/<step> or best/<step> folders"
    )
    e.add_argument("--episodes", type=int, default=100, help="episodes (default 100)")
    e.add_argument("--gif", default=None, help="also render one greedy episode to this GIF/MP4")
    e.add_argument("--seed", type=int, default=0, help="evaluation PRNG seed (default 0)")
    e.add_argument(
        "--run-index",
        type=int,
        default=0,
        help="which of the trained seeds to evaluate (default 0)",
    )
    e.add_argument(
        "--params",
        choices=("best", "latest"),
        default="best",
        help="for a run folder: best parameters or the latest checkpoint",
    )
    mode = e.add_mutually_exclusive_group()
    mode.add_argument("--greedy", action="store_true", help="argmax/mean actions")
    mode.add_argument("--sample", action="store_true", help="sample actions")
    e.add_argument("--json", dest="json_out", default=None, help="write per-episode results here")
    e.set_defaults(func=_cmd_evaluate)


def _add_sebulba_arguments(parser: argparse.ArgumentParser) -> None:
    """`--architecture sebulba` and its settings (see `jaxmarl_envs.algorithms.sebulba`)."""
    g = parser.add_argument_group(
        "architecture",
        "anakin: environments and learner in one jitted loop (JAX environments). sebulba: "
        "actor threads step Python environments (--env <id>, gymnasium:<id> or "
        "pettingzoo:<module>:<function>) while the learner trains.",
    )
    g.add_argument("--architecture", choices=("anakin", "sebulba"), default="anakin")
    g.add_argument("--actor-threads", type=int, default=2, help="sebulba: actor threads")
    g.add_argument(
        "--max-staleness", type=int, default=1, help="sebulba: largest policy lag (updates)"
    )
    g.add_argument("--queue-size", type=int, default=2, help="sebulba: rollout queue length")


def _cmd_train_sebulba(args: argparse.Namespace, config: Any) -> int:
    from jaxmarl_envs.algorithms import sebulba, training

    q_family = args.algorithm in ("iql", "vdn")
    try:
        distributed = _initialize_distributed(args)
        settings = sebulba.SebulbaSettings(
            actor_threads=args.actor_threads,
            max_staleness=args.max_staleness,
            queue_size=args.queue_size,
        )
        if q_family:
            from jaxmarl_envs.algorithms import sebulba_q

            if args.resume or args.stop_after is not None:
                raise ValueError("Sebulba Q-learning has no checkpoints: no --resume/--stop-after")
            run = sebulba_q.SebulbaQ(config, settings)
        else:
            run = sebulba.Sebulba(config, settings)
    except ValueError as err:
        print(f"jaxmarl train: {err}", file=sys.stderr)
        return 2

    name = training.default_run_name(config).replace(":", "_").replace("/", "_")
    out = os.path.join(config.out, name)
    try:
        if q_family:
            summary = run.train(out, verbose=not args.quiet)
        else:
            summary = run.train(
                out, verbose=not args.quiet, resume=args.resume, stop_after=args.stop_after
            )
    except ValueError as err:
        print(f"jaxmarl train: {err}", file=sys.stderr)
        return 2
    except sebulba.SebulbaError as err:
        if distributed:
            _exit_stopped_process(f"jaxmarl train: {err}")
        print(f"jaxmarl train: {err}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("jaxmarl train: interrupted (actor threads stopped)", file=sys.stderr)
        return 130
    _finish(args, out, summary)
    return 0


def _add_distributed_arguments(parser: argparse.ArgumentParser) -> None:
    """Multi-process options (`jax.distributed`); the `JAX_*` and SLURM variables also work."""
    g = parser.add_argument_group(
        "multi-process (jax.distributed)",
        "Run one process per host (or per local device group) with the same command; "
        "flags override JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID; under "
        "SLURM (srun, more than one task) they are detected. Process 0 writes every file.",
    )
    g.add_argument("--coordinator-address", default=None, metavar="HOST:PORT")
    g.add_argument("--num-processes", type=int, default=None)
    g.add_argument("--process-id", type=int, default=None)
    g.add_argument(
        "--heartbeat-timeout",
        type=int,
        default=None,
        metavar="SECONDS",
        help="stop with an error this long after a peer process dies (JAX default 100)",
    )


def _initialize_distributed(args: argparse.Namespace) -> bool:
    from jaxmarl_envs.algorithms import training

    return training.maybe_initialize_distributed(
        getattr(args, "coordinator_address", None),
        getattr(args, "num_processes", None),
        getattr(args, "process_id", None),
        getattr(args, "heartbeat_timeout", None),
    )


def build_config(args: argparse.Namespace):
    """The config from a namespace of `jaxmarl train` options (ValueError on bad values)."""
    from jaxmarl_envs.algorithms.config import (
        from_dict,
        load_config_dict,
        overrides_from_args,
        parse_overrides,
        to_dict,
    )

    name = args.algorithm
    if getattr(args, "recurrent", False) and name in ("ippo", "mappo"):
        name = "rec_" + name  # `mappo --recurrent` is rec_mappo, preset included
    _, cls, preset = algorithm_entry(name)
    base: dict[str, Any] = {}
    if args.config_file:
        base = dict(load_config_dict(args.config_file)["config"])
    overrides = dict(preset)
    overrides.update(overrides_from_args(cls, args))
    overrides.update(parse_overrides(cls, args.set_pairs))
    if getattr(args, "recurrent", False):  # the rec_ preset gave both; these win over a
        overrides["network"] = "gru"  # --network or a --set algorithm=... given beside it
        if overrides["algorithm"] in ("ippo", "mappo"):
            overrides["algorithm"] = "rec_" + overrides["algorithm"]
    merged = {**to_dict(cls()), **base, **overrides}
    return from_dict(cls, merged)


def _cmd_train(args: argparse.Namespace) -> int:
    from jaxmarl_envs.algorithms import training

    try:
        config = build_config(args)
        if getattr(args, "architecture", "anakin") == "sebulba":
            return _cmd_train_sebulba(args, config)
        distributed = _initialize_distributed(args)
        module = algorithm_entry(args.algorithm)[0]
        learner = module.make_learner(config)
    except ValueError as err:
        print(f"jaxmarl train: {err}", file=sys.stderr)
        return 2
    import jax

    out = training.run_dir(config)
    try:
        summary = training.run_experiment(
            learner, out, resume=args.resume, stop_after=args.stop_after, verbose=not args.quiet
        )
    except Exception as err:
        if not distributed:
            raise
        # A peer that died or hung shows up here as a failed collective or barrier.
        _exit_stopped_process(
            f"jaxmarl train: process {jax.process_index()} of {jax.process_count()} stopped "
            f"(a peer process failed or lost contact): {type(err).__name__}: {err}"
        )
    _finish(args, out, summary)
    return 0 if summary["run_dir"] else 1


def _exit_stopped_process(message: str) -> None:
    """Prints `message` and exits with status 1 at once, skipping JAX's exit-time shutdown
    barrier: it would wait for the dead or stopped peer processes until the heartbeat timeout
    and then abort the process."""
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(1)


def _finish(args: argparse.Namespace, out: str, summary: dict) -> None:
    """Process 0 of a finished run writes the plots and names the run folder."""
    import jax

    primary = jax.process_index() == 0
    if args.plots and summary["finished"] and primary:
        _write_plots(out, quiet=args.quiet)
    if not args.quiet and primary:
        print(f"results in {out}")


def _write_plots(run: str | Path, quiet: bool) -> None:
    """Learning curves, aggregate scores and tables of this run into `<run>/plots`."""
    run = Path(run)
    results = run / "metrics.json"
    if not results.exists():
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("note: plots skipped (pip install 'jaxmarl-envs[eval]' for matplotlib)")
        return
    from jaxmarl_envs.algorithms.evaluation import plot_cli

    argv = ["plot", str(results), "--metric", "episode_return", "--out", str(run / "plots")]
    argv += ["--normalise", "none", "--formats", "png", "--reps", "2000"]
    if quiet:
        with contextlib.redirect_stdout(io.StringIO()):
            plot_cli.main(argv)
    else:
        plot_cli.main(argv)


def _find_run_dir(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if (candidate / "config.json").exists():
            return candidate
    raise ValueError(f"{path}: no config.json found in it or its parent folders")


def load_policy(checkpoint: str, which: str = "best", run_index: int = 0):
    """Loads `(learner, actor_params)` from a run folder or one of its checkpoint folders.

    Args:
        checkpoint: run folder, `<run>/checkpoints/<step>` or `<run>/best/<step>`.
        which: for a run folder, "best" (best evaluation) or "latest" (newest checkpoint).
        run_index: which trained seed's parameters (index into the seed axis).
    """
    import jax

    from jaxmarl_envs.algorithms import checkpointing
    from jaxmarl_envs.algorithms.config import from_dict, load_config_dict

    path = Path(checkpoint).absolute()
    if not path.exists():
        raise ValueError(f"{checkpoint}: no such file or folder")
    run = _find_run_dir(path)
    payload = load_config_dict(run / "config.json")
    classes = config_classes()
    name = payload.get("config_class", "PPOConfig")  # runs saved before classes were recorded
    if name not in classes:
        raise ValueError(
            f"{run / 'config.json'}: unknown config class {name!r}; known: {sorted(classes)}"
        )
    module, cls = classes[name]
    config = from_dict(cls, payload["config"])
    config = config.__class__(**{**config.__dict__, "num_devices": 1})
    learner = module.make_learner(config)
    if not 0 <= run_index < config.num_seeds:
        raise ValueError(f"--run-index must be in [0, {config.num_seeds}), got {run_index}")
    keys = jax.numpy.zeros((config.num_seeds, 2), jax.numpy.uint32)
    abstract = jax.eval_shape(jax.vmap(learner.init), keys)
    step = None
    if path != run:
        kind, step = path.parent.name, int(path.name)
    else:
        kind = "best" if which == "best" else "checkpoints"
    if kind not in ("best", "checkpoints"):
        raise ValueError(f"{checkpoint}: expected <run>/best/<step> or <run>/checkpoints/<step>")
    if kind == "best":
        ckpt = checkpointing.Checkpointer(run / "best", 1, "mean_return")
        step = ckpt.best_step() if step is None else step
        target = checkpointing.abstract_like(learner.policy_params(abstract))
        params, meta = ckpt.restore(step, target)
    else:
        ckpt = checkpointing.Checkpointer(run / "checkpoints", max(config.checkpoint_keep, 1))
        state, meta = ckpt.restore(step, checkpointing.abstract_like(abstract))
        params = learner.policy_params(state)
    ckpt.close()
    params = jax.tree_util.tree_map(lambda x: x[run_index], params)
    return learner, params, meta


def _cmd_evaluate(args: argparse.Namespace) -> int:
    import jax
    import numpy as np

    from jaxmarl_envs.algorithms import training

    if args.episodes < 1:
        print("jaxmarl evaluate: --episodes must be >= 1", file=sys.stderr)
        return 2
    try:
        learner, params, meta = load_policy(args.checkpoint, args.params, args.run_index)
    except ValueError as err:
        print(f"jaxmarl evaluate: {err}", file=sys.stderr)
        return 2
    # Default: the run's own evaluation mode (config.eval_greedy).
    greedy = True if args.greedy else False if args.sample else learner.config.eval_greedy
    evaluate = jax.jit(learner.make_evaluate(args.episodes, greedy=greedy))
    out = jax.device_get(evaluate(params, jax.random.PRNGKey(args.seed)))
    returns = np.asarray(out.episode_return)
    line = (
        f"{learner.config.algorithm} on {learner.config.env_id} (checkpoint at "
        f"{meta.get('steps', '?')} steps): {args.episodes} "
        f"{'greedy' if greedy else 'sampled'} episodes, return "
        f"mean {returns.mean():.4g} std {returns.std():.4g} min {returns.min():.4g} "
        f"max {returns.max():.4g}, length {np.mean(out.episode_length):.1f}"
    )
    result = {
        "episode_return": returns.tolist(),
        "episode_length": np.asarray(out.episode_length).tolist(),
    }
    if np.ndim(out.win) == 1:
        line += f", win rate {np.mean(out.win):.3f}"
        result["win_rate"] = np.asarray(out.win).tolist()
    print(line)
    if args.json_out:
        Path(args.json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    if args.gif:
        import functools

        act = functools.partial(learner.act, greedy=greedy)
        frames, ret = training.rollout_episode(
            learner.eval_env,
            act,
            learner.initial_hidden,
            params,
            jax.random.PRNGKey(args.seed + 1),
        )
        os.makedirs(os.path.dirname(os.path.abspath(args.gif)), exist_ok=True)
        path = learner.env.animate(frames, args.gif)
        print(f"wrote {path} ({len(frames) - 1} steps, team return {ret:.4g})")
    return 0
