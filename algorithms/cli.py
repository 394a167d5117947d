"""The `jaxmarl` command-line entry point: list, render, train, evaluate, plot, benchmark.

Arguments are parsed before anything heavy is imported: `--help`, usage errors and `list`
never import the algorithm families (flax, optax, orbax, the learners). Exit status: 0 on
success, 2 for usage errors (bad flags or values, unknown ids), 1 when a run fails.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import sys
from collections.abc import Iterable, Sequence

# Subcommands defined elsewhere: module path -> exposes `add_subparser(subparsers, ...)`.
_PLUGINS = (
    "jaxmarl_envs.algorithms.evaluation.plot_cli",
    "jaxmarl_envs.algorithms.train_cli",
    "jaxmarl_envs.algorithms.sweep",
    "jaxmarl_envs.algorithms.datasets.cli",  # record, dataset
    "jaxmarl_envs.algorithms.offline.cli",  # offline
)

#: Example ids shown per family by `jaxmarl list`.
_LIST_EXAMPLES = 3


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` without prefix abbreviations (`--total-step` is an error, not
    `--total-steps`); sub-parsers made from it inherit the class."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        """Prints the usage (shortened when it is long, as for `train <algorithm>`) and the
        error to stderr, then exits with status 2."""
        usage = self.format_usage()
        if usage.count("\n") > 4:
            usage = f"usage: {self.prog} [options]  (`{self.prog} --help` lists them)\n"
        self.exit(2, f"{usage}{self.prog}: error: {message}\n")


def usage_error(command: str, message: str) -> int:
    """Prints `jaxmarl <command>: error: <message>` to stderr and returns 2 (usage error)."""
    print(f"jaxmarl {command}: error: {message}", file=sys.stderr)
    return 2


def add_algorithm_parsers(
    subparsers: argparse._SubParsersAction,
    command: str,
    algorithms: dict[str, str],
    *,
    help: str,
    description: str,
    epilog: str,
    name_prefix: str = "",
) -> list[tuple[str, argparse.ArgumentParser]]:
    """Adds `jaxmarl <command> <algorithm>`: the command's parser and one sub-parser per
    algorithm (the same epilog and raw formatting everywhere), plus the options every
    algorithm sub-command shares: `--set KEY=VALUE` (repeatable), `--resume` and `--quiet`.

    Args:
        subparsers: the `jaxmarl` parser's subparsers.
        command: the sub-command, e.g. "train" or "offline".
        algorithms: algorithm name -> one-line description (the sub-commands, in order).
        help, description, epilog: texts of the command's parser; the epilog is repeated on
            every algorithm's parser.
        name_prefix: put before an algorithm's name in its description ("offline ").

    Returns:
        (algorithm name, its parser) pairs, for the caller's own options and `set_defaults`.
    """
    formatter = argparse.RawDescriptionHelpFormatter
    p = subparsers.add_parser(
        command, help=help, description=description, epilog=epilog, formatter_class=formatter
    )
    algos = p.add_subparsers(dest="algorithm", metavar="ALGORITHM", required=True)
    parsers = []
    for name, text in algorithms.items():
        a = algos.add_parser(
            name,
            help=text,
            description=f"{name_prefix}{name}: {text}",
            epilog=epilog,
            formatter_class=formatter,
        )
        a.add_argument(
            "--set",
            dest="set_pairs",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override any config field (repeatable)",
        )
        a.add_argument(
            "--resume",
            action="store_true",
            help="continue from the latest checkpoint in the run folder",
        )
        a.add_argument("--quiet", action="store_true", help="no progress lines")
        parsers.append((name, a))
    return parsers


# ---------------------------------------------------------------------------------------------
# list
# ---------------------------------------------------------------------------------------------


def _cmd_list(args: argparse.Namespace) -> int:
    import jaxmarl_envs
    from jaxmarl_envs.registry import families

    known = families()
    if args.family is not None and args.family not in known:
        close = difflib.get_close_matches(args.family, known, n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return usage_error(
            "list", f"unknown family {args.family!r}{hint}; families: {', '.join(known)}"
        )
    if args.all or args.family is not None:
        for env_id in jaxmarl_envs.list_envs(args.family):
            entry = jaxmarl_envs.spec(env_id)
            print(f"{env_id:40s} {entry.family:8s} {entry.description}".rstrip())
        return 0
    rows = []
    for family in known:
        ids = jaxmarl_envs.list_envs(family)
        classes = [i for i in ids if i[:1].isupper()]
        scenarios = sorted((i for i in ids if i not in classes), key=lambda i: (len(i), i))
        examples = ", ".join(scenarios[:_LIST_EXAMPLES])
        examples += ", ..." if len(scenarios) > _LIST_EXAMPLES else ""
        rows.append((family, str(len(ids)), ", ".join(classes) or "-", examples))
    header = ("family", "ids", "class-level id", "examples")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        print(f"{row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:<{widths[2]}}  {row[3]}")
    total = sum(int(r[1]) for r in rows)
    print(
        f"\n{total} ids in {len(rows)} families. `jaxmarl list --family <family>` lists a "
        "family's ids\nwith their descriptions, `jaxmarl list --all` every id."
    )
    return 0


# ---------------------------------------------------------------------------------------------
# render
# ---------------------------------------------------------------------------------------------


def _cmd_render(args: argparse.Namespace) -> int:
    if args.steps < 1:
        return usage_error("render", f"--steps must be >= 1, got {args.steps}")
    if not args.fps > 0:
        return usage_error("render", f"--fps must be > 0, got {args.fps}")
    import jax

    import jaxmarl_envs
    from jaxmarl_envs.rollout import random_rollout
    from jaxmarl_envs.wrappers import AutoReset

    try:
        base = jaxmarl_envs.make(args.env_id)
    except ValueError as err:
        return usage_error("render", str(err))
    env = AutoReset(base)
    rollout = jax.jit(random_rollout, static_argnums=(0, 2))
    first_state, _, states, timesteps = rollout(env, jax.random.PRNGKey(args.seed), args.steps)
    frames_states = [first_state] + [
        jax.tree_util.tree_map(lambda x, i=i: x[i], states) for i in range(args.steps)
    ]
    path = base.animate(frames_states, args.out, fps=args.fps)
    episodes = int(timesteps.last().sum())
    team_return = float(timesteps.reward.sum())
    print(
        f"wrote {path}: {args.env_id}, {args.steps} random steps (seed {args.seed}), "
        f"{episodes} episode end(s), total team reward {team_return:.3f}"
    )
    return 0


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


def build_parser(config_options: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The `jaxmarl` parser.

    Args:
        config_options: algorithms whose `jaxmarl train <algorithm>` parser gets one option per
            config field (this imports their families). None: every algorithm (a complete
            parser for programmatic use); `main` passes only the algorithm on its command line.
    """
    parser = ArgumentParser(
        prog="jaxmarl",
        description="Pure-JAX multi-agent environments and research stack.",
        epilog="Exit status: 0 success, 1 a run failed, 2 usage error.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "list",
        help="list environment families and ids",
        description="Without options: one line per family (how many ids, the class-level id, "
        "examples). --family: that family's ids; --all: every id.",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument("--family", default=None, help="list this family's ids (e.g. rware, lbf)")
    which.add_argument("--all", action="store_true", help="list every registered id")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser("render", help="render a random rollout to a GIF/MP4")
    p.add_argument("env_id", help="registered environment id, e.g. rware-tiny-4ag")
    p.add_argument("--steps", type=int, default=100, help="number of steps (default 100)")
    p.add_argument("--out", default="rollout.gif", help="output path (.gif or .mp4)")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    p.add_argument("--fps", type=float, default=8.0, help="frames per second (default 8)")
    p.set_defaults(func=_cmd_render)

    for module in _PLUGINS:
        try:
            plugin = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name and module.startswith(err.name):
                continue  # plugin not installed in this build
            raise
        if module.endswith("train_cli"):
            plugin.add_subparser(sub, config_options=config_options)
        else:
            plugin.add_subparser(sub)
    return parser


def _selected_algorithm(argv: Sequence[str]) -> list[str]:
    """`[algorithm]` when `argv` is `train <algorithm> ...`, else `[]` (no option before the
    algorithm takes a value, so the first two words are the command and the algorithm)."""
    words = [a for a in argv if not a.startswith("-")]
    if len(words) >= 2 and words[0] == "train":
        return [words[1]]
    return []


def _deepest_parser(parser: argparse.ArgumentParser, args: argparse.Namespace):
    """The sub-parser that parsed the end of the command line (e.g. `train ippo`'s)."""
    while True:
        actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not actions or getattr(args, actions[0].dest, None) not in actions[0].choices:
            return parser
        parser = actions[0].choices[getattr(args, actions[0].dest)]


def _unrecognized(parser: argparse.ArgumentParser, extras: Sequence[str]) -> str:
    """`unrecognized arguments: ...` with the closest option of `parser` per unknown option."""
    known = [s for a in parser._actions for s in a.option_strings if s.startswith("--")]
    hints = []
    for arg in extras:
        if arg.startswith("-"):
            flag = arg.split("=", 1)[0]
            close = difflib.get_close_matches(flag, known, n=1, cutoff=0.6)
            if close:
                hints.append(f"did you mean {close[0]} (for {flag})?")
    message = f"unrecognized arguments: {' '.join(extras)}"
    return message + ("; " + "; ".join(hints) if hints else "")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(config_options=_selected_algorithm(argv))
    args, extras = parser.parse_known_args(argv)
    if extras:
        deepest = _deepest_parser(parser, args)
        deepest.error(_unrecognized(deepest, extras))
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
