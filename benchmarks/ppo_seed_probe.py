"""Per-seed learning curves and training statistics of IPPO/MAPPO, seeds vmapped in one process.

    python benchmarks/ppo_seed_probe.py mappo mpe-simple_spread 6e5 --seed 1 --seeds 1 \
        --evaluations 8 num_envs=16

Prints one line per evaluation: the evaluation return of every seed (mean over
`eval_episodes` episodes), the policy entropy, and the ValueNorm mean and standard deviation
of the value targets when `value_norm` is on. Seeds are `training.seed_keys(seed, seeds)`
(PRNGKey(seed + i)), initialised and trained as `jaxmarl train --seed S --num-seeds N` does
(`networks.init_each`, `vmap` over the seeds), so `--seed 1 --seeds 1` follows the run of
`jaxmarl train mappo --seed 1` with the same settings. Used for "MAPPO on mpe-simple_spread: one
seed in five diverges" in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import time

import jax
import numpy as np
from common import learner_probe_args

from jaxmarl_envs.algorithms import ppo, training
from jaxmarl_envs.algorithms.networks import init_each


def main() -> None:
    args, overrides = learner_probe_args(__doc__, ppo.ALGORITHMS, seeds=1, evaluations=8)
    cfg = ppo.make_config(
        args.algorithm,
        env_id=args.env_id,
        total_steps=int(args.total_steps),
        num_evaluations=args.evaluations,
        gif=False,
        **overrides,
    )
    learner = ppo.make_learner(cfg)
    print(
        f"{cfg.algorithm} {cfg.env_id} critic_input={cfg.critic_input} "
        f"value_norm={cfg.value_norm} critic_lr_scale={cfg.critic_lr_scale} "
        f"clip_per_network={cfg.clip_per_network} num_envs={cfg.num_envs}",
        flush=True,
    )
    keys = training.seed_keys(args.seed, args.seeds)
    state = jax.jit(lambda k: init_each(learner.init, k))(keys)
    learn = jax.jit(jax.vmap(learner.learn))
    start = time.perf_counter()

    def per_seed(x):
        return np.asarray(x).reshape(args.seeds, -1).mean(-1)

    for i in range(learner.derived.num_evaluations):
        state, metrics = learn(state)
        train = metrics["train"]
        steps = (i + 1) * learner.derived.updates_per_eval * learner.derived.steps_per_update
        line = [
            f"eval {i + 1:2d} steps {steps:,} {time.perf_counter() - start:6.0f}s",
            "return " + " ".join(f"{x:.1f}" for x in per_seed(metrics["eval"].episode_return)),
            "entropy " + " ".join(f"{x:.3f}" for x in per_seed(train["entropy"])),
        ]
        if cfg.value_norm:
            mean, std = per_seed(train["value_norm_mean"]), per_seed(train["value_norm_std"])
            pairs = zip(mean, std, strict=True)
            line.append("value_norm " + " ".join(f"{m:.1f}/{s:.1f}" for m, s in pairs))
        print(" ".join(line), flush=True)


if __name__ == "__main__":
    main()
