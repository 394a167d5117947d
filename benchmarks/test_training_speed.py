"""Training throughput of IPPO (feed-forward, default hyper-parameters) on rware-tiny-4ag at
64, 256 and 1024 parallel environments: environment steps per second of one full PPO update
(rollout of 128 steps, GAE, 4 epochs x 2 minibatches), compile time excluded.

Run: `pytest benchmarks/test_training_speed.py --benchmark-only -s`
"""

from __future__ import annotations

import jax
import pytest
from common import compile_and_time

from jaxmarl_envs.algorithms import ppo

NUM_ENVS = [64, 256, 1024]


@pytest.mark.parametrize("algorithm", ["ippo", "mappo"])
@pytest.mark.parametrize("num_envs", NUM_ENVS)
def test_ppo_update_throughput(benchmark, algorithm, num_envs):
    cls = ppo.IPPOConfig if algorithm == "ippo" else ppo.MAPPOConfig
    config = cls(
        env_id="rware-tiny-4ag",
        num_envs=num_envs,
        total_steps=num_envs * 128 * 10,
        num_evaluations=1,
    )
    learner = ppo.make_learner(config, num_devices=1)
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))

    def update(s):
        return learner.update(s)[0]

    compiled, state, compile_s = compile_and_time(update, state)
    holder = {"state": state}

    def once():
        holder["state"] = jax.block_until_ready(compiled(holder["state"]))

    benchmark.group = f"ppo-train-{algorithm}"
    benchmark.pedantic(once, rounds=3, iterations=1, warmup_rounds=1)
    steps = num_envs * config.rollout_length
    sps = steps / benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "algorithm": algorithm,
            "env_id": "rware-tiny-4ag",
            "num_envs": num_envs,
            "env_steps_per_update": steps,
            "env_steps_per_s": round(sps),
            "compile_s": round(compile_s, 2),
        }
    )
    print(
        f"\n{algorithm} rware-tiny-4ag num_envs={num_envs}: {sps:,.0f} env-steps/s "
        f"(compile {compile_s:.1f}s)"
    )
    assert sps > 0
