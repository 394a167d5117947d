"""dm-env example: the classic `reset`/`step` loop over `dm_env.TimeStep`s."""

from __future__ import annotations

import argparse

import numpy as np

from jaxmarl_envs.adapters import DmEnv


def main(argv: list[str] | None = None) -> dict:
    """Runs uniformly random joint actions for some episodes; returns their returns."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-id", default="rware-tiny-2ag")
    parser.add_argument("--episodes", type=int, default=2)
    parser.add_argument("--time-limit", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    env = DmEnv(args.env_id, seed=args.seed, time_limit=args.time_limit)
    spec = env.action_spec()
    print(env.observation_spec()["agents_view"], spec)
    rng = np.random.default_rng(args.seed)
    returns = []
    for _ in range(args.episodes):
        timestep = env.reset()
        episode_return = np.zeros(env.reward_spec().shape, np.float32)
        while not timestep.last():
            action = rng.integers(spec.minimum, spec.maximum + 1).astype(spec.dtype)
            timestep = env.step(action)
            episode_return += timestep.reward  # per-agent rewards
        returns.append(episode_return)
    env.close()
    summary = {"episodes": len(returns), "returns": [r.tolist() for r in returns]}
    print(summary)
    return summary


if __name__ == "__main__":
    main()
