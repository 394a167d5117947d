"""A tiny continuous-action two-agent environment for testing Gaussian policies."""

from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxmarl_envs import specs
from jaxmarl_envs.env import Environment
from jaxmarl_envs.types import Observation, make_timestep, restart


@struct.dataclass
class PointState:
    key: chex.PRNGKey
    step_count: chex.Array  # ()
    target: chex.Array  # (num_agents, 2) in [-1, 1]


class ContinuousToyEnv(Environment):
    """Each agent sees a 2-D target in [-1, 1]^2 and is rewarded `-|a - target|^2` for its
    2-D action in [-2, 2]^2 (clipped); a new target is drawn every step; truncation at
    `time_limit`. Optimal team return is 0; a zero-mean unit-std Gaussian policy scores
    about `-2 * time_limit * (1 + 2/3) = -16.7` for `time_limit=5`."""

    name = "continuous_toy"

    def __init__(self, time_limit: int = 5):
        if time_limit < 1:
            raise ValueError(f"time_limit must be >= 1, got {time_limit}")
        self._time_limit = int(time_limit)

    @property
    def num_agents(self) -> int:
        return 2

    @property
    def time_limit(self) -> int:
        return self._time_limit

    @property
    def observation_spec(self) -> specs.Structured:
        return specs.Structured(
            Observation,
            "observation",
            agents_view=specs.BoundedArray((2, 2), np.float32, -1.0, 1.0),
            action_mask=specs.BoundedArray((2, 1), bool, False, True, "action_mask"),
        )

    @property
    def action_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((2, 2), np.float32, -2.0, 2.0, "action")

    def _obs(self, state: PointState) -> Observation:
        return Observation(agents_view=state.target, action_mask=jnp.ones((2, 1), bool))

    def reset(self, key):
        key, sub = jax.random.split(key)
        target = jax.random.uniform(sub, (2, 2), jnp.float32, -1.0, 1.0)
        state = PointState(key=key, step_count=jnp.zeros((), jnp.int32), target=target)
        return state, restart(self._obs(state), 2)

    def step(self, state: PointState, action):
        action = jnp.clip(jnp.asarray(action, jnp.float32), -2.0, 2.0)
        reward = -jnp.sum((action - state.target) ** 2, axis=-1)
        key, sub = jax.random.split(state.key)
        target = jax.random.uniform(sub, (2, 2), jnp.float32, -1.0, 1.0)
        state = PointState(key=key, step_count=state.step_count + 1, target=target)
        truncated = state.step_count >= self._time_limit
        return state, make_timestep(self._obs(state), reward, False, truncated)
