"""The Gymnasium vector adapter against the native jitted-vmap step, per step call, at N=1024.

Run: `pytest benchmarks/test_gym_vector.py -s -p no:cacheprovider` (not `--benchmark-only`,
which would skip the ratio checks that compare the two measurements of the same run).

Both sides step the same environment with the same actions, one call per step: the adapter's
`JaxMarlVectorEnv.step` (NEXT_STEP autoreset; host numpy in, host numpy out, infos built) and
one jitted `VmapWrapper(AutoReset(env)).step` call blocked on its result. Actions are random
in-range joint actions precomputed on the host (a pool cycled through, so sampling costs
nothing in either loop); both environments replace a masked-out action by the no-op, so every
action is legal in effect. Target (adapters issue): the adapter reaches >= 50% of the native
throughput.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import jaxmarl_envs
from jaxmarl_envs.adapters.gymnasium import JaxMarlVectorEnv
from jaxmarl_envs.wrappers import AutoReset, VmapWrapper

NUM_ENVS = 1024
ENV_IDS = ["rware-tiny-4ag", "lbf-8x8-2p-2f-coop"]
POOL = 16  # distinct precomputed joint actions, cycled through
STEPS_PER_ROUND = 25
ROUNDS = 8
TARGET = 0.5

_MEASURED: dict[tuple[str, str], float] = {}


def _action_pool(env_id: str) -> list[np.ndarray]:
    """`POOL` random in-range joint actions `(NUM_ENVS, num_agents)` of the spec's dtype."""
    spec = jaxmarl_envs.make(env_id).action_spec
    rng = np.random.default_rng(0)
    return [
        rng.integers(spec.minimum, spec.maximum + 1, size=(NUM_ENVS, *spec.shape)).astype(
            spec.dtype
        )
        for _ in range(POOL)
    ]


def _adapter_step(env_id: str, pool: list[np.ndarray]):
    venv = JaxMarlVectorEnv(env_id, num_envs=NUM_ENVS, autoreset_mode=AutoresetMode.NEXT_STEP)
    venv.reset(seed=0)
    counter = [0]

    def step():
        venv.step(pool[counter[0] % POOL])
        counter[0] += 1

    return step, venv


def _native_step(env_id: str, pool: list[np.ndarray]):
    env = VmapWrapper(AutoReset(jaxmarl_envs.make(env_id)))
    step_fn = jax.jit(env.step)
    state, _ = jax.jit(env.reset)(jax.random.split(jax.random.PRNGKey(0), NUM_ENVS))
    device_pool = [jnp.asarray(a) for a in pool]
    holder = {"state": state, "i": 0}

    def step():
        state, ts = step_fn(holder["state"], device_pool[holder["i"] % POOL])
        jax.block_until_ready((state, ts))
        holder["state"] = state
        holder["i"] += 1

    return step, None


def _measure(benchmark, impl: str, env_id: str) -> float:
    pool = _action_pool(env_id)
    step, closable = (_adapter_step if impl == "adapter" else _native_step)(env_id, pool)
    for _ in range(3):  # compile and warm up outside the timed rounds
        step()
    benchmark.group = f"gym-vector-{env_id}"
    benchmark.pedantic(step, rounds=ROUNDS, iterations=STEPS_PER_ROUND, warmup_rounds=1)
    seconds = benchmark.stats.stats.median  # per step call
    sps = NUM_ENVS / seconds
    benchmark.extra_info.update(
        {
            "impl": impl,
            "env_id": env_id,
            "num_envs": NUM_ENVS,
            "ms_per_step_call": round(seconds * 1e3, 3),
            "env_steps_per_s": round(sps),
        }
    )
    print(f"\n{impl:8s} {env_id}: {seconds * 1e3:.2f} ms per step call, {sps:,.0f} env-steps/s")
    if closable is not None:
        closable.close()
    _MEASURED[(impl, env_id)] = sps
    return sps


@pytest.mark.parametrize("env_id", ENV_IDS)
@pytest.mark.parametrize("impl", ["native", "adapter"])
def test_vector_step_throughput(benchmark, impl, env_id):
    assert _measure(benchmark, impl, env_id) > 0


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_adapter_reaches_half_native(env_id):
    """The adapter's throughput over the native step's, both measured above in this run."""
    if ("adapter", env_id) not in _MEASURED or ("native", env_id) not in _MEASURED:
        pytest.skip("needs both throughput measurements from this run")
    ratio = _MEASURED[("adapter", env_id)] / _MEASURED[("native", env_id)]
    print(f"\n{env_id}: Gymnasium vector adapter at {ratio:.0%} of native (target {TARGET:.0%})")
    assert ratio >= TARGET
