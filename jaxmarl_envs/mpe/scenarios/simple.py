"""`simple`: one agent goes to one landmark (mpe2's `simple_v3`, a debugging task)."""

from __future__ import annotations

import chex
import jax.numpy as jnp
import numpy as np

from jaxmarl_envs.mpe.scenario import Scenario, register_scenario
from jaxmarl_envs.mpe.types import State
from jaxmarl_envs.mpe.world import World


@register_scenario
class Simple(Scenario):
    """One agent (`agent_0`) and one landmark, nothing collides.

    Observation (4): `[self_vel, landmark_pos - self_pos]`. Reward: minus the squared
    distance to the landmark. Actions: discrete 5 / continuous 5.
    """

    name = "simple"
    description = "MPE simple: one agent rewarded for approaching one landmark."
    mpe2_module = "simple_v3"

    def __init__(self):
        self.world = World.build(
            ["agent_0"], 1, dim_c=0, agent_collide=False, landmark_collide=False, silent=True
        )
        self.obs_sizes = (4,)
        self._colour = np.array([[0.25, 0.25, 0.25], [0.75, 0.25, 0.25]], np.float32)

    def reset(self, key: chex.PRNGKey) -> State:
        return self.new_state(self.uniform_positions(key), self._colour)

    def observation(self, state: State) -> chex.Array:
        rel = state.p_pos[1] - state.p_pos[0]
        return jnp.concatenate([state.p_vel[0], rel])[None, :]

    def reward(self, state: State) -> chex.Array:
        d2 = jnp.sum(jnp.square(state.p_pos[0] - state.p_pos[1]))
        return -d2[None]


__all__ = ["Simple"]
