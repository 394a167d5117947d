"""Jittable random-policy rollouts, shared by the CLI, benchmarks and tests."""

from __future__ import annotations

from typing import Any

import chex
import jax
import jax.numpy as jnp

from jaxmarl_envs.env import Environment
from jaxmarl_envs.types import TimeStep


def random_action(key: chex.PRNGKey, action_mask: chex.Array) -> chex.Array:
    """Samples uniformly among legal actions.

    Args:
        key: PRNG key.
        action_mask: `(..., num_agents, num_actions)` bool.

    Returns:
        `(..., num_agents)` int32 actions (an agent with no legal action gets action 0).
    """
    # The argmax of i.i.d. uniforms over the legal actions is uniform among them, and
    # cheaper than Gumbel sampling (no logarithms). Illegal actions score -1, so an agent
    # with no legal action gets argmax = 0.
    scores = jnp.where(action_mask, jax.random.uniform(key, action_mask.shape), -1.0)
    return jnp.argmax(scores, axis=-1).astype(jnp.int32)


def random_rollout(
    env: Environment, key: chex.PRNGKey, num_steps: int
) -> tuple[Any, TimeStep, Any, TimeStep]:
    """Runs `num_steps` random legal actions from a reset under `lax.scan`.

    The environment should auto-reset (wrap it in `AutoReset`) if episodes may end before
    `num_steps`. Works for batched environments (`VmapWrapper`) as well.

    Returns:
        `(first_state, first_timestep, states, timesteps)` where `states`/`timesteps` are
        stacked over a leading time axis of length `num_steps`.
    """
    reset_key, key = jax.random.split(key)
    state, ts = env.reset(reset_key)

    def body(carry, step_key):
        state, ts = carry
        action = random_action(step_key, ts.observation.action_mask)
        state, ts = env.step(state, action)
        return (state, ts), (state, ts)

    _, (states, timesteps) = jax.lax.scan(body, (state, ts), jax.random.split(key, num_steps))
    return state, ts, states, timesteps
