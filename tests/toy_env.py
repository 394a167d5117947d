"""A tiny two-agent environment used to test the core API, wrappers and adapters."""

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
class ToyState:
    key: chex.PRNGKey
    step_count: chex.Array  # ()
    target: chex.Array  # () the action both agents are rewarded for choosing


class ToyEnv(Environment):
    """Agents see a one-hot target (3 values) and the step count; reward 1 each when both
    pick the target; the episode terminates when both pick action 2 and is truncated at
    `time_limit`. Action 1 is masked out for agent 1."""

    name = "toy"

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
            agents_view=specs.BoundedArray((2, 4), np.float32, 0.0, float(self._time_limit)),
            action_mask=specs.BoundedArray((2, 3), bool, False, True, "action_mask"),
        )

    @property
    def action_spec(self) -> specs.MultiDiscreteArray:
        return specs.MultiDiscreteArray(np.full((2,), 3), np.int32, "action")

    def _obs(self, state: ToyState) -> Observation:
        onehot = jax.nn.one_hot(state.target, 3)
        view = jnp.concatenate([onehot, state.step_count[None].astype(jnp.float32)])
        mask = jnp.array([[True, True, True], [True, False, True]])
        return Observation(agents_view=jnp.stack([view, view]), action_mask=mask)

    def reset(self, key):
        key, sub = jax.random.split(key)
        state = ToyState(
            key=key, step_count=jnp.zeros((), jnp.int32), target=jax.random.randint(sub, (), 0, 3)
        )
        return state, restart(self._obs(state), 2)

    def step(self, state: ToyState, action):
        action = jnp.asarray(action)
        both = jnp.all(action == state.target)
        reward = jnp.full((2,), both, jnp.float32)
        key, sub = jax.random.split(state.key)
        state = ToyState(
            key=key, step_count=state.step_count + 1, target=jax.random.randint(sub, (), 0, 3)
        )
        terminated = jnp.all(action == 2)
        truncated = state.step_count >= self._time_limit
        return state, make_timestep(self._obs(state), reward, terminated, truncated)

    def render(self, state: ToyState) -> np.ndarray:
        frame = np.zeros((16, 16, 3), np.uint8)
        frame[:, :, int(state.target)] = 255
        return frame


class WholeToyEnv(ToyEnv):
    """ToyEnv declaring what is true of it: its view (a one-hot target and the step count)
    and its global state (the two views) hold whole numbers within bounds, so replay buffers
    store them in uint8."""

    @property
    def integer_valued(self) -> frozenset[str]:
        return frozenset({"agents_view", "global_state"})

    def global_state_spec(self) -> specs.BoundedArray:
        return specs.BoundedArray((8,), np.float32, 0.0, float(self.time_limit), "global_state")
