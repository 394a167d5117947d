"""Offline training throughput: gradient steps per second of every offline learner with its
default hyper-parameters (two 128-unit layers, batch 256), on rware-tiny-2ag (discrete) and
mpe-simple_spread-continuous (continuous), compile time excluded, no evaluation in the timed
part. The dataset is 100k synthetic transitions of the environment's shapes (a gradient step
costs the same whatever the values), so the figure measures the learner alone.

Run: `pytest benchmarks/test_offline_training_speed.py --benchmark-only -s`
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from common import compile_and_time

import jaxmarl_envs
from jaxmarl_envs.algorithms import training
from jaxmarl_envs.algorithms.offline import bc, iql, maicq, matd3_bc, omar
from jaxmarl_envs.algorithms.offline.data import Transitions, sample_batch

CASES = [
    ("bc", bc, "rware-tiny-2ag"),
    ("iql-cql", iql, "rware-tiny-2ag"),
    ("iql-bcq", iql, "rware-tiny-2ag"),
    ("maicq", maicq, "rware-tiny-2ag"),
    ("bc", bc, "mpe-simple_spread-continuous"),
    ("matd3-bc", matd3_bc, "mpe-simple_spread-continuous"),
    ("omar", omar, "mpe-simple_spread-continuous"),
]
NUM_TRANSITIONS = 100_000
STEPS_PER_ROUND = 200


def synthetic_transitions(env, key: jax.Array) -> tuple[Transitions, dict]:
    """`NUM_TRANSITIONS` random transitions shaped like `env`'s (agent ids appended)."""
    n, t = env.num_agents, NUM_TRANSITIONS
    info = training.action_info(env)
    d = env.observation_spec.agents_view.shape[-1] + n
    s = int(np.prod(env.global_state_spec().shape))
    ks = jax.random.split(key, 4)
    if info.continuous:
        action = jax.random.uniform(ks[0], (t, n, info.dim), minval=info.low, maxval=info.high)
        mask = jnp.ones((t, n, 1), bool)
    else:
        action = jax.random.randint(ks[0], (t, n), 0, info.dim)
        mask = jnp.ones((t, n, info.dim), bool)
    data = Transitions(
        obs=jax.random.normal(ks[1], (t, n, d)),
        mask=mask,
        state=jax.random.normal(ks[2], (t, s)),
        action=action,
        reward=jax.random.uniform(ks[3], (t, n)),
        terminated=jnp.zeros((t, n), bool),
        next_index=(jnp.arange(t, dtype=jnp.int32) + 1) % t,
        bootstrap=jnp.ones((t,), bool),
        sample_index=jnp.arange(t, dtype=jnp.int32),
    )
    return data, {"path": "synthetic", "transitions": t}


@pytest.mark.parametrize("algorithm,module,env_id", CASES, ids=[f"{a}-{e}" for a, _, e in CASES])
def test_offline_gradient_steps_per_second(benchmark, algorithm, module, env_id):
    env = jaxmarl_envs.make(env_id)
    data = synthetic_transitions(env, jax.random.PRNGKey(1))
    config = module.make_config(algorithm, env_id=env_id, dataset="synthetic", gif=False)
    learner = module.make_learner(config, env=env, num_devices=1, data=data)
    state = jax.jit(learner.init)(jax.random.PRNGKey(0))

    def run(carry):
        # The dataset travels as an argument (as in `learn(state, data)`), not as a constant.
        state, transitions = carry

        def body(state, _):
            key, sample_key = jax.random.split(state.key)
            batch = sample_batch(transitions, sample_key, config.batch_size)
            state, _ = learner.train_step(state.replace(key=key), batch)
            return state.replace(step=state.step + 1), None

        return jax.lax.scan(body, state, None, STEPS_PER_ROUND)[0], transitions

    load_before = os.getloadavg()
    compiled, state, compile_s = compile_and_time(run, (state, learner.data))
    holder = {"state": state}

    def once():
        holder["state"] = jax.block_until_ready(compiled(holder["state"]))

    benchmark.group = "offline-train"
    benchmark.pedantic(once, rounds=5, iterations=1, warmup_rounds=1)
    sps = STEPS_PER_ROUND / benchmark.stats.stats.median
    load_after = os.getloadavg()
    benchmark.extra_info.update(
        {
            "algorithm": algorithm,
            "env_id": env_id,
            "batch_size": config.batch_size,
            "gradient_steps_per_s": round(sps, 1),
            "compile_s": round(compile_s, 2),
            "loadavg_before": load_before,
            "loadavg_after": load_after,
        }
    )
    print(
        f"\n{algorithm} {env_id} batch {config.batch_size}: {sps:,.0f} gradient steps/s "
        f"({sps * config.batch_size:,.0f} transitions/s; compile {compile_s:.1f}s; "
        f"load {load_before[0]:.1f} -> {load_after[0]:.1f})"
    )
    assert sps > 0
