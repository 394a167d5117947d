"""Learning curves of ISAC/MASAC variants, several seeds vmapped in one process.

    python benchmarks/sac_critic_input.py masac rware-tiny-2ag 5e5 --seeds 5 --evaluations 20 \
        critic_input=local

Prints one line per evaluation: the greedy evaluation return of every seed (mean over
`eval_episodes` episodes) and the temperature. Seeds are `jax.random.split(PRNGKey(seed),
seeds)`, so the curves differ from `jaxmarl train --num-seeds` (which uses PRNGKey(seed + i))
but not in distribution. Used for "MASAC's critic input" in benchmarks/RESULTS.md.
"""

from __future__ import annotations

import time

import jax
import numpy as np
from common import learner_probe_args

from jaxmarl_envs.algorithms import sac
from jaxmarl_envs.algorithms.networks import init_each


def main() -> None:
    args, overrides = learner_probe_args(__doc__, sac.ALGORITHMS, seeds=5, evaluations=20)
    cfg = sac.make_config(
        args.algorithm,
        env_id=args.env_id,
        total_steps=int(args.total_steps),
        num_evaluations=args.evaluations,
        gif=False,
        **overrides,
    )
    learner = sac.make_learner(cfg)
    print(
        f"{cfg.algorithm} {cfg.env_id} critic_input={cfg.critic_input} "
        f"joint_action={cfg.centralised_critic} critic_dim={learner.critic_dim}",
        flush=True,
    )
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.seeds)
    state = jax.jit(lambda k: init_each(learner.init, k))(keys)
    learn = jax.jit(jax.vmap(learner.learn))
    start = time.perf_counter()
    for i in range(learner.derived.num_evaluations):
        state, metrics = learn(state)
        ret = np.asarray(metrics["eval"].episode_return).reshape(args.seeds, -1).mean(-1)
        alpha = np.asarray(metrics["train"]["alpha"]).reshape(args.seeds, -1).mean(-1)
        steps = (i + 1) * learner.derived.updates_per_eval * learner.derived.steps_per_update
        print(
            f"eval {i + 1:2d} steps {steps:,} {time.perf_counter() - start:6.0f}s "
            "return " + " ".join(f"{x:.3f}" for x in ret),
            "alpha " + " ".join(f"{x:.3f}" for x in alpha),
            flush=True,
        )


if __name__ == "__main__":
    main()
