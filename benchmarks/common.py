"""Shared benchmark machinery: a jitted, vmapped random-action rollout and its timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax

from jaxmarl_envs.rollout import random_action

#: Steps per environment in one timed call (one `lax.scan`).
SCAN_STEPS = 100


def make_rollout(
    reset: Callable, step: Callable, mask_of: Callable, batch: int, steps: int = SCAN_STEPS
) -> tuple[Callable, Any]:
    """Builds `run(carry) -> carry`: `steps` random masked actions for `batch` environments.

    `reset`/`step` are single-environment functions that auto-reset; `mask_of(timestep)`
    returns the `(num_agents, num_actions)` action mask. The same loop serves our
    environments and peers (Jumanji), so comparisons measure the environments only.
    """
    v_reset, v_step = jax.vmap(reset), jax.vmap(step)

    def init(key):
        state, ts = v_reset(jax.random.split(key, batch))
        return state, ts, key

    def run(carry):
        def body(c, _):
            state, ts, key = c
            key, sub = jax.random.split(key)
            action = random_action(sub, mask_of(ts))
            state, ts = v_step(state, action)
            return (state, ts, key), None

        carry, _ = jax.lax.scan(body, carry, None, length=steps)
        return carry

    carry = jax.jit(init)(jax.random.PRNGKey(0))
    return run, carry


def compile_and_time(run: Callable, carry: Any) -> tuple[Callable, Any, float]:
    """Compiles `run` ahead of time; returns the compiled function, a warm carry, seconds."""
    start = time.perf_counter()
    compiled = jax.jit(run, donate_argnums=0).lower(carry).compile()
    compile_s = time.perf_counter() - start
    carry = compiled(carry)
    jax.block_until_ready(carry)
    return compiled, carry, compile_s


def block(x: Any) -> Any:
    return jax.block_until_ready(x)


def steps_per_second(batch: int, seconds: float, steps: int = SCAN_STEPS) -> float:
    return batch * steps / seconds


def ours(env_id: str, **overrides: Any) -> tuple[Callable, Callable, Callable]:
    """`(reset, step, mask_of)` for one of our environments with auto-reset."""
    import jaxmarl_envs
    from jaxmarl_envs.wrappers import AutoReset

    env = AutoReset(jaxmarl_envs.make(env_id, **overrides))
    return env.reset, env.step, lambda ts: ts.observation.action_mask
