"""Gymnasium example: a batch of environments stepped in one jitted call, random actions."""

from __future__ import annotations

import argparse

import gymnasium
import numpy as np

import jaxmarl_envs.adapters  # noqa: F401  registers the jaxmarl_envs/<id>-v0 ids with Gymnasium


def main(argv: list[str] | None = None) -> dict:
    """Runs random joint actions in a vector env; returns a summary of finished episodes."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--env-id", default="rware-tiny-2ag")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--time-limit", type=int, default=50)
    parser.add_argument("--autoreset-mode", default="SameStep", choices=["NextStep", "SameStep"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    envs = gymnasium.make_vec(
        f"jaxmarl_envs/{args.env_id}-v0",
        num_envs=args.num_envs,
        vectorization_mode="vector_entry_point",
        autoreset_mode=args.autoreset_mode,
        time_limit=args.time_limit,
    )
    # Gymnasium's own statistics wrapper writes info["episode"]; the adapter's own figures
    # (same returns and lengths, plus per-agent returns) are in info["episode_metrics"].
    envs = gymnasium.wrappers.vector.RecordEpisodeStatistics(envs)
    print(envs, envs.observation_space.shape, envs.action_space)
    obs, info = envs.reset(seed=args.seed)
    envs.action_space.seed(args.seed)
    returns, lengths = [], []
    for _ in range(args.steps):
        obs, reward, terminated, truncated, info = envs.step(envs.action_space.sample())
        if "episode" in info:  # statistics of the episodes that ended on this step
            done = info["_episode"]
            returns += info["episode"]["r"][done].tolist()
            lengths += info["episode"]["l"][done].tolist()
    envs.close()
    summary = {
        "episodes": len(returns),
        "mean_return": float(np.mean(returns)) if returns else float("nan"),
        "mean_length": float(np.mean(lengths)) if lengths else float("nan"),
    }
    print(summary)
    return summary


if __name__ == "__main__":
    main()
