"""Training throughput of the off-policy families (IQL, VDN, QMIX; discrete ISAC, MASAC) with
their default hyper-parameters on lbf-8x8-2p-2f-coop and rware-tiny-2ag: environment steps
per second of whole updates (rollout into the buffer plus the gradient steps that follow it),
measured once the buffer is past `learning_starts`, compile time excluded.

Run: `pytest benchmarks/test_offpolicy_training_speed.py --benchmark-only -s`
"""

from __future__ import annotations

import jax
import pytest
from common import compile_and_time

from jaxmarl_envs.algorithms import q_learning, sac

ALGORITHMS = {"iql": q_learning, "vdn": q_learning, "qmix": q_learning}
ALGORITHMS |= {"isac": sac, "masac": sac}
ENVS = ["lbf-8x8-2p-2f-coop", "rware-tiny-2ag"]
UPDATES_PER_ROUND = 50


@pytest.mark.parametrize("env_id", ENVS)
@pytest.mark.parametrize("algorithm", list(ALGORITHMS))
def test_offpolicy_update_throughput(benchmark, algorithm, env_id):
    module = ALGORITHMS[algorithm]
    config = module.make_config(algorithm, env_id=env_id, num_evaluations=1, total_steps=10**6)
    learner = module.make_learner(config, num_devices=1)
    d = learner.derived
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))

    def updates(state, n):
        return jax.lax.scan(learner.update, state, None, n)[0]

    # Fill the buffer past `learning_starts` so every timed update trains.
    warm = -(-config.learning_starts // d.steps_per_update) + 1
    state = jax.block_until_ready(jax.jit(updates, static_argnums=1)(state, warm))

    def run(s):
        return updates(s, UPDATES_PER_ROUND)

    compiled, state, compile_s = compile_and_time(run, state)
    holder = {"state": state}

    def once():
        holder["state"] = jax.block_until_ready(compiled(holder["state"]))

    benchmark.group = f"offpolicy-train-{env_id}"
    benchmark.pedantic(once, rounds=3, iterations=1, warmup_rounds=0)
    steps = UPDATES_PER_ROUND * d.steps_per_update
    sps = steps / benchmark.stats.stats.median
    benchmark.extra_info.update(
        {
            "algorithm": algorithm,
            "env_id": env_id,
            "num_envs": config.num_envs,
            "env_steps_per_update": d.steps_per_update,
            "env_steps_per_s": round(sps),
            "compile_s": round(compile_s, 2),
        }
    )
    print(
        f"\n{algorithm} {env_id} num_envs={config.num_envs} "
        f"({d.steps_per_update} env steps per update): {sps:,.0f} env-steps/s "
        f"(compile {compile_s:.1f}s)"
    )
    assert sps > 0
