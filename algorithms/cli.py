"""The `jaxmarl` command-line entry point: list, render, plot (more subcommands plug in)."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Subcommands defined elsewhere: module path -> exposes `add_subparser(subparsers)`.
_PLUGINS = (
    "jaxmarl_envs.algorithms.evaluation.plot_cli",
    "jaxmarl_envs.algorithms.train_cli",
)


def _cmd_list(args: argparse.Namespace) -> int:
    import jaxmarl_envs

    ids = jaxmarl_envs.list_envs(args.family)
    if not ids:
        print(f"no environments registered for family {args.family!r}", file=sys.stderr)
        return 1
    for env_id in ids:
        entry = jaxmarl_envs.spec(env_id)
        print(f"{env_id:40s} {entry.family:8s} {entry.description}".rstrip())
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    import jax

    import jaxmarl_envs
    from jaxmarl_envs.rollout import random_rollout
    from jaxmarl_envs.wrappers import AutoReset

    if args.steps < 1:
        raise SystemExit("jaxmarl render: --steps must be >= 1")
    if args.fps <= 0:
        raise SystemExit("jaxmarl render: --fps must be > 0")
    try:
        base = jaxmarl_envs.make(args.env_id)
    except ValueError as err:
        raise SystemExit(f"jaxmarl render: {err}") from None
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxmarl", description="Pure-JAX multi-agent environments and research stack."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered environment ids")
    p.add_argument("--family", default=None, help="only ids of this family (e.g. rware, lbf)")
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
        plugin.add_subparser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
