"""PettingZoo example: a parallel environment driven by a random policy that respects masks."""

from __future__ import annotations

import argparse

import numpy as np

from jaxmarl_envs.adapters.pettingzoo import parallel_env


def main(argv: list[str] | None = None) -> dict:
    """Plays random legal actions for a few episodes; returns per-agent mean returns."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-id", default="lbf-8x8-2p-2f-coop")
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--time-limit", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env = parallel_env(args.env_id, time_limit=args.time_limit)
    rng = np.random.default_rng(args.seed)
    totals = {agent: 0.0 for agent in env.possible_agents}
    illegal = 0
    for episode in range(args.episodes):
        obs, infos = env.reset(seed=args.seed + episode)
        while env.agents:  # agents leave the list as they finish
            actions = {}
            for agent in env.agents:
                legal = np.flatnonzero(obs[agent]["action_mask"])
                actions[agent] = int(rng.choice(legal))
                illegal += int(obs[agent]["action_mask"][actions[agent]] == 0)
            obs, rewards, terminations, truncations, infos = env.step(actions)
            for agent, r in rewards.items():
                totals[agent] += r
    env.close()
    summary = {
        "mean_return": {a: t / args.episodes for a, t in totals.items()},
        "illegal_actions": illegal,
        "state_dim": int(env.state_space.shape[0]),
    }
    print(summary)
    return summary


if __name__ == "__main__":
    main()
